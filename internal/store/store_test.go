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

package store

import (
	"context"
	"testing"
	"time"

	"github.com/go-logr/logr"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/tokenops/token-operator/internal/index"
	"github.com/tokenops/token-operator/internal/token"
)

var now = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

var secrets = schema.GroupResource{Resource: "secrets"}

// stored is an HTTP token's Secret as the API server holds it.
func stored(ttl time.Duration, maxUses *int64) (*corev1.Secret, token.Issued) {
	issued := token.Issued{Token: token.Generate(), Lifetime: token.NewLifetime(now, ttl), Source: token.SourceHTTP, UsesLeft: maxUses}
	s := token.NewHTTPSecret("ns", issued)
	s.UID = "uid-1"
	return s, issued
}

// fixture is a store over a fake API server holding secret (unless nil), its index holding
// the secret's Record, and deletes answered by deleteErr when it is set.
func fixture(secret *corev1.Secret, deleteErr error) (*Store, client.Client, *index.Index) {
	b := fake.NewClientBuilder()
	if secret != nil {
		b = b.WithObjects(secret)
	}
	if deleteErr != nil {
		b = b.WithInterceptorFuncs(interceptor.Funcs{Delete: func(context.Context, client.WithWatch, client.Object,
			...client.DeleteOption) error {
			return deleteErr
		}})
	}
	c := b.Build()
	tokens := index.New(logr.Discard())
	if secret != nil {
		tokens.Put(secret)
	}
	return New(c, c, tokens, clocktesting.NewFakePassiveClock(now)), c, tokens
}

func recordOf(g Gomega, secret *corev1.Secret) *token.Record {
	rec, err := token.RecordOf(secret)
	g.Expect(err).NotTo(HaveOccurred())
	return &rec
}

// TestDeletes covers Delete and Expire: what the API server answers, what the verb reports,
// and whether the index still holds the Secret afterwards.
func TestDeletes(t *testing.T) {
	conflict := apierrors.NewConflict(secrets, "token-x", apierrors.NewBadRequest("uid precondition"))
	tests := []struct {
		name      string
		verb      string // "delete" or "expire"
		ttl       time.Duration
		deleteErr error
		want      bool
		wantErr   bool
		indexed   bool // the index still holds the Secret
		gone      bool // the API server no longer holds it
	}{
		{"delete", "delete", time.Hour, nil, true, false, false, true},
		{"delete of a Secret gone already", "delete", time.Hour, apierrors.NewNotFound(secrets, "x"), false, false, false, false},
		{"delete of a Secret replaced by a newer one", "delete", time.Hour, conflict, false, false, false, false},
		{"delete the API server refuses", "delete", time.Hour, apierrors.NewServiceUnavailable("down"), false, true, true, false},
		{"expire of an expired token", "expire", -time.Second, nil, true, false, false, true},
		{"expire of a live token deletes nothing", "expire", time.Hour, nil, false, false, true, false},
		{"expire of a Secret gone already", "expire", -time.Second, apierrors.NewNotFound(secrets, "x"), false, false, false, false},
		{"expire of a Secret replaced", "expire", -time.Second, conflict, false, false, false, false},
		{"expire the API server refuses", "expire", -time.Second, apierrors.NewTimeoutError("slow", 1), false, true, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			secret, _ := stored(tt.ttl, nil)
			s, c, tokens := fixture(secret, tt.deleteErr)
			rec := recordOf(g, secret)
			verb := s.Delete
			if tt.verb == "expire" {
				verb = s.Expire
			}
			got, err := verb(context.Background(), rec)
			g.Expect(err != nil).To(Equal(tt.wantErr), "error %v", err)
			g.Expect(got).To(Equal(tt.want))
			_, indexed := tokens.Get(rec.Key())
			g.Expect(indexed).To(Equal(tt.indexed), "indexed")
			err = c.Get(context.Background(), rec.Key(), &corev1.Secret{})
			g.Expect(apierrors.IsNotFound(err)).To(Equal(tt.gone), "gone from the API server")
		})
	}
}

func TestCreateIndexesAtOnceAndNeverOverwrites(t *testing.T) {
	g := NewWithT(t)
	s, c, tokens := fixture(nil, nil)
	_, issued := stored(time.Hour, nil)
	key, err := s.IssueHTTP(context.Background(), "ns", issued)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(key.Name).To(Equal(token.HTTPSecretName(issued.ID)))
	secret := &corev1.Secret{}
	g.Expect(c.Get(context.Background(), key, secret)).To(Succeed())
	g.Expect(secret.Data).NotTo(HaveKey(token.DataToken), "a digest, never the token")
	id, _ := token.ParseID(issued.ID)
	rec, _ := tokens.Find(id, token.DigestOf(issued.String()))
	g.Expect(rec).NotTo(BeNil(), "indexed before any watch event")

	again := token.NewHTTPSecret("ns", token.Issued{Token: token.Token{ID: issued.ID, Secret: token.Generate().Secret},
		Lifetime: issued.Lifetime, Source: token.SourceHTTP})
	err = s.Create(context.Background(), again)
	g.Expect(apierrors.IsAlreadyExists(err)).To(BeTrue(), "%v", err)
	live := &corev1.Secret{}
	g.Expect(c.Get(context.Background(), client.ObjectKeyFromObject(secret), live)).To(Succeed())
	g.Expect(live.Data[token.DataTokenDigest]).To(Equal(secret.Data[token.DataTokenDigest]), "the first token stays")
}

func TestUpdateFailsOnANewerWrite(t *testing.T) {
	g := NewWithT(t)
	secret, _ := stored(time.Hour, nil)
	s, c, _ := fixture(secret, nil)
	read := &corev1.Secret{}
	g.Expect(c.Get(context.Background(), client.ObjectKeyFromObject(secret), read)).To(Succeed())
	newer := read.DeepCopy()
	newer.Annotations["edited"] = "by someone else"
	g.Expect(c.Update(context.Background(), newer)).To(Succeed())

	rotated, changed := token.Rewrite(read, token.Template{}, token.Issued{Token: token.Generate(),
		Lifetime: token.NewLifetime(now, time.Hour), Source: token.SourceHTTP})
	g.Expect(changed).To(BeTrue())
	g.Expect(apierrors.IsConflict(s.Update(context.Background(), rotated))).To(BeTrue())
}

// TestSpend covers Spend against the live Secret: one use at a time, the last use of an HTTP
// token deleting its Secret, and the verdicts for a Secret gone, replaced or presented wrong.
func TestSpend(t *testing.T) {
	tests := []struct {
		name      string
		uses      int64
		present   func(issued token.Issued) string
		edit      func(c client.Client, s *corev1.Secret) // what happened to the Secret since it was indexed
		want      token.Verdict
		usesLeft  *int64
		remaining string // uses-left annotation afterwards; "gone" for a deleted Secret
	}{
		{name: "spends one use", uses: 3, want: token.VerdictValid, usesLeft: new(int64(2)), remaining: "2"},
		{name: "the last use deletes an HTTP token's Secret", uses: 1, want: token.VerdictValid, usesLeft: new(int64(0)),
			remaining: "gone"},
		{name: "a Secret gone since: its last use went to another caller", uses: 2, want: token.VerdictSpent, remaining: "gone",
			edit: func(c client.Client, s *corev1.Secret) { _ = c.Delete(context.Background(), s) }},
		{name: "a count spent since, by another replica", uses: 2, want: token.VerdictSpent, remaining: "0",
			edit: func(c client.Client, s *corev1.Secret) {
				s.Annotations[token.AnnotationUsesLeft] = "0"
				_ = c.Update(context.Background(), s)
			}},
		{name: "a Secret replaced by a newer one of the same name", uses: 2, want: token.VerdictUnknown, remaining: "2",
			edit: func(c client.Client, s *corev1.Secret) {
				_ = c.Delete(context.Background(), s)
				s.ResourceVersion, s.UID = "", types.UID("uid-2")
				_ = c.Create(context.Background(), s)
			}},
		{name: "a wrong secret half spends nothing", uses: 2, want: token.VerdictUnknown, remaining: "2",
			present: func(issued token.Issued) string {
				return token.Token{ID: issued.ID, Secret: token.Generate().Secret}.String()
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			secret, issued := stored(time.Hour, new(tt.uses))
			s, c, _ := fixture(secret, nil)
			cached := recordOf(g, secret)
			if tt.edit != nil {
				live := &corev1.Secret{}
				g.Expect(c.Get(context.Background(), cached.Key(), live)).To(Succeed())
				tt.edit(c, live)
			}
			presented := issued.String()
			if tt.present != nil {
				presented = tt.present(issued)
			}
			got, err := s.Spend(context.Background(), cached, presented)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(got.Verdict).To(Equal(tt.want))
			g.Expect(got.UsesLeft).To(Equal(tt.usesLeft))
			live := &corev1.Secret{}
			err = c.Get(context.Background(), cached.Key(), live)
			if tt.remaining == "gone" {
				g.Expect(apierrors.IsNotFound(err)).To(BeTrue())
				return
			}
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(live.Annotations).To(HaveKeyWithValue(token.AnnotationUsesLeft, tt.remaining))
		})
	}
}

// TestSpendRetriesALostRace: a spend whose write loses to another one reads again and spends
// the next use.
func TestSpendRetriesALostRace(t *testing.T) {
	g := NewWithT(t)
	secret, issued := stored(time.Hour, new(int64(3)))
	lost := false
	c := fake.NewClientBuilder().WithObjects(secret).WithInterceptorFuncs(interceptor.Funcs{
		Patch: func(ctx context.Context, c client.WithWatch, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
			if !lost {
				lost = true
				return apierrors.NewConflict(secrets, obj.GetName(), apierrors.NewBadRequest("resourceVersion"))
			}
			return c.Patch(ctx, obj, patch, opts...)
		}}).Build()
	tokens := index.New(logr.Discard())
	s := New(c, c, tokens, clocktesting.NewFakePassiveClock(now))
	got, err := s.Spend(context.Background(), recordOf(g, secret), issued.String())
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(lost).To(BeTrue())
	g.Expect(got.UsesLeft).To(HaveValue(BeEquivalentTo(2)))
}

func TestDigestOnly(t *testing.T) {
	g := NewWithT(t)
	issued := token.Issued{Token: token.Generate(), Lifetime: token.NewLifetime(now, time.Hour), Source: token.SourceHTTP}
	// An earlier version's HTTP Secret: the token itself.
	old := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: token.HTTPSecretName(issued.ID), UID: "uid-1"}}
	issued.ApplyTo(old)
	delete(old.Data, token.DataTokenDigest)
	old.Data[token.DataToken] = []byte(issued.String())
	s, c, _ := fixture(old, nil)
	rec := recordOf(g, old)
	g.Expect(rec.Plaintext).To(BeTrue())
	changed, err := s.DigestOnly(context.Background(), rec)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(changed).To(BeTrue())
	live := &corev1.Secret{}
	g.Expect(c.Get(context.Background(), rec.Key(), live)).To(Succeed())
	g.Expect(live.Data).NotTo(HaveKey(token.DataToken))
	d := token.DigestOf(issued.String())
	g.Expect(live.Data[token.DataTokenDigest]).To(Equal(d[:]))

	g.Expect(c.Delete(context.Background(), live)).To(Succeed())
	changed, err = s.DigestOnly(context.Background(), rec)
	g.Expect(err).NotTo(HaveOccurred(), "a Secret gone is no error")
	g.Expect(changed).To(BeFalse())
}
