/*
Copyright 2026 The token-operator Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package controller

import (
	"context"
	"errors"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	tokensv1alpha1 "github.com/tokenops/token-operator/api/v1alpha1"
	"github.com/tokenops/token-operator/internal/audit"
	"github.com/tokenops/token-operator/internal/metrics"
	"github.com/tokenops/token-operator/internal/token"
)

// staleRetry is how soon a TokenRequest whose cached copy was found stale is decided again,
// unless the newer copy's watch event comes first.
const staleRetry = time.Second

// carryOut does what the plan says, and only that, and says when to look again. A create
// that finds the name taken answers AlreadyExists and changes nothing (see reconcileToken).
func (r *TokenRequestReconciler) carryOut(ctx context.Context, o observed, p plan) (ctrl.Result, error) {
	tr := o.TR
	switch p.Action {
	case actIdle:
		return ctrl.Result{}, nil
	case actMarkExpired:
		life, _ := recordedLifetime(tr)
		r.markExpired(tr, life)
		return ctrl.Result{}, nil
	case actMarkSpent:
		r.markSpent(tr)
		return ctrl.Result{}, nil
	case actDeleteSpent:
		return ctrl.Result{}, r.deleteSpent(ctx, o.Cached)
	case actConflict:
		r.markConflict(tr, fmt.Sprintf("Secret %q exists and is not owned by this TokenRequest; it is left untouched",
			tr.Status.SecretName))
		return ctrl.Result{RequeueAfter: conflictRetry}, nil
	case actStale:
		ctrl.LoggerFrom(ctx).V(1).Info("Cached TokenRequest is stale; waiting for the newer one")
		return ctrl.Result{RequeueAfter: staleRetry}, nil
	case actInspect:
		return ctrl.Result{}, errors.New("internal error: decided to inspect after inspecting")
	}
	if p.Action != actWait {
		err := r.save(ctx, p)
		if apierrors.IsInvalid(err) {
			msg := "the Secret the spec describes is invalid: " + err.Error()
			r.markInvalid(tr, msg)
			return ctrl.Result{}, reconcile.TerminalError(errors.New(msg))
		}
		if err != nil {
			return ctrl.Result{}, err
		}
		recordToken(tr, p.Action, p.Issued)
		r.announce(ctx, tr, p)
	}
	recordUses(tr, o.Cached)
	life, _ := recordedLifetime(tr)
	r.markIssued(tr, life)
	wake := r.nextWake(tr, r.Clock.Now())
	if restartsDue(tr) {
		// Right after the new token is written, while the previous one still validates.
		if retry := r.restartWorkloads(ctx, tr); retry > 0 {
			wake = min(wake, retry)
		}
	}
	return ctrl.Result{RequeueAfter: wake}, nil
}

// save creates or updates the plan's Secret, if it has one. An update carries the
// resourceVersion the Secret was read with, so it fails rather than overwrite a newer write:
// of two managers that both see a rotation due, one writes it.
func (r *TokenRequestReconciler) save(ctx context.Context, p plan) error {
	switch {
	case p.Secret == nil:
		return nil
	case p.Create:
		return r.Store.Create(ctx, p.Secret) // indexed at once: read our own write
	}
	return r.Store.Update(ctx, p.Secret)
}

// announce tells of a plan carried out: events and the issued-tokens metric for a new token,
// log lines for repairs.
func (r *TokenRequestReconciler) announce(ctx context.Context, tr *tokensv1alpha1.TokenRequest, p plan) {
	issued, name := p.Issued, tr.Status.SecretName
	if op, ok := auditOps[p.Action]; ok {
		metrics.TokensIssued.WithLabelValues(string(token.SourceTokenRequest)).Inc()
		writeAudit(ctx, r.Audit, audit.Event{Operation: op, Outcome: audit.Success, TokenID: issued.ID,
			Source: string(token.SourceTokenRequest), Namespace: tr.Namespace, Name: name, TokenRequest: tr.Name, UsesLeft: issued.UsesLeft})
	}
	log := ctrl.LoggerFrom(ctx)
	switch {
	case p.Action == actIssue:
		r.event(tr, EventTokenIssued, "Issue", "Issued token %s into Secret %s, expires at %s",
			issued.ID, name, issued.ExpiresAt.Format(time.RFC3339))
	case p.Action == actReissue:
		r.event(tr, EventTokenReissued, "Reissue", "Secret %s was deleted before expiry; issued token %s", name, issued.ID)
	case p.Action == actReplace:
		r.event(tr, EventTokenReissued, "Reissue", "Secret %s held an edited token; issued token %s", name, issued.ID)
	case p.Action == actRotate && p.Create:
		r.event(tr, EventTokenRotated, "Rotate", "Issued token %s into a new Secret %s (revision %d), expires at %s",
			issued.ID, name, issued.Revision, issued.ExpiresAt.Format(time.RFC3339))
	case p.Action == actRotate:
		msg := fmt.Sprintf("Rotated to token %s (revision %d), expires at %s", issued.ID, issued.Revision, issued.ExpiresAt.Format(time.RFC3339))
		if prev := issued.Previous; prev != nil {
			msg += fmt.Sprintf("; token %s validates until %s", prev.ID, prev.ExpiresAt.Format(time.RFC3339))
		}
		r.event(tr, EventTokenRotated, "Rotate", "%s", msg)
	case p.Action == actAdopt:
		log.Info("Adopted the newer token the Secret holds", "secret", klog.KRef(tr.Namespace, name), "tokenID", issued.ID)
		writeAudit(ctx, r.Audit, audit.Event{Operation: audit.OpAdopt, Outcome: audit.Success, TokenID: issued.ID,
			Source: string(token.SourceTokenRequest), Namespace: tr.Namespace, Name: name, TokenRequest: tr.Name, UsesLeft: issued.UsesLeft})
	case p.Secret == nil:
	case p.Action == actHeal:
		log.Info("Healed edited Secret from status", "secret", klog.KObj(p.Secret), "tokenID", issued.ID)
	case p.Action == actDropPrevious:
		log.V(1).Info("Removed the expired previous token", "secret", klog.KObj(p.Secret), "tokenID", issued.ID)
	}
}

// auditOps are the actions that issue a new token, and their audit operations.
var auditOps = map[action]string{actIssue: audit.OpIssue, actReissue: audit.OpReissue, actReplace: audit.OpReplace, actRotate: audit.OpRotate}

// writeAudit writes an audit line of the operator's own doing; a failure to write is logged.
func writeAudit(ctx context.Context, log *audit.Log, e audit.Event) {
	e.User = audit.Actor
	if err := log.Write(e); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "Failed to write an audit line", "operation", e.Operation, "tokenID", e.TokenID)
	}
}

// deleteSpent deletes a spent Secret, unless it is gone already or replaced by a newer one.
func (r *TokenRequestReconciler) deleteSpent(ctx context.Context, rec *token.Record) error {
	deleted, err := r.Store.Delete(ctx, rec)
	if deleted {
		writeAudit(ctx, r.Audit, audit.Of(audit.OpSpend, audit.Success, rec))
	}
	return err
}
