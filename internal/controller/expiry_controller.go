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
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/tokenops/token-operator/internal/metrics"
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

	// trigger carries Secrets that other components found expired (Enqueue).
	trigger chan event.GenericEvent
}

// triggerBuffer bounds the Secrets waiting to be handed over by Enqueue. When it is full the
// Secret is left to its own RequeueAfter, which is already due.
const triggerBuffer = 4096

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
	if !token.IsTokenSecret(secret) || !secret.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}
	expiresAt, parseErr := token.ExpiresAt(secret)
	if parseErr == nil {
		if remaining := expiresAt.Sub(r.Clock.Now()); remaining > 0 {
			return ctrl.Result{RequeueAfter: remaining}, nil
		}
	}
	deleted, err := r.DeleteExpired(ctx, secret)
	if err != nil || !deleted {
		return ctrl.Result{}, err
	}
	if parseErr != nil {
		log.Info("Deleted token Secret with unreadable expiry", "reason", parseErr.Error())
	} else {
		log.V(1).Info("Deleted expired Secret", "expiresAt", expiresAt, "lag", r.Clock.Since(expiresAt))
	}
	return ctrl.Result{}, nil
}

// DeleteExpired deletes a token Secret if its token has expired (or its expiry does not
// parse), with a UID precondition so that a newer Secret of the same name is never hit. It
// reports whether this call deleted it: a Secret already gone or replaced is no error, so
// several replicas may run it at once.
func (r *ExpiryReconciler) DeleteExpired(ctx context.Context, secret *corev1.Secret) (bool, error) {
	if !token.IsTokenSecret(secret) || !secret.DeletionTimestamp.IsZero() {
		return false, nil
	}
	if expiresAt, err := token.ExpiresAt(secret); err == nil && r.Clock.Now().Before(expiresAt) {
		return false, nil
	}
	err := r.Delete(ctx, secret, client.Preconditions{UID: &secret.UID})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	metrics.ExpiredDeleted.Inc()
	return true, nil
}

// Enqueue hands a Secret found expired elsewhere (by a validation) to the controller now,
// without blocking the caller.
func (r *ExpiryReconciler) Enqueue(secret *corev1.Secret) {
	select {
	case r.trigger <- event.GenericEvent{Object: secret}:
	default:
	}
}

// SetupWithManager registers the controller: it watches token Secrets only.
func (r *ExpiryReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.Clock == nil {
		r.Clock = clock.RealClock{}
	}
	r.trigger = make(chan event.GenericEvent, triggerBuffer)
	return ctrl.NewControllerManagedBy(mgr).
		Named("token-expiry").
		For(&corev1.Secret{}, builder.WithPredicates(predicate.NewPredicateFuncs(func(o client.Object) bool {
			s, ok := o.(*corev1.Secret)
			return ok && token.IsTokenSecret(s)
		}))).
		WatchesRawSource(source.Channel(r.trigger, &handler.EnqueueRequestForObject{})).
		WithOptions(controller.Options{MaxConcurrentReconciles: max(r.MaxConcurrentReconciles, 1)}).
		Complete(r)
}
