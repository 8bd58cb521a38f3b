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
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/tokenops/token-operator/api/v1alpha1"
	"github.com/tokenops/token-operator/internal/token"
)

// patchStatus writes the status changes made since before, if any, in one patch. The patch
// carries before's resourceVersion: a reconcile that worked on a stale TokenRequest loses, and
// the newer TokenRequest, already queued by its watch event, is reconciled next.
func (r *TokenRequestReconciler) patchStatus(ctx context.Context, before, tr *tokensv1alpha1.TokenRequest) error {
	tr.Status.ObservedGeneration = tr.Generation
	if equality.Semantic.DeepEqual(before.Status, tr.Status) {
		return nil
	}
	err := r.Status().Patch(ctx, tr, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{}))
	if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
		ctrl.LoggerFrom(ctx).V(1).Info("Status patch skipped: the TokenRequest changed or went away", "reason", err.Error())
		return nil
	}
	return err
}

// setReady sets the Ready condition and reports whether its reason changed, which is when an
// event is due.
func setReady(tr *tokensv1alpha1.TokenRequest, status metav1.ConditionStatus, reason, message string) bool {
	var prevReason string
	var prevStatus metav1.ConditionStatus
	// FindStatusCondition points into the slice that SetStatusCondition updates in place.
	if prev := meta.FindStatusCondition(tr.Status.Conditions, tokensv1alpha1.ConditionReady); prev != nil {
		prevReason, prevStatus = prev.Reason, prev.Status
	}
	meta.SetStatusCondition(&tr.Status.Conditions, metav1.Condition{
		Type:               tokensv1alpha1.ConditionReady,
		Status:             status,
		Reason:             reason,
		Message:            message,
		ObservedGeneration: tr.Generation,
	})
	return prevReason != reason || prevStatus != status
}

func (r *TokenRequestReconciler) markIssued(tr *tokensv1alpha1.TokenRequest, life token.Lifetime) {
	msg := fmt.Sprintf("Token %s is in Secret %s until %s", tr.Status.TokenID, tr.Status.SecretName, life.ExpiresAt.Format(time.RFC3339))
	if t := tr.Status.RenewalTime; t != nil {
		msg += ", renewed at " + t.UTC().Format(time.RFC3339)
	}
	setReady(tr, metav1.ConditionTrue, tokensv1alpha1.ReasonIssued, msg)
}

func (r *TokenRequestReconciler) markExpired(tr *tokensv1alpha1.TokenRequest, life token.Lifetime) {
	msg := fmt.Sprintf("Token %s expired at %s; its Secret %s is deleted",
		tr.Status.TokenID, life.ExpiresAt.Format(time.RFC3339), tr.Status.SecretName)
	if setReady(tr, metav1.ConditionFalse, tokensv1alpha1.ReasonExpired, msg) {
		r.event(tr, EventTokenExpired, "Expire", "%s", msg)
	}
}

func (r *TokenRequestReconciler) markSpent(tr *tokensv1alpha1.TokenRequest) {
	msg := fmt.Sprintf("The last use of token %s was redeemed; its Secret %s is deleted", tr.Status.TokenID, tr.Status.SecretName)
	if setReady(tr, metav1.ConditionFalse, tokensv1alpha1.ReasonSpent, msg) {
		r.event(tr, EventTokenSpent, "Spend", "%s", msg)
	}
}

func (r *TokenRequestReconciler) markConflict(tr *tokensv1alpha1.TokenRequest, msg string) {
	if setReady(tr, metav1.ConditionFalse, tokensv1alpha1.ReasonSecretConflict, msg) {
		r.eventWarning(tr, EventSecretConflict, "Issue", "%s", msg)
	}
}

func (r *TokenRequestReconciler) markInvalid(tr *tokensv1alpha1.TokenRequest, msg string) {
	if setReady(tr, metav1.ConditionFalse, tokensv1alpha1.ReasonInvalidSpec, msg) {
		r.eventWarning(tr, EventInvalidSpec, "Issue", "%s", msg)
	}
}

func (r *TokenRequestReconciler) event(tr *tokensv1alpha1.TokenRequest, reason, action, note string, args ...any) {
	if r.Recorder != nil {
		r.Recorder.Eventf(tr, nil, corev1.EventTypeNormal, reason, action, note, args...)
	}
}

func (r *TokenRequestReconciler) eventWarning(tr *tokensv1alpha1.TokenRequest, reason, action, note string, args ...any) {
	if r.Recorder != nil {
		r.Recorder.Eventf(tr, nil, corev1.EventTypeWarning, reason, action, note, args...)
	}
}
