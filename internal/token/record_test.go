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
	"errors"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var recordNow = time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)

// secretOf is the Secret ApplyTo writes for issued, with a name, a UID and, for a
// TokenRequest's token, a controller reference.
func secretOf(issued Issued) *corev1.Secret {
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "s", UID: "uid-1"}}
	if issued.Source == SourceTokenRequest {
		s.OwnerReferences = []metav1.OwnerReference{{APIVersion: "tokens.tokenops.io/v1alpha1", Kind: "TokenRequest",
			Name: "tr", UID: "tr-uid", Controller: new(true)}}
	}
	issued.ApplyTo(s)
	return s
}

var (
	httpIssued = Issued{Token: Generate(), Lifetime: NewLifetime(recordNow, time.Hour), Source: SourceHTTP, UsesLeft: new(int64(3))}
	trIssued   = Issued{Token: Generate(), Lifetime: NewLifetime(recordNow, time.Hour), Source: SourceTokenRequest, Revision: 4}
)

// edited is the Secret of i with f applied.
func edited(i Issued, f func(*corev1.Secret)) *corev1.Secret {
	s := secretOf(i)
	f(s)
	return s
}

// TestRecordOfShapes: the Secrets ApplyTo writes read back field by field.
func TestRecordOfShapes(t *testing.T) {
	id := func(i Issued) BinaryID { b, _ := ParseID(i.ID); return b }
	tests := []struct {
		name   string
		secret *corev1.Secret
		want   Record
	}{
		{"HTTP token", secretOf(httpIssued), Record{Namespace: "ns", Name: "s", UID: "uid-1", Source: SourceHTTP,
			Current:  Held{ID: id(httpIssued), Digest: DigestOf(httpIssued.String()), ExpiresAt: httpIssued.ExpiresAt.Unix()},
			IssuedAt: httpIssued.IssuedAt.Unix(), UsesLeft: 3, HasToken: true, Intact: true}},
		{"TokenRequest token", secretOf(trIssued), Record{Namespace: "ns", Name: "s", UID: "uid-1", Source: SourceTokenRequest,
			Controller: &Controller{Name: "tr", UID: "tr-uid"},
			Current:    Held{ID: id(trIssued), Digest: DigestOf(trIssued.String()), ExpiresAt: trIssued.ExpiresAt.Unix()},
			IssuedAt:   trIssued.IssuedAt.Unix(), Revision: 4, UsesLeft: Unlimited, HasToken: true, Intact: true, Plaintext: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := RecordOf(tt.secret)
			if err != nil || !got.Same(&tt.want) {
				t.Errorf("RecordOf = %+v, %v\nwant %+v", got, err, tt.want)
			}
		})
	}
}

// TestRecordOfEdits: what a Secret edited by hand reads as.
func TestRecordOfEdits(t *testing.T) {
	tests := []struct {
		name   string
		secret *corev1.Secret
		want   string
		check  func(Record) bool
	}{
		{"unreadable expiry", edited(httpIssued, func(s *corev1.Secret) { s.Annotations[AnnotationExpiresAt] = "tomorrow" }),
			"expired", func(r Record) bool { return r.Current.ExpiresAt == 0 && r.Expired(recordNow) }},
		{"missing expiry", edited(httpIssued, func(s *corev1.Secret) { delete(s.Annotations, AnnotationExpiresAt) }),
			"expired", func(r Record) bool { return r.Expired(recordNow) }},
		{"offset expiry", edited(httpIssued, func(s *corev1.Secret) {
			s.Annotations[AnnotationExpiresAt] = httpIssued.ExpiresAt.In(time.FixedZone("CET", 3600)).Format(time.RFC3339)
		}), "the same instant", func(r Record) bool { return r.ExpiresAt().Equal(httpIssued.ExpiresAt) }},
		{"unreadable uses left", edited(httpIssued, func(s *corev1.Secret) { s.Annotations[AnnotationUsesLeft] = "many" }),
			"spent", func(r Record) bool { return r.Limited() && r.Spent() }},
		{"negative uses left", edited(httpIssued, func(s *corev1.Secret) { s.Annotations[AnnotationUsesLeft] = "-4" }),
			"spent", func(r Record) bool { return r.Spent() }},
		{"edited token-id label", edited(httpIssued, func(s *corev1.Secret) { s.Labels[LabelTokenID] = "0000000000000000" }),
			"not intact, still a token", func(r Record) bool { return !r.Intact && r.HasToken }},
		{"deleting", edited(httpIssued, func(s *corev1.Secret) { s.DeletionTimestamp = &metav1.Time{Time: recordNow} }),
			"deleting", func(r Record) bool { return r.Deleting }},
		{"owner that is not a controller", edited(httpIssued, func(s *corev1.Secret) {
			s.OwnerReferences = []metav1.OwnerReference{{Kind: "TokenRequest", Name: "x", UID: "u"}}
		}), "no controller", func(r Record) bool { return r.Controller == nil && !r.ControlledBy("u") }},
		{"controller", secretOf(trIssued), "controlled by tr-uid only",
			func(r Record) bool { return r.ControlledBy("tr-uid") && !r.ControlledBy("other") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := RecordOf(tt.secret)
			if err != nil {
				t.Fatalf("RecordOf error = %v", err)
			}
			if !tt.check(r) {
				t.Errorf("record %+v: want %s", r, tt.want)
			}
		})
	}
}

// TestRecordOfRefusals: what is not a token Secret is refused; a token Secret without a
// usable token keeps its identity (it still expires), validates nothing, and says why.
func TestRecordOfRefusals(t *testing.T) {
	tests := []struct {
		name     string
		secret   *corev1.Secret
		notToken bool   // RecordOf refuses it
		tokenErr string // RecordOf keeps it, without a usable token, and names this
	}{
		{name: "wrong type", secret: edited(httpIssued, func(s *corev1.Secret) { s.Type = corev1.SecretTypeOpaque }), notToken: true},
		{name: "no managed-by label", secret: edited(httpIssued, func(s *corev1.Secret) { delete(s.Labels, LabelManagedBy) }), notToken: true},
		{name: "missing digest", secret: edited(httpIssued, func(s *corev1.Secret) { delete(s.Data, DataTokenDigest) }),
			tokenErr: DataTokenDigest},
		{name: "short digest", secret: edited(httpIssued, func(s *corev1.Secret) { s.Data[DataTokenDigest] = []byte("abc") }),
			tokenErr: DataTokenDigest},
		{name: "huge digest", secret: edited(httpIssued, func(s *corev1.Secret) { s.Data[DataTokenDigest] = make([]byte, 1<<20) }),
			tokenErr: DataTokenDigest},
		{name: "bad token id", secret: edited(httpIssued, func(s *corev1.Secret) { s.Data[DataTokenID] = []byte("XYZ") }),
			tokenErr: DataTokenID},
		{name: "no token at all", secret: edited(httpIssued, func(s *corev1.Secret) { s.Data = nil }), tokenErr: "no data"},
		{name: "malformed plaintext", secret: edited(trIssued, func(s *corev1.Secret) { s.Data[DataToken] = []byte("garbage") }),
			tokenErr: DataToken},
		{name: "huge plaintext", secret: edited(trIssued, func(s *corev1.Secret) { s.Data[DataToken] = make([]byte, 1<<20) }),
			tokenErr: DataToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := RecordOf(tt.secret)
			if tt.notToken {
				if !errors.Is(err, ErrNotTokenSecret) {
					t.Fatalf("RecordOf error = %v, want ErrNotTokenSecret", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.tokenErr) || r.HasToken {
				t.Fatalf("RecordOf = %+v, %v; want no token and an error naming %s", r, err, tt.tokenErr)
			}
			if r.Name != "s" || r.UID != "uid-1" || r.Verify(httpIssued.String(), recordNow) != VerdictUnknown {
				t.Errorf("want the Secret's identity kept and nothing validating: %+v", r)
			}
		})
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
	return issued, secretOf(issued)
}

func TestRotatedSecret(t *testing.T) {
	issued, secret := rotated(recordNow)
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
	rec, err := RecordOf(secret)
	if err != nil {
		t.Fatal(err)
	}
	if got := rec.Match(DigestOf(issued.Previous.String())); got != SlotPrevious {
		t.Errorf("Match(previous) = %v", got)
	}
	if got := rec.Match(DigestOf(issued.String())); got != SlotCurrent {
		t.Errorf("Match(current) = %v", got)
	}
	if got := rec.Previous().ID.String(); got != issued.Previous.ID {
		t.Errorf("previous id = %q", got)
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

func TestInStatus(t *testing.T) {
	issued, secret := rotated(recordNow)
	rec, _ := RecordOf(secret)
	other := func(f func(*Issued)) Issued {
		i := issued
		p := *issued.Previous
		i.Previous = &p
		f(&i)
		return i
	}
	tests := []struct {
		name string
		want Issued
		in   bool
	}{
		{"as written", issued, true},
		{"another expiry", other(func(i *Issued) { i.ExpiresAt = i.ExpiresAt.Add(time.Hour) }), false},
		{"another issue time", other(func(i *Issued) { i.IssuedAt = i.IssuedAt.Add(-time.Hour) }), false},
		{"another revision", other(func(i *Issued) { i.Revision = 3 }), false},
		{"another token", other(func(i *Issued) { i.Token = Generate() }), false},
		{"no previous", other(func(i *Issued) { i.Previous = nil }), false},
		{"another previous expiry", other(func(i *Issued) { i.Previous.ExpiresAt = i.Previous.ExpiresAt.Add(time.Second) }), false},
		{"another source", other(func(i *Issued) { i.Source = SourceHTTP }), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := rec.InStatus(tt.want); got != tt.in {
				t.Errorf("InStatus = %v, want %v", got, tt.in)
			}
		})
	}
	secret.Labels[LabelTokenID] = "0000000000000000"
	edited, _ := RecordOf(secret)
	if edited.InStatus(issued) {
		t.Error("InStatus accepts an edited label")
	}
}

func TestVerify(t *testing.T) {
	issued, rotatedSecret := rotated(recordNow)
	limited := func(n *int64) *corev1.Secret {
		return secretOf(Issued{Token: issued.Token, Lifetime: issued.Lifetime, Source: SourceHTTP, UsesLeft: n})
	}
	garbled := limited(new(int64(1)))
	garbled.Annotations[AnnotationUsesLeft] = "many"
	tests := []struct {
		name      string
		secret    *corev1.Secret
		presented string
		at        time.Time
		want      Verdict
	}{
		{"current", rotatedSecret, issued.String(), recordNow, VerdictValid},
		{"previous during overlap", rotatedSecret, issued.Previous.String(), recordNow, VerdictValid},
		{"previous after its expiry", rotatedSecret, issued.Previous.String(), issued.Previous.ExpiresAt, VerdictExpired},
		{"current after the previous expired", rotatedSecret, issued.String(), issued.Previous.ExpiresAt, VerdictValid},
		{"current at its expiry", rotatedSecret, issued.String(), issued.ExpiresAt, VerdictExpired},
		{"current a second before its expiry", rotatedSecret, issued.String(), issued.ExpiresAt.Add(-time.Second), VerdictValid},
		{"another token", rotatedSecret, Generate().String(), recordNow, VerdictUnknown},
		{"same id, other secret", rotatedSecret, issued.ID + ":" + strings.Repeat("A", SecretLength), recordNow, VerdictUnknown},
		{"digest form", limited(nil), issued.String(), recordNow, VerdictValid},
		{"one use left", limited(new(int64(1))), issued.String(), recordNow, VerdictValid},
		{"no use left", limited(new(int64(0))), issued.String(), recordNow, VerdictSpent},
		{"unreadable uses left", garbled, issued.String(), recordNow, VerdictSpent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec, err := RecordOf(tt.secret)
			if err != nil {
				t.Fatal(err)
			}
			if got := rec.Verify(tt.presented, tt.at); got != tt.want {
				t.Errorf("Verify = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestParseID(t *testing.T) {
	for _, tt := range []struct {
		in string
		ok bool
	}{
		{"0123456789abcdef", true}, {"0123456789ABCDEF", false}, {"0123456789abcde", false}, {"", false}, {"0123456789abcdeg", false},
	} {
		b, ok := ParseID(tt.in)
		if ok != tt.ok || (ok && b.String() != tt.in) {
			t.Errorf("ParseID(%q) = %v, %v", tt.in, b, ok)
		}
	}
}

// FuzzRecordOf feeds RecordOf Secrets with fuzzed data and annotations, as anyone who may edit
// a Secret could write them: it must never panic, never keep a token it cannot account for,
// and agree with ApplyTo on the Secrets ApplyTo writes.
func FuzzRecordOf(f *testing.F) {
	issued := Issued{Token: Generate(), Lifetime: NewLifetime(recordNow, time.Hour), Source: SourceHTTP}
	good := secretOf(issued)
	f.Add([]byte(issued.String()), []byte(issued.ID), good.Data[DataTokenDigest], good.Annotations[AnnotationExpiresAt], "3", "1", []byte{})
	f.Add([]byte{}, []byte(issued.ID), []byte("short"), "tomorrow", "-1", "x", []byte("garbage"))
	f.Add([]byte("garbage"), []byte("ZZ"), []byte{}, "", "", "", []byte(Generate().String()))
	f.Fuzz(func(t *testing.T, tok, id, digest []byte, expires, uses, revision string, previous []byte) {
		s := secretOf(issued)
		s.Data = map[string][]byte{DataTokenID: id, DataTokenDigest: digest, DataPreviousToken: previous}
		if len(tok) > 0 {
			s.Data[DataToken] = tok
		}
		s.Annotations[AnnotationExpiresAt] = expires
		s.Annotations[AnnotationPreviousExpiresAt] = expires
		s.Annotations[AnnotationUsesLeft] = uses
		s.Annotations[AnnotationRevision] = revision
		r, err := RecordOf(s)
		if errors.Is(err, ErrNotTokenSecret) {
			t.Fatal("a token Secret was refused")
		}
		if r.Name != s.Name || r.UID != s.UID {
			t.Fatalf("record lost the Secret's identity: %+v", r)
		}
		if (err == nil) != r.HasToken {
			t.Fatalf("error %v with HasToken %v", err, r.HasToken)
		}
		if err != nil && (strings.Contains(err.Error(), string(tok)) && len(tok) > 8) {
			t.Fatalf("the error repeats the token data: %v", err)
		}
		if r.UsesLeft < Unlimited || r.Revision < 0 {
			t.Fatalf("negative count: %+v", r)
		}
		if r.HasToken {
			if _, ok := ParseID(r.Current.ID.String()); !ok {
				t.Fatalf("id %v does not round-trip", r.Current.ID)
			}
			if r.Plaintext && r.Current.Digest != DigestOf(string(tok)) {
				t.Fatal("the digest is not the token's")
			}
		}
	})
}
