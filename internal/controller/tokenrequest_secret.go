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
	"fmt"
	"maps"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	tokensv1alpha1 "github.com/tokenops/token-operator/api/v1alpha1"
	"github.com/tokenops/token-operator/internal/metrics"
	"github.com/tokenops/token-operator/internal/token"
)

// secretConflictError means the TokenRequest's Secret name is taken by a Secret it does not
// control. That Secret is never touched.
type secretConflictError struct{ name string }

func (e *secretConflictError) Error() string {
	return fmt.Sprintf("Secret %q exists and is not owned by this TokenRequest; it is left untouched", e.name)
}

// invalidSpecError means the API server refused the Secret the spec describes.
type invalidSpecError struct{ err error }

func (e *invalidSpecError) Error() string {
	return "the Secret the spec describes is invalid: " + e.err.Error()
}

// issue writes the TokenRequest's token into a new Secret. With no token recorded yet it is the
// first issuance; with one recorded, the Secret was deleted by hand and the new token keeps the
// recorded expiry. Create never overwrites: when the name is taken (a cache that has not seen
// our own write, a racing reconcile, a foreign Secret) the live Secret decides.
func (r *TokenRequestReconciler) issue(ctx context.Context, tr *tokensv1alpha1.TokenRequest, ttl time.Duration) error {
	key := client.ObjectKey{Namespace: tr.Namespace, Name: tr.Status.SecretName}
	now := r.Clock.Now()
	life, reissue := recordedLifetime(tr)
	if reissue {
		live := &corev1.Secret{}
		err := r.APIReader.Get(ctx, key, live)
		if err == nil {
			return r.keep(ctx, tr, live, ttl)
		}
		if !apierrors.IsNotFound(err) {
			return err
		}
		if current, err := r.statusIsCurrent(ctx, tr); err != nil || !current {
			return err
		}
		life.IssuedAt = now.UTC().Truncate(time.Second)
	} else {
		life = token.NewLifetime(now, ttl)
	}

	issued := token.Issued{Token: token.Generate(), Lifetime: life, Source: token.SourceTokenRequest}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: key.Name, Namespace: key.Namespace}}
	if t := tr.Spec.SecretTemplate; t != nil {
		secret.Labels = maps.Clone(t.Labels)
		secret.Annotations = maps.Clone(t.Annotations)
	}
	issued.ApplyTo(secret)
	if err := controllerutil.SetControllerReference(tr, secret, r.Scheme); err != nil {
		return err
	}
	if err := r.Create(ctx, secret); err != nil {
		switch {
		case apierrors.IsAlreadyExists(err):
			live := &corev1.Secret{}
			if err := r.APIReader.Get(ctx, key, live); err != nil {
				return err
			}
			return r.keep(ctx, tr, live, ttl)
		case apierrors.IsInvalid(err):
			return &invalidSpecError{err: err}
		}
		return err
	}
	metrics.TokensIssued.WithLabelValues(string(token.SourceTokenRequest)).Inc()
	record(tr, issued)
	if reissue {
		r.event(tr, EventTokenReissued, "Reissue", "Secret %s was deleted before expiry; issued token %s", key.Name, issued.ID)
	} else {
		r.event(tr, EventTokenIssued, "Issue", "Issued token %s into Secret %s, expires at %s",
			issued.ID, key.Name, issued.ExpiresAt.Format(time.RFC3339))
	}
	return nil
}

// keep makes an existing Secret hold what the status records. A Secret the TokenRequest does
// not control is a conflict. With nothing recorded yet, the Secret's token is adopted (it was
// written before a restart or a lost status patch). Edited labels, annotations or token-id are
// healed from the status; a token whose value was edited cannot be restored, so it is
// replaced with a new one that keeps the recorded expiry.
func (r *TokenRequestReconciler) keep(ctx context.Context, tr *tokensv1alpha1.TokenRequest, secret *corev1.Secret, ttl time.Duration) error {
	if !metav1.IsControlledBy(secret, tr) {
		return &secretConflictError{name: secret.Name}
	}
	life, recorded := recordedLifetime(tr)
	if recorded && token.InStatus(secret, tr.Status.TokenID, life, token.SourceTokenRequest) {
		return nil // the steady state: no API call
	}
	if _, _, concealed := token.Concealed(secret); concealed {
		// The cache keeps only the token's digest: adopt, heal or replace on the live Secret.
		live := &corev1.Secret{}
		if err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(secret), live); err != nil {
			return err // NotFound included: the next reconcile re-issues
		}
		if !metav1.IsControlledBy(live, tr) {
			return &secretConflictError{name: live.Name}
		}
		secret = live
	}
	now := r.Clock.Now()
	held, heldErr := token.FromSecret(secret)
	if !recorded {
		life = token.NewLifetime(now, ttl)
		if heldErr == nil && !held.IssuedAt.IsZero() && !held.ExpiresAt.IsZero() {
			life = held.Lifetime
		}
	}
	desired := token.Issued{Token: held.Token, Lifetime: life, Source: token.SourceTokenRequest}
	replace := heldErr != nil || (recorded && held.ID != tr.Status.TokenID)
	if replace {
		if current, err := r.statusIsCurrent(ctx, tr); err != nil || !current {
			return err
		}
		desired.Token = token.Generate()
		desired.IssuedAt = now.UTC().Truncate(time.Second)
	}

	updated := secret.DeepCopy()
	if desired.ApplyTo(updated) {
		// The resourceVersion read with the Secret makes this fail rather than overwrite a
		// newer write.
		if err := r.Update(ctx, updated); err != nil {
			return err
		}
		if replace {
			metrics.TokensIssued.WithLabelValues(string(token.SourceTokenRequest)).Inc()
			r.event(tr, EventTokenReissued, "Reissue", "Secret %s held an edited token; issued token %s", secret.Name, desired.ID)
		} else {
			ctrl.LoggerFrom(ctx).Info("Healed edited Secret from status", "secret", secret.Name, "tokenID", desired.ID)
		}
	}
	record(tr, desired)
	return nil
}

// statusIsCurrent reports whether the cached TokenRequest records the same token as the API
// server does. It guards every token replacement: a stale cache must not make the controller
// replace a token it has just issued.
func (r *TokenRequestReconciler) statusIsCurrent(ctx context.Context, tr *tokensv1alpha1.TokenRequest) (bool, error) {
	live := &tokensv1alpha1.TokenRequest{}
	if err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(tr), live); err != nil {
		return false, err
	}
	if live.UID != tr.UID || live.Status.TokenID != tr.Status.TokenID {
		ctrl.LoggerFrom(ctx).V(1).Info("Cached TokenRequest is stale; waiting for the newer one")
		return false, nil
	}
	return true, nil
}

// record writes the issued token's public record into the status.
func record(tr *tokensv1alpha1.TokenRequest, issued token.Issued) {
	tr.Status.TokenID = issued.ID
	tr.Status.IssuedAt = &metav1.Time{Time: issued.IssuedAt}
	tr.Status.ExpiresAt = &metav1.Time{Time: issued.ExpiresAt}
}
