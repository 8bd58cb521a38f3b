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
		name      string
		now       time.Time
		expired   bool
		remaining time.Duration
	}{
		{"before", l.ExpiresAt.Add(-time.Second), false, time.Second},
		{"at", l.ExpiresAt, true, 0},
		{"after", l.ExpiresAt.Add(time.Nanosecond), true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := l.Expired(tt.now); got != tt.expired {
				t.Errorf("Expired = %v, want %v", got, tt.expired)
			}
			if got := l.Remaining(tt.now); got != tt.remaining {
				t.Errorf("Remaining = %v, want %v", got, tt.remaining)
			}
		})
	}
}

func TestApplyToAndFromSecret(t *testing.T) {
	issued := Issued{
		Token:    Generate(),
		Lifetime: NewLifetime(time.Now(), time.Hour),
		Source:   SourceHTTP,
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
	want := map[string]string{"team": "a", LabelManagedBy: ManagedBy, LabelTokenID: issued.ID, LabelSource: "http"}
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
	back, err := FromSecret(secret)
	if err != nil {
		t.Fatal(err)
	}
	if back != issued {
		t.Errorf("FromSecret = %+v, want %+v", back, issued)
	}
}

func TestExpiresAt(t *testing.T) {
	tests := []struct {
		name       string
		annotation *string
		ok         bool
	}{
		{"RFC 3339", new("2026-11-29T10:00:00Z"), true},
		{"offset", new("2026-11-29T11:00:00+01:00"), true},
		{"missing", nil, false},
		{"garbage", new("tomorrow"), false},
		{"empty", new(""), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &corev1.Secret{}
			if tt.annotation != nil {
				s.Annotations = map[string]string{AnnotationExpiresAt: *tt.annotation}
			}
			got, err := ExpiresAt(s)
			if tt.ok != (err == nil) {
				t.Fatalf("ExpiresAt error = %v, want ok=%v", err, tt.ok)
			}
			if tt.ok && !got.Equal(time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)) {
				t.Errorf("ExpiresAt = %v", got)
			}
		})
	}
}

func TestConceal(t *testing.T) {
	issued := Issued{Token: Generate(), Lifetime: NewLifetime(time.Now(), time.Hour), Source: SourceTokenRequest}
	secret := &corev1.Secret{}
	issued.ApplyTo(secret)
	plain := secret.DeepCopy()
	Conceal(secret)

	if _, ok := secret.Data[DataToken]; ok {
		t.Fatal("Conceal kept the token")
	}
	for k, v := range secret.Data {
		if strings.Contains(string(v), issued.Secret) {
			t.Fatalf("data %s still holds the secret", k)
		}
	}
	for _, s := range []*corev1.Secret{plain, secret} {
		if Match(s, issued.String()) != SlotCurrent {
			t.Error("Match refuses the token")
		}
		if Match(s, Generate().String()) != SlotNone || Match(s, issued.ID+":"+strings.Repeat("A", SecretLength)) != SlotNone {
			t.Error("Match accepts another token")
		}
		if TokenID(s) != issued.ID {
			t.Errorf("TokenID = %q", TokenID(s))
		}
		if !InStatus(s, issued) {
			t.Error("InStatus refuses the Secret ApplyTo wrote")
		}
		later := issued
		later.ExpiresAt = later.ExpiresAt.Add(time.Hour)
		if InStatus(s, later) {
			t.Error("InStatus accepts another expiry")
		}
	}
	malformed := &corev1.Secret{Data: map[string][]byte{DataToken: []byte("garbage")}}
	Conceal(malformed)
	if TokenID(malformed) != "" {
		t.Errorf("TokenID of a malformed token = %q", TokenID(malformed))
	}
	empty := &corev1.Secret{}
	Conceal(empty)
	if _, _, ok := Concealed(empty); ok {
		t.Error("Conceal touched a Secret without a token")
	}
}

// rotated is a Secret holding a rotated token: current, previous, revision 2.
func rotated(now time.Time) (Issued, *corev1.Secret) {
	issued := Issued{
		Token:    Generate(),
		Lifetime: NewLifetime(now, time.Hour),
		Source:   SourceTokenRequest,
		Revision: 2,
		Previous: &Previous{Token: Generate(), ExpiresAt: now.Add(10 * time.Minute).Truncate(time.Second)},
	}
	secret := &corev1.Secret{}
	issued.ApplyTo(secret)
	return issued, secret
}

func TestRotatedSecret(t *testing.T) {
	now := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
	issued, secret := rotated(now)
	if got := secret.Annotations[AnnotationRevision]; got != "2" {
		t.Errorf("revision annotation = %q", got)
	}
	back, err := FromSecret(secret)
	if err != nil {
		t.Fatal(err)
	}
	if back.Previous == nil || *back.Previous != *issued.Previous || back.Revision != 2 {
		t.Errorf("FromSecret = %+v, want previous %+v and revision 2", back, issued.Previous)
	}
	concealed := secret.DeepCopy()
	Conceal(concealed)
	for k, v := range concealed.Data {
		if strings.Contains(string(v), issued.Previous.Secret) || strings.Contains(string(v), issued.Secret) {
			t.Fatalf("concealed data %s still holds a secret", k)
		}
	}
	for _, s := range []*corev1.Secret{secret, concealed} {
		if got := Match(s, issued.Previous.String()); got != SlotPrevious {
			t.Errorf("Match(previous) = %v", got)
		}
		if got := Match(s, issued.String()); got != SlotCurrent {
			t.Errorf("Match(current) = %v", got)
		}
		if got := PreviousTokenID(s); got != issued.Previous.ID {
			t.Errorf("PreviousTokenID = %q", got)
		}
		if !InStatus(s, issued) {
			t.Error("InStatus refuses the rotated Secret")
		}
		noPrevious := issued
		noPrevious.Previous = nil
		if InStatus(s, noPrevious) {
			t.Error("InStatus ignores the previous token")
		}
	}

	// Dropping the previous token removes its data and annotation.
	issued.Previous = nil
	if !issued.ApplyTo(secret) {
		t.Fatal("ApplyTo without previous reported no change")
	}
	if _, ok := secret.Data[DataPreviousToken]; ok {
		t.Error("previous-token kept")
	}
	if _, ok := secret.Annotations[AnnotationPreviousExpiresAt]; ok {
		t.Error("previous-expires-at kept")
	}
}

func TestVerify(t *testing.T) {
	now := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
	issued, rotatedSecret := rotated(now)
	one := int64(1)
	zero := int64(0)
	limited := func(n *int64) *corev1.Secret {
		i := Issued{Token: issued.Token, Lifetime: issued.Lifetime, Source: SourceHTTP, UsesLeft: n}
		s := &corev1.Secret{}
		i.ApplyTo(s)
		return s
	}
	garbled := limited(&one)
	garbled.Annotations[AnnotationUsesLeft] = "many"
	tests := []struct {
		name      string
		secret    *corev1.Secret
		presented string
		at        time.Time
		want      Verdict
	}{
		{"current", rotatedSecret, issued.String(), now, VerdictValid},
		{"previous during overlap", rotatedSecret, issued.Previous.String(), now, VerdictValid},
		{"previous after its expiry", rotatedSecret, issued.Previous.String(), issued.Previous.ExpiresAt, VerdictExpired},
		{"current after the previous expired", rotatedSecret, issued.String(), issued.Previous.ExpiresAt, VerdictValid},
		{"current at its expiry", rotatedSecret, issued.String(), issued.ExpiresAt, VerdictExpired},
		{"another token", rotatedSecret, Generate().String(), now, VerdictUnknown},
		{"one use left", limited(&one), issued.String(), now, VerdictValid},
		{"no use left", limited(&zero), issued.String(), now, VerdictSpent},
		{"unreadable uses left", garbled, issued.String(), now, VerdictSpent},
		{"unlimited", limited(nil), issued.String(), now, VerdictValid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, s := range []*corev1.Secret{tt.secret, concealedCopy(tt.secret)} {
				if got := Verify(s, tt.presented, tt.at); got != tt.want {
					t.Errorf("Verify = %s, want %s (concealed: %v)", got, tt.want, s != tt.secret)
				}
			}
		})
	}
}

func concealedCopy(s *corev1.Secret) *corev1.Secret {
	c := s.DeepCopy()
	Conceal(c)
	return c
}

func TestUsesLeft(t *testing.T) {
	tests := []struct {
		annotation *string
		n          int64
		limited    bool
		spent      bool
	}{
		{nil, 0, false, false},
		{new("3"), 3, true, false},
		{new("0"), 0, true, true},
		{new("-1"), 0, true, true},
		{new("x"), 0, true, true},
	}
	for _, tt := range tests {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{}}}
		if tt.annotation != nil {
			s.Annotations[AnnotationUsesLeft] = *tt.annotation
		}
		n, limited := UsesLeft(s)
		if n != tt.n || limited != tt.limited || Spent(s) != tt.spent {
			t.Errorf("%v: UsesLeft = %d, %v; Spent = %v", tt.annotation, n, limited, Spent(s))
		}
	}
}
