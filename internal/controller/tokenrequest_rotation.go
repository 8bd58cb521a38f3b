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
	"time"

	tokensv1alpha1 "github.com/tokenops/token-operator/api/v1alpha1"
	"github.com/tokenops/token-operator/internal/token"
)

// renewalTime is when spec.rotation replaces a token, whole seconds: renewBefore its expiry;
// ok is false without spec.rotation. A rotation never pushes out a previous token that still
// validates: when renewBefore is more than half the ttl, the renewal waits for the previous
// token's expiry, so at most two tokens validate at once and each until its own expiry.
func renewalTime(tr *tokensv1alpha1.TokenRequest, issued token.Issued) (time.Time, bool) {
	before, ok := renewalWindow(tr)
	if !ok {
		return time.Time{}, false
	}
	at := issued.ExpiresAt.Add(-before).Truncate(time.Second)
	if p := issued.Previous; p != nil && p.ExpiresAt.After(at) {
		at = p.ExpiresAt
	}
	return at, true
}

// previousLapsed reports whether the token a rotation replaced has expired and is due to be
// removed from the Secret.
func previousLapsed(issued token.Issued, now time.Time) bool {
	return issued.Previous != nil && !now.Before(issued.Previous.ExpiresAt)
}

// rotationDue reports whether the token must be replaced at now: on request, or at its
// renewal time (an expired token of a rotating TokenRequest included).
func rotationDue(tr *tokensv1alpha1.TokenRequest, issued token.Issued, now time.Time) bool {
	if rotationRequested(tr) {
		return true
	}
	t, ok := renewalTime(tr, issued)
	return ok && !now.Before(t)
}

// rotate is the token that replaces current at now: fresh, with a new lifetime, the next
// revision and a fresh use count. With spec.rotation, a current token that still validates (valid is false
// for one edited by hand) becomes the previous token for the rotation's overlap, never beyond
// its own expiry: at the renewal time that is exactly its remaining life, and an on-demand
// rotation gives it the same grace period. Without spec.rotation, a requested rotation cuts
// it off at once.
func rotate(tr *tokensv1alpha1.TokenRequest, current token.Issued, fresh token.Token, valid bool, ttl time.Duration,
	now time.Time) token.Issued {
	next := token.Issued{
		Token:    fresh,
		Lifetime: token.NewLifetime(now, ttl),
		Source:   token.SourceTokenRequest,
		Revision: current.Revision + 1,
		UsesLeft: maxUses(tr),
	}
	if overlap, ok := renewalWindow(tr); ok && valid && now.Before(current.ExpiresAt) {
		expires := current.ExpiresAt
		if end := now.Add(overlap).Truncate(time.Second); end.Before(expires) {
			expires = end
		}
		if now.Before(expires) {
			next.Previous = &token.Previous{Token: current.Token, ExpiresAt: expires}
		}
	}
	return next
}

// renewalWindow is how long before its expiry spec.rotation replaces a token, and so how long
// the replaced token keeps validating after a rotation: renewBefore, or renewBeforePercentage
// of spec.ttl (of the ttl, never of the current token's own lifetime, which a re-issue that
// keeps the recorded expiry shortens); ok is false without spec.rotation.
func renewalWindow(tr *tokensv1alpha1.TokenRequest) (time.Duration, bool) {
	switch rot := tr.Spec.Rotation; {
	case rot == nil:
		return 0, false
	case rot.RenewBefore != nil:
		return rot.RenewBefore.Duration, true
	case rot.RenewBeforePercentage != nil:
		return specTTL(tr) * time.Duration(*rot.RenewBeforePercentage) / 100, true
	}
	return 0, false
}

// nextWake is how long until the next thing the controller must do for a TokenRequest that
// holds a token: rotate it, drop the previous token, or mark it expired.
func (r *TokenRequestReconciler) nextWake(tr *tokensv1alpha1.TokenRequest, now time.Time) time.Duration {
	recorded, _ := recordedIssued(tr)
	next := recorded.ExpiresAt
	if t, ok := renewalTime(tr, recorded); ok {
		next = t
	}
	if p := tr.Status.PreviousExpiresAt; p != nil && p.Time.Before(next) {
		next = p.UTC()
	}
	if d := next.Sub(now); d > 0 {
		return d
	}
	// Due but not done (a stale cache): the newer TokenRequest's event comes first.
	return time.Second
}

// usesCarried is the use count of a token that replaces one deleted or edited by hand: the
// count the status recorded for it (deleting or editing the Secret never buys uses), else
// spec.maxUses.
func usesCarried(tr *tokensv1alpha1.TokenRequest) *int64 {
	if n := tr.Status.UsesLeft; n != nil && tr.Spec.MaxUses != nil {
		return new(*n)
	}
	return maxUses(tr)
}

// maxUses is a fresh use count for the TokenRequest's token, nil without a limit.
func maxUses(tr *tokensv1alpha1.TokenRequest) *int64 {
	if tr.Spec.MaxUses == nil {
		return nil
	}
	return new(*tr.Spec.MaxUses)
}
