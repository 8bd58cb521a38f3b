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

package plugin

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	tokensv1alpha1 "github.com/tokenops/token-operator/api/v1alpha1"
	"github.com/tokenops/token-operator/internal/token"
)

var now = time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)

func at(d time.Duration) *metav1.Time { return &metav1.Time{Time: now.Add(d)} }

func TestNewTokenRequest(t *testing.T) {
	for _, tc := range []struct {
		name    string
		o       issueOptions
		want    tokensv1alpha1.TokenRequestSpec
		wantErr string
	}{
		{name: "ttl only", o: issueOptions{ttl: 5 * time.Minute},
			want: tokensv1alpha1.TokenRequestSpec{TTL: &metav1.Duration{Duration: 5 * time.Minute}}},
		{name: "rotating", o: issueOptions{ttl: time.Hour, rotateBefore: 10 * time.Minute, secretName: "api-key"},
			want: tokensv1alpha1.TokenRequestSpec{TTL: &metav1.Duration{Duration: time.Hour}, SecretName: "api-key",
				Rotation: &tokensv1alpha1.Rotation{RenewBefore: &metav1.Duration{Duration: 10 * time.Minute}}}},
		{name: "limited use", o: issueOptions{ttl: time.Minute, maxUses: 3},
			want: tokensv1alpha1.TokenRequestSpec{TTL: &metav1.Duration{Duration: time.Minute}, MaxUses: ptr.To[int64](3)}},
		{name: "for a subject and purpose", o: issueOptions{ttl: 10 * time.Minute, maxUses: 1, subject: "user-42", purpose: "password-reset",
			metadata: map[string]string{"ip": "203.0.113.7"}},
			want: tokensv1alpha1.TokenRequestSpec{TTL: &metav1.Duration{Duration: 10 * time.Minute}, MaxUses: ptr.To[int64](1),
				Subject: "user-42", Purpose: "password-reset", Metadata: map[string]tokensv1alpha1.MetadataValue{"ip": "203.0.113.7"}}},
		{name: "no ttl", o: issueOptions{}, wantErr: "--ttl must be a positive duration (got 0s)"},
		{name: "rotate before ttl", o: issueOptions{ttl: time.Minute, rotateBefore: time.Minute},
			wantErr: "--rotate-before must be positive and shorter than --ttl (got 1m0s with --ttl 1m0s)"},
		{name: "negative uses", o: issueOptions{ttl: time.Minute, maxUses: -1}, wantErr: "--max-uses must be at least 1 (got -1)"},
		{name: "rotating and limited", o: issueOptions{ttl: time.Hour, rotateBefore: time.Minute, maxUses: 2},
			wantErr: "--rotate-before and --max-uses cannot be combined"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr, err := newTokenRequest("ns", "demo", tc.o)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tr.Namespace != "ns" || tr.Name != "demo" || tr.Kind != "TokenRequest" {
				t.Errorf("object %s %s/%s", tr.Kind, tr.Namespace, tr.Name)
			}
			if diff := cmp.Diff(tc.want, tr.Spec); diff != "" {
				t.Errorf("spec (-want +got):\n%s", diff)
			}
		})
	}
}

func withReady(gen, observed int64, status metav1.ConditionStatus, reason string) *tokensv1alpha1.TokenRequest {
	tr := &tokensv1alpha1.TokenRequest{ObjectMeta: metav1.ObjectMeta{Name: "demo", Generation: gen}}
	if status != "" {
		tr.Status.Conditions = []metav1.Condition{{Type: tokensv1alpha1.ConditionReady, Status: status, Reason: reason,
			Message: "m", ObservedGeneration: observed}}
	}
	return tr
}

func TestSettled(t *testing.T) {
	for _, tc := range []struct {
		name     string
		tr       *tokensv1alpha1.TokenRequest
		done     bool
		failWith string
	}{
		{"no condition yet", withReady(1, 0, "", ""), false, ""},
		{"ready for an older generation", withReady(2, 1, metav1.ConditionTrue, "Issued"), false, ""},
		{"ready", withReady(2, 2, metav1.ConditionTrue, "Issued"), true, ""},
		{"conflict", withReady(1, 1, metav1.ConditionFalse, "SecretConflict"), true, "not Ready: SecretConflict: m"},
		{"expired", withReady(1, 1, metav1.ConditionFalse, "Expired"), true, "not Ready: Expired"},
		{"unknown", withReady(1, 1, metav1.ConditionUnknown, "Pending"), false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			done, err := settled(tc.tr)
			if done != tc.done || (err == nil) != (tc.failWith == "") || (err != nil && !strings.Contains(err.Error(), tc.failWith)) {
				t.Errorf("settled = %v, %v; want %v, error containing %q", done, err, tc.done, tc.failWith)
			}
		})
	}
}

func TestRotated(t *testing.T) {
	tr := withReady(1, 1, metav1.ConditionTrue, "Issued")
	tr.Status.Revision, tr.Status.LastRotationRequest = 2, "r1"
	for _, tc := range []struct {
		name    string
		request string
		before  int64
		want    bool
	}{
		{"answered", "r1", 1, true},
		{"another request answered", "r2", 1, false},
		{"no new revision", "r1", 2, false},
	} {
		if got := rotated(tr, tc.request, tc.before); got != tc.want {
			t.Errorf("%s: rotated = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestWriteStatus(t *testing.T) {
	rotating := &tokensv1alpha1.TokenRequest{
		ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "api-key"},
		Spec: tokensv1alpha1.TokenRequestSpec{Rotation: &tokensv1alpha1.Rotation{
			RenewBefore: &metav1.Duration{Duration: 10 * time.Minute}}},
		Status: tokensv1alpha1.TokenRequestStatus{
			Conditions: []metav1.Condition{{Type: tokensv1alpha1.ConditionReady, Status: metav1.ConditionTrue,
				Reason: "Issued", Message: "The token is in Secret api-key"}},
			SecretName: "api-key", TokenID: "a1b2c3", Revision: 2, ExpiresAt: at(50 * time.Minute), RenewalTime: at(40 * time.Minute),
			PreviousTokenID: "d4e5f6", PreviousExpiresAt: at(5 * time.Minute),
			Restarts: []tokensv1alpha1.WorkloadRestart{
				{Kind: "Deployment", Name: "web", Revision: 2, Time: at(-5 * time.Minute)},
				{Kind: "StatefulSet", Name: "db", Revision: 2},
				{Kind: "DaemonSet", Name: "agent", Revision: 1, Error: "forbidden: grant ..."},
				{Kind: "Deployment", Name: "busy", Revision: 1, Time: at(-30 * time.Second), DeferredUntil: at(31 * time.Second)},
				{Kind: "Deployment", Name: "files", Skipped: "its pods mount Secret api-key as a volume"},
			},
		},
	}
	spent := &tokensv1alpha1.TokenRequest{
		ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "reset"},
		Spec:       tokensv1alpha1.TokenRequestSpec{MaxUses: ptr.To[int64](3)},
		Status: tokensv1alpha1.TokenRequestStatus{
			Conditions: []metav1.Condition{{Type: tokensv1alpha1.ConditionReady, Status: metav1.ConditionTrue,
				Reason: "Issued", Message: "ok"}},
			SecretName: "reset", TokenID: "0f0f", Revision: 1, ExpiresAt: at(-2 * time.Minute),
		},
	}
	events := []corev1.Event{
		{Type: "Normal", Reason: "Rotated", Message: "revision 2", LastTimestamp: metav1.Time{Time: now.Add(-5 * time.Minute)}},
		{Type: "Normal", Reason: "Issued", Message: "revision 1", EventTime: metav1.MicroTime{Time: now.Add(-65 * time.Minute)}},
	}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{token.AnnotationUsesLeft: "1"}},
		Data: map[string][]byte{token.DataToken: []byte("0f0f:do-not-print-me")}}
	for _, tc := range []struct {
		name   string
		tr     *tokensv1alpha1.TokenRequest
		secret *corev1.Secret
		events []corev1.Event
		want   string
	}{
		{"rotating, two events oldest first", rotating, nil, events, `Name:            api-key
Namespace:       apps
Ready:           True (Issued): The token is in Secret api-key
Secret:          api-key
Token ID:        a1b2c3
Revision:        2
Expires:         2026-11-29T10:50:00Z (in 50m)
Renews:          2026-11-29T10:40:00Z (in 40m)
Previous token:  d4e5f6, valid until 2026-11-29T10:05:00Z (in 5m)
Uses left:       unlimited
Restarts:
  Deployment/web    restarted for revision 2, 2026-11-29T09:55:00Z (5m ago)
  StatefulSet/db    revision 2, started with it (no restart needed)
  DaemonSet/agent   failed: forbidden: grant ...
  Deployment/busy   restart deferred until 2026-11-29T10:00:31Z (in 31s) (--min-restart-interval)
  Deployment/files  not restarted: its pods mount Secret api-key as a volume
Events:
  65m ago  Normal  Issued   revision 1
  5m ago   Normal  Rotated  revision 2
`},
		{"limited use, uses left from the Secret, past expiry", spent, secret, nil, `Name:       reset
Namespace:  apps
Ready:      True (Issued): ok
Secret:     reset
Token ID:   0f0f
Revision:   1
Expires:    2026-11-29T09:58:00Z (2m ago)
Renews:     never (no spec.rotation)
Uses left:  1 of 3
Events:
  <none>
`},
		{"not reconciled yet, Secret unreadable", &tokensv1alpha1.TokenRequest{ObjectMeta: metav1.ObjectMeta{Name: "new"},
			Spec: tokensv1alpha1.TokenRequestSpec{MaxUses: ptr.To[int64](2)}}, nil, nil, `Name:       new
Namespace:  
Ready:      Unknown (the operator has not reconciled it yet)
Secret:     -
Token ID:   -
Revision:   -
Expires:    -
Renews:     never (no spec.rotation)
Uses left:  unknown (no readable Secret), of 2
Events:
  <none>
`},
		{"spent, for a subject and purpose", &tokensv1alpha1.TokenRequest{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "once"},
			Spec: tokensv1alpha1.TokenRequestSpec{MaxUses: ptr.To[int64](1), Subject: "user-42", Purpose: "password-reset"},
			Status: tokensv1alpha1.TokenRequestStatus{Conditions: []metav1.Condition{{Type: tokensv1alpha1.ConditionReady,
				Status: metav1.ConditionFalse, Reason: "Spent", Message: "used"}}, SecretName: "once", TokenID: "77", Revision: 1,
				ExpiresAt: at(time.Hour)}}, nil, nil, `Name:       once
Namespace:  apps
Ready:      False (Spent): used
Secret:     once
Subject:    user-42
Purpose:    password-reset
Token ID:   77
Revision:   1
Expires:    2026-11-29T11:00:00Z (in 60m)
Renews:     never (no spec.rotation)
Uses left:  0 of 1 (spent)
Events:
  <none>
`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := writeStatus(&b, tc.tr, tc.secret, tc.events, now); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, b.String()); diff != "" {
				t.Errorf("output (-want +got):\n%s", diff)
			}
			if strings.Contains(b.String(), "do-not-print-me") {
				t.Error("status printed a token")
			}
		})
	}
}

func TestCheckLease(t *testing.T) {
	lease := func(holder string, renewed *metav1.MicroTime) *coordinationv1.Lease {
		l := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: "ops", Name: "token-operator.tokenops.io"},
			Spec: coordinationv1.LeaseSpec{LeaseDurationSeconds: ptr.To[int32](15), RenewTime: renewed}}
		if holder != "" {
			l.Spec.HolderIdentity = &holder
		}
		return l
	}
	micro := func(d time.Duration) *metav1.MicroTime { return &metav1.MicroTime{Time: now.Add(d)} }
	for _, tc := range []struct {
		name    string
		lease   *coordinationv1.Lease
		wantErr string
	}{
		{"renewed 5s ago", lease("pod-a_1234", micro(-5*time.Second)), ""},
		{"no holder", lease("", micro(-5*time.Second)), "has no holder"},
		{"never renewed", lease("pod-a_1234", nil), "never been renewed"},
		{"renewed a minute ago", lease("pod-a_1234", micro(-time.Minute)), "last renewed 60s ago by pod-a_1234, over its 15s duration"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkLease(tc.lease, now)
			if (err == nil) != (tc.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("checkLease = %v, want an error containing %q", err, tc.wantErr)
			}
		})
	}
	if got := holder(lease("pod-a_1234", nil)); got != "pod-a" {
		t.Errorf("holder = %q", got)
	}
}
