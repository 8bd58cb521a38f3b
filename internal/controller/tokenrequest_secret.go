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
	"k8s.io/klog/v2"
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
// first issuance. With one recorded, the Secret went away: when a rotation is due the new
// token gets a new lifetime, otherwise (deleted by hand) it keeps the recorded expiry. Create
// never overwrites: when the name is taken (an index that has not seen our own write, a racing
// reconcile, a foreign Secret) the live Secret decides.
func (r *TokenRequestReconciler) issue(ctx context.Context, tr *tokensv1alpha1.TokenRequest, ttl time.Duration) error {
	key := client.ObjectKey{Namespace: tr.Namespace, Name: tr.Status.SecretName}
	now := r.Clock.Now()
	issued := token.Issued{Token: token.Generate(), Source: token.SourceTokenRequest, UsesLeft: maxUses(tr), Revision: 1}
	recorded, reissue := recordedIssued(tr)
	rotated := false
	if reissue {
		live := &corev1.Secret{}
		err := r.APIReader.Get(ctx, key, live)
		if err == nil {
			return r.keepLive(ctx, tr, live, ttl)
		}
		if !apierrors.IsNotFound(err) {
			return err
		}
		if current, err := r.statusIsCurrent(ctx, tr); err != nil || !current {
			return err
		}
		issued.Revision = recorded.Revision + 1
		rotated = rotationDue(tr, recorded, now)
		if rotated {
			issued.Lifetime = token.NewLifetime(now, ttl)
		} else {
			issued.Lifetime = token.Lifetime{IssuedAt: now.UTC().Truncate(time.Second), ExpiresAt: recorded.ExpiresAt}
		}
	} else {
		issued.Lifetime = token.NewLifetime(now, ttl)
	}

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
			return r.keepLive(ctx, tr, live, ttl)
		case apierrors.IsInvalid(err):
			return &invalidSpecError{err: err}
		}
		return err
	}
	r.Tokens.Put(secret) // read our own write at once; the watch confirms it
	metrics.TokensIssued.WithLabelValues(string(token.SourceTokenRequest)).Inc()
	r.record(tr, issued)
	switch {
	case rotated:
		r.event(tr, EventTokenRotated, "Rotate", "Issued token %s into a new Secret %s (revision %d), expires at %s",
			issued.ID, key.Name, issued.Revision, issued.ExpiresAt.Format(time.RFC3339))
	case reissue:
		r.event(tr, EventTokenReissued, "Reissue", "Secret %s was deleted before expiry; issued token %s", key.Name, issued.ID)
	default:
		r.event(tr, EventTokenIssued, "Issue", "Issued token %s into Secret %s, expires at %s",
			issued.ID, key.Name, issued.ExpiresAt.Format(time.RFC3339))
	}
	return nil
}

// keep makes an existing Secret, as the token index has it, hold what the status records,
// and rotates its token when a rotation is due. A Secret the TokenRequest does not control is
// a conflict. In the steady state it makes no API call; otherwise it acts on the live Secret
// (keepLive), since the index keeps no token.
func (r *TokenRequestReconciler) keep(ctx context.Context, tr *tokensv1alpha1.TokenRequest, rec *token.Record, ttl time.Duration) error {
	if !rec.ControlledBy(tr.UID) {
		return &secretConflictError{name: rec.Name}
	}
	now := r.Clock.Now()
	if recorded, ok := recordedIssued(tr); ok && rec.InStatus(recorded) && rec.Limited() == (tr.Spec.MaxUses != nil) &&
		!rotationDue(tr, recorded, now) && !previousLapsed(recorded, now) {
		return nil // the steady state: no API call
	}
	live := &corev1.Secret{}
	if err := r.APIReader.Get(ctx, rec.Key(), live); err != nil {
		return err // NotFound included: the next reconcile re-issues
	}
	return r.keepLive(ctx, tr, live, ttl)
}

// keepLive makes a live Secret hold what the status records, and rotates its token when a
// rotation is due. A Secret the TokenRequest does not control is a conflict. A Secret holding
// a token newer than the status records (none yet, or a higher revision) is adopted: it was
// written before a restart or a lost status patch, so a rotation is never done twice. Edited
// labels, annotations or token-id are healed from the status; a token whose value was edited
// cannot be restored, so it is replaced with a new one that keeps the recorded expiry.
func (r *TokenRequestReconciler) keepLive(ctx context.Context, tr *tokensv1alpha1.TokenRequest, secret *corev1.Secret, ttl time.Duration) error {
	if !metav1.IsControlledBy(secret, tr) {
		return &secretConflictError{name: secret.Name}
	}
	now := r.Clock.Now()
	desired, change, err := r.desired(ctx, tr, secret, ttl, now)
	if err != nil || change == changeNone {
		return err
	}
	updated := secret.DeepCopy()
	if desired.ApplyTo(updated) {
		// The resourceVersion read with the Secret makes this fail rather than overwrite a
		// newer write: of two managers that both see a rotation due, one writes it.
		if err := r.Update(ctx, updated); err != nil {
			return err
		}
		switch change {
		case changeRotate:
			metrics.TokensIssued.WithLabelValues(string(token.SourceTokenRequest)).Inc()
			msg := fmt.Sprintf("Rotated to token %s (revision %d), expires at %s", desired.ID, desired.Revision, desired.ExpiresAt.Format(time.RFC3339))
			if desired.Previous != nil {
				msg += fmt.Sprintf("; token %s validates until %s", desired.Previous.ID, desired.Previous.ExpiresAt.Format(time.RFC3339))
			}
			r.event(tr, EventTokenRotated, "Rotate", "%s", msg)
		case changeReplace:
			metrics.TokensIssued.WithLabelValues(string(token.SourceTokenRequest)).Inc()
			r.event(tr, EventTokenReissued, "Reissue", "Secret %s held an edited token; issued token %s", secret.Name, desired.ID)
		case changeHeal:
			ctrl.LoggerFrom(ctx).Info("Healed edited Secret from status", "secret", klog.KObj(secret), "tokenID", desired.ID)
		case changePrune:
			ctrl.LoggerFrom(ctx).V(1).Info("Removed the expired previous token", "secret", klog.KObj(secret), "tokenID", desired.ID)
		}
	}
	r.record(tr, desired)
	return nil
}

// change is what keep does to a live Secret.
type change int

const (
	changeNone    change = iota // the cache was stale: wait for the newer TokenRequest
	changeHeal                  // restore metadata from the status (or adopt: nothing to write)
	changePrune                 // remove the previous token at its expiry
	changeReplace               // the token was edited: a new token, same expiry
	changeRotate                // a new token, a new lifetime, the old one kept as previous
)

// desired is what the live Secret must hold, and the kind of change that is.
func (r *TokenRequestReconciler) desired(ctx context.Context, tr *tokensv1alpha1.TokenRequest, secret *corev1.Secret,
	ttl time.Duration, now time.Time) (token.Issued, change, error) {
	held, heldErr := token.FromSecret(secret)
	recorded, isRecorded := recordedIssued(tr)
	held.Source = token.SourceTokenRequest
	if tr.Spec.MaxUses != nil && held.UsesLeft == nil {
		// A count removed by hand: the status does not keep it, and only "none left" is
		// safe to restore. Until this write, readers see no limit (token.Record.UsesLeft).
		held.UsesLeft = new(int64(0))
	}

	var desired token.Issued
	how := changeHeal
	switch {
	case heldErr == nil && !held.IssuedAt.IsZero() && !held.ExpiresAt.IsZero() &&
		(!isRecorded || held.Revision > recorded.Revision):
		// Written by an earlier pass whose status patch was lost: adopt it as it is, and
		// take the rotation request it answered as answered.
		desired = held
		desired.Revision = max(held.Revision, 1)
		return desired, how, nil
	case !isRecorded:
		desired = token.Issued{Token: held.Token, Lifetime: token.NewLifetime(now, ttl), Source: token.SourceTokenRequest,
			Revision: 1, UsesLeft: maxUses(tr)}
		if heldErr != nil {
			desired.Token, how = token.Generate(), changeReplace
		}
		return desired, how, nil
	}

	desired = recorded
	desired.Token = held.Token
	desired.UsesLeft = held.UsesLeft
	desired.Previous = nil
	lapsed := previousLapsed(recorded, now)
	if p := recorded.Previous; p != nil && !lapsed && held.Previous != nil && held.Previous.ID == p.ID {
		desired.Previous = &token.Previous{Token: held.Previous.Token, ExpiresAt: p.ExpiresAt}
	}
	if rec, err := token.RecordOf(secret); err == nil && lapsed && rec.InStatus(recorded) {
		how = changePrune // nothing else differs from the status
	}
	if heldErr != nil || held.ID != recorded.ID {
		how = changeReplace
	}
	if rotationDue(tr, recorded, now) {
		how = changeRotate
	}
	if how == changeHeal || how == changePrune {
		return desired, how, nil
	}
	if current, err := r.statusIsCurrent(ctx, tr); err != nil || !current {
		return token.Issued{}, changeNone, err
	}
	if how == changeRotate {
		return rotate(tr, desired, heldErr == nil && held.ID == recorded.ID, ttl, now), how, nil
	}
	desired.Token = token.Generate()
	desired.IssuedAt = now.UTC().Truncate(time.Second)
	desired.Revision++
	desired.UsesLeft = maxUses(tr)
	return desired, how, nil
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
func (r *TokenRequestReconciler) record(tr *tokensv1alpha1.TokenRequest, issued token.Issued) {
	s := &tr.Status
	s.TokenID = issued.ID
	s.IssuedAt = &metav1.Time{Time: issued.IssuedAt}
	s.ExpiresAt = &metav1.Time{Time: issued.ExpiresAt}
	s.Revision = issued.Revision
	s.PreviousTokenID, s.PreviousExpiresAt = "", nil
	if p := issued.Previous; p != nil {
		s.PreviousTokenID, s.PreviousExpiresAt = p.ID, &metav1.Time{Time: p.ExpiresAt}
	}
	s.RenewalTime = nil
	if t, ok := renewalTime(tr, issued); ok {
		s.RenewalTime = &metav1.Time{Time: t}
	}
	// Recording a token answers any rotation request made so far (a request present at
	// creation asks for nothing more than the first token). A pending request never gets
	// here without the rotation that answers it: rotationDue includes it.
	s.LastRotationRequest = tr.Annotations[tokensv1alpha1.AnnotationRotate]
}
