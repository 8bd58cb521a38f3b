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
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	tokensv1alpha1 "github.com/tokenops/token-operator/api/v1alpha1"
	"github.com/tokenops/token-operator/internal/token"
)

func TestRenewalTime(t *testing.T) {
	issuedAt := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
	hour := token.Issued{Lifetime: token.Lifetime{IssuedAt: issuedAt, ExpiresAt: issuedAt.Add(time.Hour)}}
	withPrevious := func(expires time.Time) token.Issued {
		i := hour
		i.Previous = &token.Previous{ExpiresAt: expires}
		return i
	}
	before := func(d time.Duration) *tokensv1alpha1.Rotation {
		return &tokensv1alpha1.Rotation{RenewBefore: &metav1.Duration{Duration: d}}
	}
	percent := func(p int32) *tokensv1alpha1.Rotation {
		return &tokensv1alpha1.Rotation{RenewBeforePercentage: &p}
	}
	tests := []struct {
		name     string
		rotation *tokensv1alpha1.Rotation
		issued   token.Issued
		want     string // "" for no renewal
	}{
		{"no rotation", nil, hour, ""},
		{"renewBefore", before(15 * time.Minute), hour, "10:45:00"},
		{"renewBefore with a fraction rounds down", before(90*time.Second + 500*time.Millisecond), hour, "10:58:29"},
		{"percentage", percent(25), hour, "10:45:00"},
		{"99 percent", percent(99), hour, "10:00:36"},
		{"percentage of the ttl, not of a shortened lifetime (re-issued at 10:30, same expiry)", percent(25),
			token.Issued{Lifetime: token.Lifetime{IssuedAt: issuedAt.Add(30 * time.Minute), ExpiresAt: issuedAt.Add(time.Hour)}}, "10:45:00"},
		{"previous expires first", before(15 * time.Minute), withPrevious(issuedAt.Add(30 * time.Minute)), "10:45:00"},
		{"waits for the previous token", before(45 * time.Minute), withPrevious(issuedAt.Add(30 * time.Minute)), "10:30:00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := &tokensv1alpha1.TokenRequest{Spec: tokensv1alpha1.TokenRequestSpec{Rotation: tt.rotation}}
			got, ok := renewalTime(tr, tt.issued)
			if tt.want == "" {
				if ok {
					t.Fatalf("renewalTime = %s, want none", got)
				}
				return
			}
			if !ok || got.Format(time.TimeOnly) != tt.want {
				t.Fatalf("renewalTime = %s, %v; want %s", got.Format(time.TimeOnly), ok, tt.want)
			}
			if rotationDue(tr, tt.issued, got.Add(-time.Nanosecond)) || !rotationDue(tr, tt.issued, got) {
				t.Error("rotationDue does not turn at the renewal time")
			}
		})
	}

	t.Run("a new rotate annotation is due at once, an answered one is not", func(t *testing.T) {
		tr := &tokensv1alpha1.TokenRequest{}
		tr.Annotations = map[string]string{tokensv1alpha1.AnnotationRotate: "1"}
		tr.Status.TokenID = "0123456789abcdef"
		if !rotationDue(tr, hour, issuedAt) {
			t.Error("not due on a new request")
		}
		tr.Status.LastRotationRequest = "1"
		if rotationDue(tr, hour, issuedAt) {
			t.Error("due on an answered request")
		}
	})
}

func TestRotate(t *testing.T) {
	now := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
	current := token.Issued{Token: token.Generate(), Revision: 3,
		Lifetime: token.Lifetime{IssuedAt: now.Add(-50 * time.Minute), ExpiresAt: now.Add(10 * time.Minute)}}
	rotating := func(r *tokensv1alpha1.Rotation) *tokensv1alpha1.TokenRequest {
		return &tokensv1alpha1.TokenRequest{Spec: tokensv1alpha1.TokenRequestSpec{Rotation: r}}
	}
	before := func(d time.Duration) *tokensv1alpha1.Rotation {
		return &tokensv1alpha1.Rotation{RenewBefore: &metav1.Duration{Duration: d}}
	}
	tests := []struct {
		name        string
		tr          *tokensv1alpha1.TokenRequest
		valid       bool
		at          time.Time
		prevExpires string // "" for no previous token
	}{
		{"at the renewal time: the old token's remaining life", rotating(before(10 * time.Minute)), true, now, "10:10:00"},
		{"on demand: the overlap only", rotating(before(5 * time.Minute)), true, now, "10:05:00"},
		{"on demand, percentage of ttl", rotating(&tokensv1alpha1.Rotation{RenewBeforePercentage: new(int32(5))}), true, now, "10:03:00"},
		{"late: never beyond its own expiry", rotating(before(30 * time.Minute)), true, now, "10:10:00"},
		{"already expired", rotating(before(10 * time.Minute)), true, now.Add(10 * time.Minute), ""},
		{"edited by hand", rotating(before(10 * time.Minute)), false, now, ""},
		{"no spec.rotation: cut off at once", rotating(nil), true, now, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			next := rotate(tt.tr, current, token.Generate(), tt.valid, time.Hour, tt.at)
			if next.Revision != 4 || next.ID == current.ID || !next.ExpiresAt.Equal(tt.at.Add(time.Hour)) {
				t.Errorf("next = revision %d, expires %s", next.Revision, next.ExpiresAt)
			}
			switch {
			case tt.prevExpires == "" && next.Previous != nil:
				t.Errorf("previous kept until %s, want none", next.Previous.ExpiresAt)
			case tt.prevExpires != "" && (next.Previous == nil || next.Previous.Token != current.Token ||
				next.Previous.ExpiresAt.Format(time.TimeOnly) != tt.prevExpires):
				t.Errorf("previous = %+v, want the current token until %s", next.Previous, tt.prevExpires)
			}
		})
	}
}
