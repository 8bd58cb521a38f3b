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
