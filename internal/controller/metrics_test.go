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
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/healthz"

	tokensv1alpha1 "github.com/tokenops/token-operator/api/v1alpha1"
	"github.com/tokenops/token-operator/internal/index"
	"github.com/tokenops/token-operator/internal/token"
)

func TestStateCollector(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := tokensv1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	at := func(s string) *metav1.Time {
		tm, _ := time.Parse(time.RFC3339, s)
		return &metav1.Time{Time: tm}
	}
	ready := &tokensv1alpha1.TokenRequest{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "rotating"}}
	ready.Status.ExpiresAt, ready.Status.RenewalTime = at("2026-11-29T11:00:00Z"), at("2026-11-29T10:45:00Z")
	meta.SetStatusCondition(&ready.Status.Conditions, metav1.Condition{Type: tokensv1alpha1.ConditionReady, Status: metav1.ConditionTrue,
		Reason: tokensv1alpha1.ReasonIssued})
	expired := &tokensv1alpha1.TokenRequest{ObjectMeta: metav1.ObjectMeta{Namespace: "b", Name: "once"}}
	expired.Status.ExpiresAt = at("2026-11-29T09:00:00Z")
	meta.SetStatusCondition(&expired.Status.Conditions, metav1.Condition{Type: tokensv1alpha1.ConditionReady, Status: metav1.ConditionFalse,
		Reason: tokensv1alpha1.ReasonExpired})
	pending := &tokensv1alpha1.TokenRequest{ObjectMeta: metav1.ObjectMeta{Namespace: "b", Name: "new"}}

	now := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
	tokens := index.New(logr.Discard())
	// Issued an hour before now with these lifetimes: live, expired 30 s ago (not yet
	// lingering), expired 2 minutes ago (lingering).
	for i, t := range []struct {
		ns       string
		lifetime time.Duration
	}{{"http", time.Hour + time.Minute}, {"http", time.Hour + time.Minute}, {"other", time.Hour + time.Minute},
		{"other", time.Hour - 30*time.Second}, {"other", time.Hour - 2*time.Minute}} {
		issued := token.Issued{Token: token.Generate(), Lifetime: token.NewLifetime(now.Add(-time.Hour), t.lifetime), Source: token.SourceHTTP}
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: t.ns, Name: token.HTTPSecretName(issued.ID), UID: types.UID(rune('a' + i))}}
		issued.ApplyTo(s)
		tokens.Put(s)
	}

	c := &StateCollector{Reader: fake.NewClientBuilder().WithScheme(scheme).WithObjects(ready, expired, pending).Build(), Tokens: tokens,
		Log: logr.Discard(), Clock: clocktesting.NewFakePassiveClock(now)}
	want := `
# HELP tokenoperator_expired_tokens_lingering Token Secrets whose token expired more than a minute ago and that still exist, by namespace.
# TYPE tokenoperator_expired_tokens_lingering gauge
tokenoperator_expired_tokens_lingering{namespace="http"} 0
tokenoperator_expired_tokens_lingering{namespace="other"} 1
# HELP tokenoperator_http_tokens Live tokens issued over HTTP, by the namespace of their Secrets (counted, not one series each).
# TYPE tokenoperator_http_tokens gauge
tokenoperator_http_tokens{namespace="http"} 2
tokenoperator_http_tokens{namespace="other"} 3
# HELP tokenoperator_ready 1 while this replica passes its readiness checks (token index loaded, HTTP API serving), else 0.
# TYPE tokenoperator_ready gauge
tokenoperator_ready 1
# HELP tokenoperator_token_expiration_timestamp_seconds When the token of a TokenRequest expires (Unix seconds), from its status.
# TYPE tokenoperator_token_expiration_timestamp_seconds gauge
tokenoperator_token_expiration_timestamp_seconds{name="once",namespace="b"} 1.7959428e+09
tokenoperator_token_expiration_timestamp_seconds{name="rotating",namespace="a"} 1.79595e+09
# HELP tokenoperator_token_renewal_timestamp_seconds When a rotating TokenRequest's token is renewed (Unix seconds), from its status.
# TYPE tokenoperator_token_renewal_timestamp_seconds gauge
tokenoperator_token_renewal_timestamp_seconds{name="rotating",namespace="a"} 1.7959491e+09
# HELP tokenoperator_tokenrequest_ready A TokenRequest's Ready condition: 1 for its status (True, False or Unknown), 0 for the others; reason is the condition's reason (Issued, Expired, Spent, SecretConflict, InvalidSpec, ...).
# TYPE tokenoperator_tokenrequest_ready gauge
tokenoperator_tokenrequest_ready{condition="False",name="new",namespace="b",reason=""} 0
tokenoperator_tokenrequest_ready{condition="False",name="once",namespace="b",reason="Expired"} 1
tokenoperator_tokenrequest_ready{condition="False",name="rotating",namespace="a",reason="Issued"} 0
tokenoperator_tokenrequest_ready{condition="True",name="new",namespace="b",reason=""} 0
tokenoperator_tokenrequest_ready{condition="True",name="once",namespace="b",reason="Expired"} 0
tokenoperator_tokenrequest_ready{condition="True",name="rotating",namespace="a",reason="Issued"} 1
tokenoperator_tokenrequest_ready{condition="Unknown",name="new",namespace="b",reason=""} 1
tokenoperator_tokenrequest_ready{condition="Unknown",name="once",namespace="b",reason="Expired"} 0
tokenoperator_tokenrequest_ready{condition="Unknown",name="rotating",namespace="a",reason="Issued"} 0
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want)); err != nil {
		t.Error(err)
	}

	c.Ready = []healthz.Checker{healthz.Ping, func(*http.Request) error { return errors.New("still loading") }}
	if err := testutil.CollectAndCompare(c, strings.NewReader(`
# HELP tokenoperator_ready 1 while this replica passes its readiness checks (token index loaded, HTTP API serving), else 0.
# TYPE tokenoperator_ready gauge
tokenoperator_ready 0
`), "tokenoperator_ready"); err != nil {
		t.Error(err)
	}
}
