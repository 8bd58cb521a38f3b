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

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/tokenops/token-operator/internal/audit"
	"github.com/tokenops/token-operator/internal/index"
	"github.com/tokenops/token-operator/internal/indexsource"
	"github.com/tokenops/token-operator/internal/store"
	"github.com/tokenops/token-operator/internal/token"
)

// ExpiryReconciler deletes every token Secret, whatever issued it, at its expires-at. It is
// the only code that removes expired tokens: TokenRequests, the HTTP API and its clear
// endpoint all rely on it. It is driven by the token index, not by a Secret informer.
type ExpiryReconciler struct {
	// Tokens is the token index the controller is driven by and reads from.
	Tokens *index.Index
	// Store deletes the expired Secrets; its clock is the controller's.
	Store *store.Store
	// MaxConcurrentReconciles is how many Secrets are deleted at once (default 1).
	MaxConcurrentReconciles int
	// Audit receives a line for each expired Secret deleted (nil: no audit log).
	Audit *audit.Log
}

// Reconcile deletes a token Secret whose expires-at has passed (or does not parse), with a
// UID precondition so that a Secret re-created under the same name is never hit, and
// otherwise asks to be woken at that expires-at.
func (r *ExpiryReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	rec, ok := r.Tokens.Get(req.NamespacedName)
	if !ok || rec.Deleting {
		return ctrl.Result{}, nil
	}
	expiresAt := rec.ExpiresAt()
	if remaining := expiresAt.Sub(r.Store.Clock.Now()); remaining > 0 {
		if needsDigest(rec) {
			if err := r.digestOnly(ctx, rec); err != nil {
				return ctrl.Result{}, err
			}
		}
		return ctrl.Result{RequeueAfter: remaining}, nil
	}
	// A slice expires whole: the audit trail has a line for each of its tokens, as for a
	// token Secret of its own.
	expired := []*token.Record{rec}
	if rec.Packing == token.PackedSlice {
		expired = r.Tokens.Entries(req.NamespacedName)
	}
	deleted, err := r.Store.Expire(ctx, rec)
	if err != nil || !deleted {
		return ctrl.Result{}, err
	}
	for _, t := range expired {
		e := audit.Of(audit.OpExpire, audit.Success, t)
		e.Subject = r.Store.Tokens.Trust.AuditSubject(t.Subject())
		writeAudit(ctx, r.Audit, e)
	}
	ctrl.LoggerFrom(ctx).V(1).Info("Deleted expired Secret", "expiresAt", expiresAt, "lag", r.Store.Clock.Since(expiresAt))
	return ctrl.Result{}, nil
}

// digestOnly has the store replace the plaintext of an HTTP token written by an earlier
// version with its digest.
func (r *ExpiryReconciler) digestOnly(ctx context.Context, rec *token.Record) error {
	changed, err := r.Store.DigestOnly(ctx, rec)
	if changed {
		ctrl.LoggerFrom(ctx).Info("Replaced the plaintext of an HTTP token with its digest", "tokenID", rec.Current.ID.String())
	}
	return err
}

// SetupWithManager registers the controller, driven by every change in the token index.
func (r *ExpiryReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("token-expiry").
		WatchesRawSource(indexsource.New(r.Tokens, dueAtExpiry, true, nil)).
		WithOptions(controller.Options{
			MaxConcurrentReconciles: max(r.MaxConcurrentReconciles, 1),
			// The tokens due together (thousands expiring in one second) go through this queue
			// at once; client-go's queue keeps less per item than controller-runtime's priority
			// queue (the default), whose maps also keep their size once drained.
			UsePriorityQueue: new(false),
		}).
		Complete(r)
}

// dueAtExpiry maps a token Secret, new or with a new expiry, to a request for it at its
// expiry: the source holds it until then, as a RequeueAfter would, without a reconcile now. A
// Secret that holds an HTTP token in plaintext (an earlier version's) is due now, to be
// converted. A Secret gone, or changed in another way, needs nothing.
func dueAtExpiry(old, updated *token.Record) []indexsource.Due {
	if updated == nil || (old != nil && old.Current.ExpiresAt == updated.Current.ExpiresAt && !needsDigest(updated)) {
		return nil
	}
	d := indexsource.Due{Request: reconcile.Request{NamespacedName: updated.Key()}}
	if !needsDigest(updated) {
		d.At = updated.ExpiresAt()
	}
	return []indexsource.Due{d}
}

// needsDigest reports whether a Secret holds an HTTP token in plaintext, as an earlier version
// wrote it.
func needsDigest(rec *token.Record) bool {
	return rec.Plaintext && rec.Source == token.SourceHTTP && rec.HasToken
}
