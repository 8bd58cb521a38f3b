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

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

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

	tokens := index.New(nil, logr.Discard())
	for i, ns := range []string{"http", "http", "other"} {
		issued := token.Issued{Token: token.Generate(), Lifetime: token.NewLifetime(time.Now(), time.Hour), Source: token.SourceHTTP}
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: token.HTTPSecretName(issued.ID), UID: types.UID(rune('a' + i))}}
		issued.ApplyTo(s)
		tokens.Put(s)
	}

	c := &StateCollector{Reader: fake.NewClientBuilder().WithScheme(scheme).WithObjects(ready, expired, pending).Build(), Tokens: tokens,
		Log: logr.Discard()}
	want := `
# HELP tokenoperator_http_tokens Live tokens issued over HTTP, by the namespace of their Secrets (counted, not one series each).
# TYPE tokenoperator_http_tokens gauge
tokenoperator_http_tokens{namespace="http"} 2
tokenoperator_http_tokens{namespace="other"} 1
# HELP tokenoperator_token_expiration_timestamp_seconds When the token of a TokenRequest expires (Unix seconds), from its status.
# TYPE tokenoperator_token_expiration_timestamp_seconds gauge
tokenoperator_token_expiration_timestamp_seconds{name="once",namespace="b"} 1.7959428e+09
tokenoperator_token_expiration_timestamp_seconds{name="rotating",namespace="a"} 1.79595e+09
# HELP tokenoperator_token_renewal_timestamp_seconds When a rotating TokenRequest's token is renewed (Unix seconds), from its status.
# TYPE tokenoperator_token_renewal_timestamp_seconds gauge
tokenoperator_token_renewal_timestamp_seconds{name="rotating",namespace="a"} 1.7959491e+09
# HELP tokenoperator_tokenrequest_ready A TokenRequest's Ready condition: 1 for its status (True, False or Unknown), 0 for the others.
# TYPE tokenoperator_tokenrequest_ready gauge
tokenoperator_tokenrequest_ready{condition="False",name="new",namespace="b"} 0
tokenoperator_tokenrequest_ready{condition="False",name="once",namespace="b"} 1
tokenoperator_tokenrequest_ready{condition="False",name="rotating",namespace="a"} 0
tokenoperator_tokenrequest_ready{condition="True",name="new",namespace="b"} 0
tokenoperator_tokenrequest_ready{condition="True",name="once",namespace="b"} 0
tokenoperator_tokenrequest_ready{condition="True",name="rotating",namespace="a"} 1
tokenoperator_tokenrequest_ready{condition="Unknown",name="new",namespace="b"} 1
tokenoperator_tokenrequest_ready{condition="Unknown",name="once",namespace="b"} 0
tokenoperator_tokenrequest_ready{condition="Unknown",name="rotating",namespace="a"} 0
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
}
