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

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestBoundJudge: a TokenRequest's Secret proves only what its status records.
func TestBoundJudge(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	cur, prev := Generate(), Generate()
	three := int64(3)
	issued := Issued{Token: cur, Lifetime: NewLifetime(now.Add(-time.Minute), time.Hour), Source: SourceTokenRequest,
		Revision: 2, UsesLeft: &three, Previous: &Previous{Token: prev, ExpiresAt: now.Add(time.Minute)}}
	s := NewSecret(metav1.ObjectMeta{Namespace: "team", Name: "app", OwnerReferences: []metav1.OwnerReference{{
		APIVersion: "tokens.tokenops.io/v1alpha1", Kind: "TokenRequest", Name: "app", UID: "uid", Controller: new(true)}}},
		Template{}, issued)
	curID, _ := ParseID(cur.ID)
	prevID, _ := ParseID(prev.ID)
	status := func(edit func(*Binding)) *Binding {
		b := &Binding{UID: "uid", SecretName: "app", UsesLeft: Unlimited,
			Current:  BoundToken{ID: curID, ExpiresAt: issued.ExpiresAt.Unix(), Set: true},
			Previous: BoundToken{ID: prevID, ExpiresAt: now.Add(time.Minute).Unix(), Set: true}}
		if edit != nil {
			edit(b)
		}
		return b
	}
	tests := []struct {
		name              string
		binding           *Binding
		current, previous Verdict
	}{
		{"as recorded", status(nil), VerdictValid, VerdictValid},
		{"no status known", nil, VerdictUnknown, VerdictUnknown},
		{"another TokenRequest's status", status(func(b *Binding) { b.UID = "other" }), VerdictUnknown, VerdictUnknown},
		{"status of another Secret", status(func(b *Binding) { b.SecretName = "other" }), VerdictUnknown, VerdictUnknown},
		{"status has moved on (rotated or revoked)", status(func(b *Binding) { b.Current.ID, b.Previous.Set = prevID, false }),
			VerdictUnknown, VerdictValid},
		{"status expires the token sooner", status(func(b *Binding) { b.Current.ExpiresAt = now.Unix() }), VerdictExpired, VerdictValid},
		{"status says spent", status(func(b *Binding) { b.Dead = true }), VerdictUnknown, VerdictUnknown},
		{"status count is 0", status(func(b *Binding) { b.UsesLeft = 0 }), VerdictSpent, VerdictSpent},
		{"status not yet written for a new token", status(func(b *Binding) { b.Current.Set = false }), VerdictUnknown, VerdictValid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := RecordOf(s)
			if err != nil {
				t.Fatal(err)
			}
			r.Bound = r.BoundBy(tt.binding)
			if got := r.Verify(cur.String(), now); got != tt.current {
				t.Errorf("current token: %s, want %s", got, tt.current)
			}
			if got := r.Verify(prev.String(), now); got != tt.previous {
				t.Errorf("previous token: %s, want %s", got, tt.previous)
			}
		})
	}
}

// TestLeftBelievesTheLowerCount: a Secret rolled back to more uses does not regain them.
func TestLeftBelievesTheLowerCount(t *testing.T) {
	tests := []struct {
		name          string
		secret, bound int64
		checked       bool
		want          int64
	}{
		{"HTTP token: the Secret's count", 5, 1, false, 5},
		{"status lower (a rollback)", 5, 1, true, 1},
		{"Secret lower (a redemption the status has not seen)", 1, 5, true, 1},
		{"status records no count", 2, Unlimited, true, 2},
		{"no use limit", Unlimited, Unlimited, true, Unlimited},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Record{UsesLeft: tt.secret}
			if tt.checked {
				r.Bound = &Bound{UsesLeft: tt.bound}
			}
			if got := r.Left(); got != tt.want {
				t.Errorf("Left = %d, want %d", got, tt.want)
			}
		})
	}
}
