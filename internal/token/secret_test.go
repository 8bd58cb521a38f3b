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
	"maps"
	"reflect"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

func TestNewLifetime(t *testing.T) {
	now := time.Date(2026, 11, 29, 10, 0, 0, 900_000_000, time.FixedZone("CET", 3600))
	tests := []struct {
		name    string
		ttl     time.Duration
		issued  string
		expires string
	}{
		{"default hour", time.Hour, "2026-11-29T09:00:00Z", "2026-11-29T10:00:00Z"},
		{"one second", time.Second, "2026-11-29T09:00:00Z", "2026-11-29T09:00:01Z"},
		{"fraction rounds down", 1500 * time.Millisecond, "2026-11-29T09:00:00Z", "2026-11-29T09:00:01Z"},
		{"year", 8760 * time.Hour, "2026-11-29T09:00:00Z", "2027-11-29T09:00:00Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := NewLifetime(now, tt.ttl)
			if got := l.IssuedAt.Format(time.RFC3339); got != tt.issued {
				t.Errorf("IssuedAt = %s, want %s", got, tt.issued)
			}
			if got := l.ExpiresAt.Format(time.RFC3339); got != tt.expires {
				t.Errorf("ExpiresAt = %s, want %s", got, tt.expires)
			}
			if l.ExpiresAt.Sub(now) > tt.ttl {
				t.Errorf("lifetime outlives ttl: %s", l.ExpiresAt.Sub(now))
			}
		})
	}
}

func TestLifetimeExpired(t *testing.T) {
	l := Lifetime{ExpiresAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	tests := []struct {
		name    string
		now     time.Time
		expired bool
	}{
		{"before", l.ExpiresAt.Add(-time.Second), false},
		{"at", l.ExpiresAt, true},
		{"after", l.ExpiresAt.Add(time.Nanosecond), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := l.Expired(tt.now); got != tt.expired {
				t.Errorf("Expired = %v, want %v", got, tt.expired)
			}
		})
	}
}

func TestApplyToAndFromSecret(t *testing.T) {
	issued := Issued{
		Token:    Generate(),
		Lifetime: NewLifetime(time.Now(), time.Hour),
		Source:   SourceTokenRequest,
		Revision: 1,
	}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{
		Labels:      map[string]string{"team": "a", LabelManagedBy: "someone-else"},
		Annotations: map[string]string{AnnotationExpiresAt: "never"},
	}}
	if !issued.ApplyTo(secret) {
		t.Fatal("ApplyTo reported no change on a fresh Secret")
	}
	if issued.ApplyTo(secret) {
		t.Error("ApplyTo reported a change the second time")
	}
	if secret.Type != SecretType {
		t.Errorf("Type = %q", secret.Type)
	}
	want := map[string]string{"team": "a", LabelManagedBy: ManagedBy, LabelTokenID: issued.ID, LabelSource: "tokenrequest"}
	for k, v := range want {
		if secret.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, secret.Labels[k], v)
		}
	}
	if !Selector().Matches(labels.Set(secret.Labels)) {
		t.Error("Selector does not match a token Secret")
	}
	if got := string(secret.Data[DataTokenID]); got != issued.ID {
		t.Errorf("data token-id = %q", got)
	}
	if got := string(secret.Data[DataToken]); got != issued.String() {
		t.Errorf("data token = %q, want the token (pods mount it)", got)
	}
	back, err := FromSecret(secret)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, issued) {
		t.Errorf("FromSecret = %+v, want %+v", back, issued)
	}
}

// TestHTTPSecretHoldsNoToken: a token issued over HTTP is kept as its digest only.
func TestHTTPSecretHoldsNoToken(t *testing.T) {
	issued := Issued{Token: Generate(), Lifetime: NewLifetime(time.Now(), time.Hour), Source: SourceHTTP}
	secret := &corev1.Secret{}
	issued.ApplyTo(secret)
	if _, ok := secret.Data[DataToken]; ok {
		t.Fatal("an HTTP token Secret holds data.token")
	}
	d := DigestOf(issued.String())
	if got := secret.Data[DataTokenDigest]; string(got) != string(d[:]) {
		t.Errorf("data %s = %x, want %x", DataTokenDigest, got, d)
	}
	for k, v := range secret.Data {
		if strings.Contains(string(v), issued.Secret) {
			t.Errorf("data %s holds the secret", k)
		}
	}
	for _, m := range []map[string]string{secret.Labels, secret.Annotations} {
		for k, v := range m {
			if strings.Contains(k+v, issued.Secret) {
				t.Errorf("%s holds the secret", k)
			}
		}
	}
	// A Secret written by an earlier version (plaintext) turns into the digest form.
	old := &corev1.Secret{Data: map[string][]byte{DataToken: []byte(issued.String())}}
	if !issued.ApplyTo(old) {
		t.Fatal("ApplyTo reported no change")
	}
	if _, ok := old.Data[DataToken]; ok {
		t.Error("ApplyTo kept the plaintext of an HTTP token")
	}
}

func TestMetaSum(t *testing.T) {
	template := map[string]string{"team": "payments", "tier": "gold"}
	base := MetaSum(template, map[string]string{"note": "x"})
	with := func(m map[string]string, k, v string) map[string]string {
		out := maps.Clone(m)
		if v == "" {
			delete(out, k)
		} else {
			out[k] = v
		}
		return out
	}
	tests := []struct {
		name        string
		labels      map[string]string
		annotations map[string]string
		same        bool
	}{
		{"the operator's own labels and annotations do not count", with(with(template, LabelTokenID, "0123456789abcdef"), LabelManagedBy, ManagedBy),
			map[string]string{"note": "x", AnnotationExpiresAt: "2026-11-29T10:00:00Z", AnnotationUsesLeft: "3"}, true},
		{"a template label removed", with(template, "tier", ""), map[string]string{"note": "x"}, false},
		{"a template label changed", with(template, "tier", "silver"), map[string]string{"note": "x"}, false},
		{"a label added by hand", with(template, "added", "y"), map[string]string{"note": "x"}, false},
		{"an annotation removed", template, nil, false},
		{"a label moved to the annotations", with(template, "tier", ""), map[string]string{"note": "x", "tier": "gold"}, false},
		{"key and value are kept apart", with(with(template, "tier", ""), "tierg", "old"), map[string]string{"note": "x"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := MetaSum(tt.labels, tt.annotations) == base; got != tt.same {
				t.Errorf("MetaSum equal = %v, want %v", got, tt.same)
			}
		})
	}
}
