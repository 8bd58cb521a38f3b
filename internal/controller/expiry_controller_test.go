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
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/tokenops/token-operator/internal/index"
	"github.com/tokenops/token-operator/internal/store"
	"github.com/tokenops/token-operator/internal/token"
)

var _ = Describe("Expiry controller", func() {
	var ns string
	BeforeEach(func(ctx SpecContext) { ns = newNamespace(ctx) })

	// tokenSecret creates a token Secret the way the HTTP API does: no owner.
	tokenSecret := func(ctx context.Context, expiresAt string, mutate ...func(*corev1.Secret)) *corev1.Secret {
		tok := token.Generate()
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: token.HTTPSecretName(tok.ID)}}
		token.Issued{Token: tok, Lifetime: token.NewLifetime(time.Now(), time.Hour), Source: token.SourceHTTP}.ApplyTo(s)
		s.Annotations[token.AnnotationExpiresAt] = expiresAt
		for _, m := range mutate {
			m(s)
		}
		Expect(k8sClient.Create(ctx, s)).To(Succeed())
		return s
	}
	gone := func(ctx context.Context, s *corev1.Secret) func() error {
		return func() error { return k8sClient.Get(ctx, client.ObjectKeyFromObject(s), &corev1.Secret{}) }
	}
	rfc3339 := func(t time.Time) string { return t.UTC().Format(time.RFC3339) }

	It("never deletes a newer Secret of the same name than the one it read (the store's UID precondition)", func(ctx SpecContext) {
		old := tokenSecret(ctx, rfc3339(time.Now().Add(time.Hour)))
		rec, err := token.RecordOf(old)
		Expect(err).NotTo(HaveOccurred())
		Expect(k8sClient.Delete(ctx, old)).To(Succeed())
		newer := old.DeepCopy()
		newer.ResourceVersion, newer.UID = "", ""
		Expect(k8sClient.Create(ctx, newer)).To(Succeed())

		s := store.New(k8sClient, k8sClient, index.New(GinkgoLogr), clocktesting.NewFakePassiveClock(time.Now().Add(2*time.Hour)))
		for _, verb := range []func(context.Context, *token.Record) (bool, error){s.Expire, s.Delete} {
			deleted, err := verb(ctx, &rec)
			Expect(err).NotTo(HaveOccurred())
			Expect(deleted).To(BeFalse())
		}
		Expect(gone(ctx, newer)()).To(Succeed(), "the newer Secret stays")
	})

	It("spends the last use only of the version it read (the store's resourceVersion precondition)", func(ctx SpecContext) {
		tok := token.Generate()
		issued := token.Issued{Token: tok, Lifetime: token.NewLifetime(time.Now(), time.Hour), Source: token.SourceHTTP,
			UsesLeft: new(int64(1))}
		secret := token.NewHTTPSecret(ns, issued)
		Expect(k8sClient.Create(ctx, secret)).To(Succeed())
		rec, err := token.RecordOf(secret)
		Expect(err).NotTo(HaveOccurred())

		By("another writer raising the count between the store's read and its delete of the last use")
		raised := false
		c := interceptor.NewClient(k8sClient, interceptor.Funcs{Delete: func(ctx context.Context, c client.WithWatch,
			obj client.Object, opts ...client.DeleteOption) error {
			if !raised {
				raised = true
				live := &corev1.Secret{}
				Expect(c.Get(ctx, client.ObjectKeyFromObject(obj), live)).To(Succeed())
				live.Annotations[token.AnnotationUsesLeft] = "2"
				Expect(c.Update(ctx, live)).To(Succeed())
			}
			return c.Delete(ctx, obj, opts...)
		}})
		spent, err := store.New(c, k8sClient, index.New(GinkgoLogr), nil).Spend(ctx, &rec, tok.String())
		Expect(err).NotTo(HaveOccurred())
		Expect(raised).To(BeTrue())
		Expect(spent.Verdict).To(Equal(token.VerdictValid))
		Expect(spent.UsesLeft).To(HaveValue(BeEquivalentTo(1)), "the use is spent from the newer count")
		live := &corev1.Secret{}
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(secret), live)).To(Succeed(), "not deleted on a stale read")
		Expect(live.Annotations).To(HaveKeyWithValue(token.AnnotationUsesLeft, "1"))
	})

	It("deletes token Secrets whatever issued them, at their expires-at", func(ctx SpecContext) {
		expiresAt := time.Now().Add(2 * time.Second).Truncate(time.Second)
		s := tokenSecret(ctx, rfc3339(expiresAt))
		Consistently(gone(ctx, s)).WithTimeout(time.Until(expiresAt.Add(-300 * time.Millisecond))).Should(Succeed())
		Eventually(gone(ctx, s)).WithTimeout(time.Until(expiresAt.Add(2 * time.Second))).
			Should(MatchError(ContainSubstring("not found")))
	})

	It("deletes at once a token Secret already expired or with an expiry that does not parse", func(ctx SpecContext) {
		past := tokenSecret(ctx, rfc3339(time.Now().Add(-time.Hour)))
		garbage := tokenSecret(ctx, "tomorrow")
		missing := tokenSecret(ctx, "", func(s *corev1.Secret) { delete(s.Annotations, token.AnnotationExpiresAt) })
		for _, s := range []*corev1.Secret{past, garbage, missing} {
			Eventually(gone(ctx, s)).Should(MatchError(ContainSubstring("not found")))
		}
	})

	It("never deletes Secrets that are not token Secrets", func(ctx SpecContext) {
		expired := rfc3339(time.Now().Add(-time.Hour))
		unlabelled := tokenSecret(ctx, expired, func(s *corev1.Secret) { delete(s.Labels, token.LabelManagedBy) })
		otherType := tokenSecret(ctx, expired, func(s *corev1.Secret) { s.Type = corev1.SecretTypeOpaque })
		// A token Secret expiring in the past goes: proof that the controller ran meanwhile.
		marker := tokenSecret(ctx, expired)
		Eventually(gone(ctx, marker)).Should(MatchError(ContainSubstring("not found")))
		Consistently(func(g Gomega) {
			g.Expect(gone(ctx, unlabelled)()).To(Succeed())
			g.Expect(gone(ctx, otherType)()).To(Succeed())
		}).WithTimeout(2 * time.Second).Should(Succeed())
	})
})

var _ = Describe("An HTTP token Secret written by an earlier version", func() {
	It("has its plaintext replaced with the token's digest", func(ctx SpecContext) {
		ns := newNamespace(ctx)
		issued := token.Issued{Token: token.Generate(), Lifetime: token.NewLifetime(time.Now(), time.Hour), Source: token.SourceHTTP}
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: token.HTTPSecretName(issued.ID)}}
		issued.ApplyTo(s)
		// As the previous version wrote it: the token itself, no digest.
		delete(s.Data, token.DataTokenDigest)
		s.Data[token.DataToken] = []byte(issued.String())
		Expect(k8sClient.Create(ctx, s)).To(Succeed())

		digest := token.DigestOf(issued.String())
		Eventually(getSecret(ctx, ns, s.Name)).Should(And(
			HaveField("Data", Not(HaveKey(token.DataToken))),
			HaveField("Data", HaveKeyWithValue(token.DataTokenDigest, digest[:])),
			HaveField("UID", s.UID),
		))
		rec, err := token.RecordOf(getSecret(ctx, ns, s.Name)(Default))
		Expect(err).NotTo(HaveOccurred())
		Expect(rec.Verify(issued.String(), time.Now())).To(Equal(token.VerdictValid))
	})
})
