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
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	tokensv1alpha1 "github.com/tokenops/token-operator/api/v1alpha1"
)

func TestNeedsRestart(t *testing.T) {
	issued := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
	before, after := metav1.NewTime(issued.Add(-time.Hour)), metav1.NewTime(issued.Add(time.Second))
	for _, tc := range []struct {
		name     string
		recorded string
		created  metav1.Time
		want     bool
	}{
		{"never restarted, created before the token", "", before, true},
		{"restarted for an older revision", "2", before, true},
		{"restarted for this revision (a retry, a restart, a new leader)", "3", before, false},
		{"restarted for a later revision", "4", before, false},
		{"created after the token: its pods have it", "", after, false},
		{"created in the token's second: restarted to be safe", "", metav1.NewTime(issued), true},
		{"garbage in the annotation", "three", before, true},
	} {
		if got := needsRestart(tc.recorded, tc.created, 3, issued); got != tc.want {
			t.Errorf("%s: needsRestart = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestRestartsDue(t *testing.T) {
	targets := []tokensv1alpha1.RestartTarget{{Kind: "Deployment", Name: "web"}}
	tr := func(targets []tokensv1alpha1.RestartTarget, revision, restarted int64) *tokensv1alpha1.TokenRequest {
		x := &tokensv1alpha1.TokenRequest{}
		x.Spec.Rotation = &tokensv1alpha1.Rotation{RestartTargets: targets}
		x.Status.Revision, x.Status.RestartedRevision, x.Status.IssuedAt = revision, restarted, &metav1.Time{}
		return x
	}
	for _, tc := range []struct {
		name string
		tr   *tokensv1alpha1.TokenRequest
		want bool
	}{
		{"first token: workloads start with it", tr(targets, 1, 0), false},
		{"rotated, not yet restarted", tr(targets, 2, 0), true},
		{"rotated twice, restarted for the first", tr(targets, 3, 2), true},
		{"restarted for this revision", tr(targets, 3, 3), false},
		{"no targets", tr(nil, 3, 0), false},
		{"no rotation", &tokensv1alpha1.TokenRequest{Status: tokensv1alpha1.TokenRequestStatus{Revision: 3}}, false},
	} {
		if got := restartsDue(tc.tr); got != tc.want {
			t.Errorf("%s: restartsDue = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestOverlapCondition(t *testing.T) {
	withRotation := func(rot tokensv1alpha1.Rotation) *tokensv1alpha1.TokenRequest {
		tr := &tokensv1alpha1.TokenRequest{}
		tr.Spec.TTL = &metav1.Duration{Duration: time.Hour}
		tr.Spec.Rotation = &rot
		return tr
	}
	targets := []tokensv1alpha1.RestartTarget{{Kind: "Deployment", Name: "web"}}
	for _, tc := range []struct {
		name   string
		tr     *tokensv1alpha1.TokenRequest
		status metav1.ConditionStatus
		reason string
	}{
		{"no targets: no condition", withRotation(tokensv1alpha1.Rotation{RenewBefore: &metav1.Duration{Duration: time.Second}}), "", ""},
		{"renewBefore 30s", withRotation(tokensv1alpha1.Rotation{RenewBefore: &metav1.Duration{Duration: 30 * time.Second},
			RestartTargets: targets}), metav1.ConditionFalse, tokensv1alpha1.ReasonOverlapTooShort},
		{"renewBefore 2m", withRotation(tokensv1alpha1.Rotation{RenewBefore: &metav1.Duration{Duration: 2 * time.Minute},
			RestartTargets: targets}), metav1.ConditionTrue, tokensv1alpha1.ReasonOverlapSufficient},
		{"3% of 1h", withRotation(tokensv1alpha1.Rotation{RenewBeforePercentage: new(int32(3)), RestartTargets: targets}),
			metav1.ConditionFalse, tokensv1alpha1.ReasonOverlapTooShort},
		{"10% of 1h", withRotation(tokensv1alpha1.Rotation{RenewBeforePercentage: new(int32(10)), RestartTargets: targets}),
			metav1.ConditionTrue, tokensv1alpha1.ReasonOverlapSufficient},
	} {
		c := overlapCondition(tc.tr)
		switch {
		case tc.status == "" && c != nil:
			t.Errorf("%s: condition %+v, want none", tc.name, c)
		case tc.status != "" && (c == nil || c.Status != tc.status || c.Reason != tc.reason):
			t.Errorf("%s: condition %+v, want %s %s", tc.name, c, tc.status, tc.reason)
		}
	}
}

func TestRestartRevisionKey(t *testing.T) {
	long := strings.Repeat("a", 60)
	for _, tc := range []struct{ name, want string }{
		{"api-key", "tokens.tokenops.io/revision-api-key"},
		{strings.Repeat("b", 54), "tokens.tokenops.io/revision-" + strings.Repeat("b", 54)},
		{long, "tokens.tokenops.io/revision-" + long[:45] + "-"},
	} {
		got := tokensv1alpha1.RestartRevisionKey(tc.name)
		if !strings.HasPrefix(got, tc.want) {
			t.Errorf("RestartRevisionKey(%q) = %q, want %q...", tc.name, got, tc.want)
		}
		if n := len(got) - len("tokens.tokenops.io/"); n > 63 {
			t.Errorf("RestartRevisionKey(%q) = %q: name part of %d characters, over 63", tc.name, got, n)
		}
	}
	if tokensv1alpha1.RestartRevisionKey(long) == tokensv1alpha1.RestartRevisionKey(long+"b") {
		t.Error("two long names share a key")
	}
}
