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

package token

import "k8s.io/apimachinery/pkg/types"

// Binding is what a TokenRequest's status records of its token: the only tokens its Secret
// may prove, until when, and how many uses are left. A Secret writer in the TokenRequest's
// namespace can roll the Secret back to an older sealed version (a revoked token, a count
// before redemptions, a spent token's Secret restored); it cannot write the status, so a
// TokenRequest's Secret proves only what both say.
type Binding struct {
	// UID is the TokenRequest's; a Secret controlled by another UID is not bound.
	UID types.UID
	// SecretName is status.secretName.
	SecretName string
	// Current and Previous are status.tokenID (until status.expiresAt) and
	// status.previousTokenID (until status.previousExpiresAt).
	Current, Previous BoundToken
	// IssuedAt is status.issuedAt in Unix seconds (0: none recorded).
	IssuedAt int64
	// UsesLeft is status.usesLeft, Unlimited when the status records no count.
	UsesLeft int64
	// Dead is true once the status says the token is spent: nothing validates any more.
	Dead bool
}

// BoundToken is one token a Binding records.
type BoundToken struct {
	ID        BinaryID
	ExpiresAt int64
	Set       bool
}

// until is the expiry the Binding records for id, and whether it records id at all.
func (b *Binding) until(id BinaryID) (int64, bool) {
	switch {
	case b.Dead:
		return 0, false
	case b.Current.Set && b.Current.ID == id:
		return b.Current.ExpiresAt, true
	case b.Previous.Set && b.Previous.ID == id:
		return b.Previous.ExpiresAt, true
	}
	return 0, false
}

// Bound is what a Binding lets one Record of a TokenRequest's Secret prove: only the slots
// below prove anything. A Record without one (a token issued over HTTP) is not bounded.
type Bound struct {
	// Current and Previous say whether the status records the token in that slot, and
	// CurrentUntil and PreviousUntil the expiry it records for it.
	Current, Previous           bool
	CurrentUntil, PreviousUntil int64
	// UsesLeft is the status's count (Unlimited: none recorded).
	UsesLeft int64
}

// same reports whether two Bounds (nil: none) say the same.
func (b *Bound) same(o *Bound) bool {
	return b == o || b != nil && o != nil && *b == *o
}

// BoundBy is what b lets r prove: nothing when b is nil, or is another TokenRequest's, or
// records another Secret.
func (r *Record) BoundBy(b *Binding) *Bound {
	out := &Bound{UsesLeft: Unlimited}
	if b == nil || r.Controller == nil || r.Controller.UID != b.UID || r.Name != b.SecretName {
		return out
	}
	out.UsesLeft = b.UsesLeft
	if r.HasToken {
		out.CurrentUntil, out.Current = b.until(r.Current.ID)
	}
	if r.HasPrevious() {
		out.PreviousUntil, out.Previous = b.until(r.Previous().ID)
	}
	return out
}

// Proves reports whether the token in slot may validate at all: always for an unchecked
// Record, only a slot the status records for a TokenRequest's.
func (r *Record) Proves(slot Slot) bool {
	switch {
	case slot == SlotNone:
		return false
	case r.Bound == nil:
		return true
	case slot == SlotCurrent:
		return r.Bound.Current
	}
	return r.Bound.Previous
}

// expiresAt is when the token in slot expires: the Secret's time, never later than the
// status's.
func (r *Record) expiresAt(slot Slot) int64 {
	exp := r.Current.ExpiresAt
	if slot == SlotPrevious {
		exp = min(exp, r.Previous().ExpiresAt)
	}
	if r.Bound != nil {
		if slot == SlotPrevious {
			exp = min(exp, r.Bound.PreviousUntil)
		} else {
			exp = min(exp, r.Bound.CurrentUntil)
		}
	}
	return exp
}

// Left is how many uses the token has left, the lower of the Secret's count and the
// status's; Unlimited for a token without a use limit.
func (r *Record) Left() int64 {
	if r.Bound != nil && r.Bound.UsesLeft != Unlimited && r.UsesLeft != Unlimited {
		return min(r.UsesLeft, r.Bound.UsesLeft)
	}
	return r.UsesLeft
}
