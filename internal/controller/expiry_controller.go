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

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	"github.com/tokenops/token-operator/internal/token"
)

// ExpiryReconciler deletes every token Secret, whatever issued it, at its expires-at. It is
// the only code that removes expired tokens: TokenRequests, the HTTP API and its clear
// endpoint all rely on it.
type ExpiryReconciler struct {
	client.Client
	// Clock tells the time; tests move it.
	Clock clock.PassiveClock
	// MaxConcurrentReconciles is how many Secrets are deleted at once (default 1).
	MaxConcurrentReconciles int
}

// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch;delete

// Reconcile deletes a token Secret whose expires-at has passed (or does not parse), with a
// UID precondition so that a Secret re-created under the same name is never hit, and
// otherwise asks to be woken at that expires-at.
func (r *ExpiryReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	log := ctrl.LoggerFrom(ctx)
	secret := &corev1.Secret{}
	if err := r.Get(ctx, req.NamespacedName, secret); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !secret.DeletionTimestamp.IsZero() || !isTokenSecret(secret) {
		return ctrl.Result{}, nil
	}
	expiresAt, parseErr := token.ExpiresAt(secret)
	if parseErr == nil {
		if remaining := expiresAt.Sub(r.Clock.Now()); remaining > 0 {
			return ctrl.Result{RequeueAfter: remaining}, nil
		}
	}
	err := r.Delete(ctx, secret, client.Preconditions{UID: &secret.UID})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return ctrl.Result{}, nil // already gone, or replaced by a newer Secret
	}
	if err != nil {
		return ctrl.Result{}, err
	}
	ExpiredDeleted.Inc()
	if parseErr != nil {
		log.Info("Deleted token Secret with unreadable expiry", "reason", parseErr.Error())
	} else {
		log.V(1).Info("Deleted expired Secret", "expiresAt", expiresAt, "lag", r.Clock.Since(expiresAt))
	}
	return ctrl.Result{}, nil
}

// SetupWithManager registers the controller: it watches token Secrets only.
func (r *ExpiryReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.Clock == nil {
		r.Clock = clock.RealClock{}
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("token-expiry").
		For(&corev1.Secret{}, builder.WithPredicates(predicate.NewPredicateFuncs(isTokenSecret))).
		WithOptions(controller.Options{MaxConcurrentReconciles: max(r.MaxConcurrentReconciles, 1)}).
		Complete(r)
}
