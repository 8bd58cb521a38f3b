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

// The status of a TokenRequest is written here and nowhere else: the Secret's name, the token
// it records, its conditions, its restarts; and the token it records is read back here
// (recordedIssued, recordedLifetime). The deferred patchStatus of Reconcile sends it.

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
	tr.Status.UsesLeft = new(int64(0))
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

// recordedLifetime is the lifetime of the token the status records, if there is one.
func recordedLifetime(tr *tokensv1alpha1.TokenRequest) (token.Lifetime, bool) {
	s := tr.Status
	if s.TokenID == "" || s.IssuedAt == nil || s.ExpiresAt == nil {
		return token.Lifetime{}, false
	}
	return token.Lifetime{IssuedAt: s.IssuedAt.UTC(), ExpiresAt: s.ExpiresAt.UTC()}, true
}

// recordedIssued is the public record of the token the status holds (no secrets), if any.
func recordedIssued(tr *tokensv1alpha1.TokenRequest) (token.Issued, bool) {
	life, ok := recordedLifetime(tr)
	if !ok {
		return token.Issued{}, false
	}
	s := tr.Status
	issued := token.Issued{Token: token.Token{ID: s.TokenID}, Lifetime: life, Source: token.SourceTokenRequest, Revision: s.Revision}
	if s.PreviousTokenID != "" && s.PreviousExpiresAt != nil {
		issued.Previous = &token.Previous{Token: token.Token{ID: s.PreviousTokenID}, ExpiresAt: s.PreviousExpiresAt.UTC()}
	}
	return forSpec(tr, issued), true
}

// rotationRequested reports whether the rotate annotation holds a value not yet answered.
func rotationRequested(tr *tokensv1alpha1.TokenRequest) bool {
	v := tr.Annotations[tokensv1alpha1.AnnotationRotate]
	return tr.Status.TokenID != "" && v != "" && v != tr.Status.LastRotationRequest
}

// spentRecorded reports whether the status says the last use was redeemed.
func spentRecorded(tr *tokensv1alpha1.TokenRequest) bool {
	c := meta.FindStatusCondition(tr.Status.Conditions, tokensv1alpha1.ConditionReady)
	return c != nil && c.Reason == tokensv1alpha1.ReasonSpent
}

// recordSecretName writes the name of the TokenRequest's Secret.
func recordSecretName(tr *tokensv1alpha1.TokenRequest) {
	tr.Status.SecretName = tr.SecretNameOrDefault()
}

// recordToken writes the issued token's public part (no secret) into the status, after act
// wrote it: a new token's use count too (a token kept keeps its count, see recordUses).
func recordToken(tr *tokensv1alpha1.TokenRequest, act action, issued token.Issued) {
	s := &tr.Status
	s.TokenID = issued.ID
	s.IssuedAt = &metav1.Time{Time: issued.IssuedAt}
	s.ExpiresAt = &metav1.Time{Time: issued.ExpiresAt}
	s.Revision = issued.Revision
	s.PreviousTokenID, s.PreviousExpiresAt = "", nil
	if p := issued.Previous; p != nil {
		s.PreviousTokenID, s.PreviousExpiresAt = p.ID, &metav1.Time{Time: p.ExpiresAt}
	}
	if _, fresh := auditOps[act]; fresh || act == actAdopt || issued.UsesLeft == nil {
		s.UsesLeft = nil
		if issued.UsesLeft != nil {
			s.UsesLeft = new(*issued.UsesLeft)
		}
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

// recordUses lowers the recorded use count to the Secret's, as the index has it, when that
// Secret holds the recorded token and has fewer uses left: a redemption. It never raises it:
// a Secret rolled back to more uses is not believed (see token.Record.Left).
func recordUses(tr *tokensv1alpha1.TokenRequest, cached *token.Record) {
	s := &tr.Status
	if cached == nil || !cached.Limited() || !cached.HasToken || cached.Current.ID.String() != s.TokenID {
		return
	}
	if s.UsesLeft == nil || cached.UsesLeft < *s.UsesLeft {
		s.UsesLeft = new(cached.UsesLeft)
	}
}

// restartsDue reports whether the workloads of spec.rotation.restartTargets have not all been
// handled for the current token: after a rotation, a re-issue or a replacement (revision 2
// on), while the token is Ready. The first token needs no restart: workloads start with it.
func restartsDue(tr *tokensv1alpha1.TokenRequest) bool {
	rot := tr.Spec.Rotation
	return rot != nil && len(rot.RestartTargets) > 0 && tr.Status.Revision > 1 &&
		tr.Status.RestartedRevision < tr.Status.Revision && tr.Status.IssuedAt != nil
}

// overlapCondition is the RolloutOverlap condition the spec calls for; nil without
// restartTargets (the condition is then removed).
func overlapCondition(tr *tokensv1alpha1.TokenRequest) *metav1.Condition {
	if tr.Spec.Rotation == nil || len(tr.Spec.Rotation.RestartTargets) == 0 {
		return nil
	}
	overlap, _ := renewalWindow(tr)
	c := &metav1.Condition{Type: tokensv1alpha1.ConditionRolloutOverlap, Status: metav1.ConditionTrue,
		Reason: tokensv1alpha1.ReasonOverlapSufficient, ObservedGeneration: tr.Generation,
		Message: fmt.Sprintf("The previous token validates for %s after a rotation, time for the restarted workloads' rollouts", overlap)}
	if overlap < MinRolloutOverlap {
		c.Status, c.Reason = metav1.ConditionFalse, tokensv1alpha1.ReasonOverlapTooShort
		c.Message = fmt.Sprintf("The previous token validates for only %s after a rotation, less than %s: pods of a restarted "+
			"workload that are not replaced by then fail with the old token; raise spec.rotation.renewBefore", overlap, MinRolloutOverlap)
	}
	return c
}

// setOverlapCondition keeps the RolloutOverlap condition as the spec calls for.
func setOverlapCondition(tr *tokensv1alpha1.TokenRequest) {
	if c := overlapCondition(tr); c != nil {
		meta.SetStatusCondition(&tr.Status.Conditions, *c)
		return
	}
	meta.RemoveStatusCondition(&tr.Status.Conditions, tokensv1alpha1.ConditionRolloutOverlap)
}

// restartIntervalCondition is the RestartInterval condition the spec calls for with a minimum
// restart interval of minInterval; nil without restartTargets or without a limit (the
// condition is then removed). Scheduled rotations come ttl - renewBefore apart at the
// closest (see renewalTime).
func restartIntervalCondition(tr *tokensv1alpha1.TokenRequest, minInterval time.Duration) *metav1.Condition {
	window, ok := renewalWindow(tr)
	if !ok || len(tr.Spec.Rotation.RestartTargets) == 0 || minInterval <= 0 {
		return nil
	}
	every := specTTL(tr) - window
	c := &metav1.Condition{Type: tokensv1alpha1.ConditionRestartInterval, Status: metav1.ConditionTrue,
		Reason: tokensv1alpha1.ReasonIntervalSufficient, ObservedGeneration: tr.Generation,
		Message: fmt.Sprintf("Scheduled rotations come at least %s apart, no closer than the one restart per workload "+
			"per %s (--min-restart-interval)", every, minInterval)}
	if every < minInterval {
		c.Status, c.Reason = metav1.ConditionFalse, tokensv1alpha1.ReasonRotatesTooOften
		c.Message = fmt.Sprintf("The token rotates as often as every %s, but a workload is restarted at most once per %s "+
			"(--min-restart-interval): restart targets miss new tokens and may hold one that no longer validates; "+
			"raise spec.ttl or lower spec.rotation.renewBefore", every, minInterval)
	}
	return c
}

// setRestartIntervalCondition keeps the RestartInterval condition as the spec calls for.
func setRestartIntervalCondition(tr *tokensv1alpha1.TokenRequest, minInterval time.Duration) {
	if c := restartIntervalCondition(tr, minInterval); c != nil {
		meta.SetStatusCondition(&tr.Status.Conditions, *c)
		return
	}
	meta.RemoveStatusCondition(&tr.Status.Conditions, tokensv1alpha1.ConditionRestartInterval)
}

// recordRestarts writes the restarts done for the current revision, and the revision itself
// once every target is handled.
func recordRestarts(tr *tokensv1alpha1.TokenRequest, entries []tokensv1alpha1.WorkloadRestart, done bool) {
	tr.Status.Restarts = entries
	if done {
		tr.Status.RestartedRevision = tr.Status.Revision
	}
}
