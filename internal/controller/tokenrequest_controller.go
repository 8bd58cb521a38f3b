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
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	tokensv1alpha1 "github.com/tokenops/token-operator/api/v1alpha1"
	"github.com/tokenops/token-operator/internal/audit"
	"github.com/tokenops/token-operator/internal/index"
	"github.com/tokenops/token-operator/internal/indexsource"
	"github.com/tokenops/token-operator/internal/store"
	"github.com/tokenops/token-operator/internal/token"
)

// DefaultMaxTTL is the longest ttl a TokenRequest may ask for unless --max-ttl says otherwise.
const DefaultMaxTTL = 8760 * time.Hour

// conflictRetry is how often a TokenRequest blocked by a Secret it does not own looks again:
// such a Secret lies outside the token index's label-filtered watch, so no event announces that
// it went away.
const conflictRetry = time.Minute

// Event reasons, on transitions only.
const (
	EventTokenIssued    = "TokenIssued"
	EventTokenReissued  = "TokenReissued"
	EventTokenExpired   = "TokenExpired"
	EventTokenRotated   = "TokenRotated"
	EventTokenSpent     = "TokenSpent"
	EventSecretConflict = "SecretConflict"
	EventInvalidSpec    = "InvalidSpec"
	EventRestarted      = "WorkloadRestarted"
	EventRestartFailed  = "RestartFailed"
	EventRestartSkipped = "RestartSkipped"
)

// TokenRequestReconciler issues the token of a TokenRequest into its Secret, exactly once,
// keeps that Secret as the TokenRequest's status records it, rotates the token when
// spec.rotation or the rotate annotation asks, and marks the TokenRequest Expired when the
// token runs out or Spent when its last use is redeemed. Deleting expired Secrets is the
// ExpiryReconciler's job; deleting a spent one is this controller's, once the status says so.
type TokenRequestReconciler struct {
	client.Client
	// Tokens is the token index: the controller reads the TokenRequests' Secrets from it and
	// is woken by their changes.
	Tokens *index.Index
	// Store writes the TokenRequests' Secrets.
	Store *store.Store
	// APIReader reads around the cache before a decision that stale data would make wrong.
	APIReader client.Reader
	Recorder  events.EventRecorder
	// Clock tells the time; tests move it.
	Clock clock.PassiveClock
	// MaxTTL is the longest ttl accepted (DefaultMaxTTL when zero).
	MaxTTL time.Duration
	// MinRestartInterval is the shortest time between two restarts of one workload of
	// spec.rotation.restartTargets, whatever TokenRequest asks (0: no limit); a restart due
	// sooner waits.
	MinRestartInterval time.Duration
	// MaxConcurrentReconciles is how many TokenRequests are reconciled at once (default 1).
	MaxConcurrentReconciles int
	// Audit receives a line for each token issued, re-issued, replaced or rotated, and each
	// spent Secret deleted (nil: no audit log).
	Audit *audit.Log
}

// +kubebuilder:rbac:groups=tokens.tokenops.io,resources=tokenrequests,verbs=get;list;watch
// +kubebuilder:rbac:groups=tokens.tokenops.io,resources=tokenrequests/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=tokens.tokenops.io,resources=tokenrequests/finalizers,verbs=update
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile brings one TokenRequest's Secret and status in line; every status change is
// written once, by the deferred patch.
func (r *TokenRequestReconciler) Reconcile(ctx context.Context, req ctrl.Request) (result ctrl.Result, retErr error) {
	tr := &tokensv1alpha1.TokenRequest{}
	if err := r.Get(ctx, req.NamespacedName, tr); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !tr.DeletionTimestamp.IsZero() {
		// The garbage collector deletes the Secret with its owner.
		return ctrl.Result{}, nil
	}
	before := tr.DeepCopy()
	defer func() {
		if err := r.patchStatus(ctx, before, tr); err != nil {
			retErr = errors.Join(retErr, err)
		}
	}()
	return r.reconcileToken(ctx, tr)
}

// reconcileToken makes the Secret hold the token the status records, issuing one if there is
// none yet, and asks to be woken when something is next due: it observes (the index and the
// clock; the API server only when the index cannot tell), decides, and carries out.
func (r *TokenRequestReconciler) reconcileToken(ctx context.Context, tr *tokensv1alpha1.TokenRequest) (ctrl.Result, error) {
	recordSecretName(tr)
	ttl, err := r.ttl(tr)
	if err != nil {
		r.markInvalid(tr, err.Error())
		return ctrl.Result{}, reconcile.TerminalError(err)
	}
	setOverlapCondition(tr)
	setRestartIntervalCondition(tr, r.MinRestartInterval)
	o := r.observe(tr, ttl)
	p := decide(o)
	if p.Action == actInspect {
		if o, err = r.inspect(ctx, o); err != nil {
			return ctrl.Result{}, err
		}
		p = decide(o)
	}
	result, err := r.carryOut(ctx, o, p)
	if apierrors.IsAlreadyExists(err) && !o.Inspected {
		// The name is taken (an index that has not seen the Secret yet, a racing reconcile, a
		// Secret we do not own): Create never overwrites; the live Secret decides, once.
		if o, err = r.inspect(ctx, o); err != nil {
			return ctrl.Result{}, err
		}
		return r.carryOut(ctx, o, decide(o))
	}
	return result, err
}

// ttl is the TokenRequest's ttl, within the operator's limits.
func (r *TokenRequestReconciler) ttl(tr *tokensv1alpha1.TokenRequest) (time.Duration, error) {
	ttl := specTTL(tr)
	maxTTL := r.MaxTTL
	if maxTTL <= 0 {
		maxTTL = DefaultMaxTTL
	}
	switch {
	case ttl < time.Second:
		return 0, fmt.Errorf("spec.ttl %s is below the minimum of 1s", ttl)
	case ttl > maxTTL:
		return 0, fmt.Errorf("spec.ttl %s is above the operator's --max-ttl of %s", ttl, maxTTL)
	}
	return ttl, nil
}

// specTTL is spec.ttl, or its default of 60 minutes.
func specTTL(tr *tokensv1alpha1.TokenRequest) time.Duration {
	if tr.Spec.TTL != nil {
		return tr.Spec.TTL.Duration
	}
	return 60 * time.Minute
}

// SetupWithManager registers the controller: TokenRequests and the Secrets they own.
func (r *TokenRequestReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.Clock == nil {
		r.Clock = clock.RealClock{}
	}
	if r.APIReader == nil {
		r.APIReader = mgr.GetAPIReader()
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&tokensv1alpha1.TokenRequest{}).
		// A Secret's creation is the controller's own doing and needs no second look (that
		// look, on a cache that has not yet seen the status, would only lose a patch race).
		// Edits and deletions by others do.
		WatchesRawSource(indexsource.New(r.Tokens, ownerRequests, false, nil)).
		Named("tokenrequest").
		WithOptions(controller.Options{MaxConcurrentReconciles: max(r.MaxConcurrentReconciles, 1)}).
		Complete(r)
}

// ownerRequests maps an edit or deletion of a token Secret to a request for the TokenRequest
// that controls it; a Secret newly indexed maps to nothing (see SetupWithManager).
func ownerRequests(old, updated *token.Record) []indexsource.Due {
	if old == nil {
		return nil
	}
	var due []indexsource.Due
	for _, rec := range []*token.Record{old, updated} {
		if rec != nil && rec.Controller != nil {
			req := reconcile.Request{NamespacedName: types.NamespacedName{Namespace: rec.Namespace, Name: rec.Controller.Name}}
			if len(due) == 0 || due[0].Request != req {
				due = append(due, indexsource.Due{Request: req})
			}
		}
	}
	return due
}
