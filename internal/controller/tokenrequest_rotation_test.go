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
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/tokenops/token-operator/api/v1alpha1"
	"github.com/tokenops/token-operator/internal/token"
)

// renewBefore gives a TokenRequest spec.rotation.renewBefore.
func renewBefore(d time.Duration) func(*tokensv1alpha1.TokenRequest) {
	return func(tr *tokensv1alpha1.TokenRequest) {
		tr.Spec.Rotation = &tokensv1alpha1.Rotation{RenewBefore: &metav1.Duration{Duration: d}}
	}
}

// revision waits until the TokenRequest's status records the given revision, and returns it
// fresh.
func revision(ctx context.Context, tr *tokensv1alpha1.TokenRequest, rev int64) *tokensv1alpha1.TokenRequest {
	GinkgoHelper()
	Eventually(func(g Gomega) int64 {
		g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(tr), tr)).To(Succeed())
		return tr.Status.Revision
	}).WithTimeout(20 * time.Second).Should(BeEquivalentTo(rev))
	return tr
}

// annotate sets an annotation on a TokenRequest.
func annotate(ctx context.Context, tr *tokensv1alpha1.TokenRequest, key, value string) {
	GinkgoHelper()
	patch := client.MergeFrom(tr.DeepCopy())
	if tr.Annotations == nil {
		tr.Annotations = map[string]string{}
	}
	tr.Annotations[key] = value
	Expect(k8sClient.Patch(ctx, tr, patch)).To(Succeed())
}

// previousOf reads the previous token a Secret holds.
func previousOf(s *corev1.Secret) string { return string(s.Data[token.DataPreviousToken]) }

var _ = Describe("Token rotation", func() {
	var ns string
	BeforeEach(func(ctx SpecContext) { ns = newNamespace(ctx) })

	It("rotates at renewBefore, keeps the old token until its own expiry, then drops it", func(ctx SpecContext) {
		seen := tokensSeen(ctx, ns)
		// Renewal 4s after issue; the old token lasts 2s more; the next renewal is 2s after that.
		tr := waitFor(ctx, newTokenRequest(ctx, ns, "rotating", "6s", renewBefore(2*time.Second)), tokensv1alpha1.ReasonIssued)
		first := getSecret(ctx, ns, "rotating")(Default)
		firstExpiry := tr.Status.ExpiresAt.Time
		Expect(tr.Status.Revision).To(BeEquivalentTo(1))
		Expect(tr.Status.RenewalTime).To(HaveValue(HaveField("Time", BeTemporally("==", firstExpiry.Add(-2*time.Second)))))

		By("rotating at the renewal time")
		revision(ctx, tr, 2)
		rotated := getSecret(ctx, ns, "rotating")(Default)
		Expect(rotated.UID).To(Equal(first.UID), "the same Secret, so mounted volumes follow")
		Expect(previousOf(rotated)).To(Equal(tokenOf(first)))
		Expect(tokenOf(rotated)).NotTo(Equal(tokenOf(first)))
		Expect(rotated.Annotations).To(HaveKeyWithValue(token.AnnotationPreviousExpiresAt, firstExpiry.UTC().Format(time.RFC3339)))
		Expect(rotated.Annotations).To(HaveKeyWithValue(token.AnnotationRevision, "2"))
		Expect(tr.Status.PreviousTokenID).To(Equal(string(first.Data[token.DataTokenID])))
		Expect(tr.Status.PreviousExpiresAt).To(HaveValue(HaveField("Time", BeTemporally("==", firstExpiry))))
		Expect(tr.Status.TokenID).To(Equal(string(rotated.Data[token.DataTokenID])))
		Expect(tr.Status.ExpiresAt.Time).To(BeTemporally(">", firstExpiry))
		Expect(ready(tr)).To(HaveField("Reason", tokensv1alpha1.ReasonIssued))
		Expect(seen()["rotating"]).To(HaveLen(2), "exactly one rotation in the first window")
		Eventually(eventReasons(ctx, tr)).Should(ContainElement(EventTokenRotated))

		By("dropping the previous token at its expiry, keeping the current one")
		Eventually(getSecret(ctx, ns, "rotating")).WithTimeout(4 * time.Second).Should(And(
			WithTransform(previousOf, BeEmpty()),
			WithTransform(tokenOf, Equal(tokenOf(rotated))),
			HaveField("Annotations", Not(HaveKey(token.AnnotationPreviousExpiresAt))),
		))
		Eventually(func(g Gomega) string {
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(tr), tr)).To(Succeed())
			return tr.Status.PreviousTokenID
		}).Should(BeEmpty())
		Expect(tr.Status.Revision).To(BeEquivalentTo(2))
	})

	It("rotates exactly once per window across a manager restart, with two managers racing", func(ctx SpecContext) {
		seen := tokensSeen(ctx, ns)
		late := waitFor(ctx, newTokenRequest(ctx, ns, "late", "8s", renewBefore(4*time.Second)), tokensv1alpha1.ReasonIssued)
		lost := waitFor(ctx, newTokenRequest(ctx, ns, "lost-patch", "8s", renewBefore(4*time.Second)), tokensv1alpha1.ReasonIssued)
		lateFirst := tokenOf(getSecret(ctx, ns, "late")(Default))

		By("stopping the manager before the renewal time")
		stopManager()
		stopManager = nil

		By("waiting past the renewal time with no manager running")
		renewal := late.Status.RenewalTime.Time
		Eventually(time.Now).WithTimeout(10 * time.Second).WithPolling(100 * time.Millisecond).
			Should(BeTemporally(">", renewal.Add(time.Second)))

		By("writing a rotation whose status patch was lost, as a crashed leader would leave it")
		s := getSecret(ctx, ns, "lost-patch")(Default)
		held, err := token.FromSecret(s)
		Expect(err).NotTo(HaveOccurred())
		written := token.Issued{Token: token.Generate(), Lifetime: token.NewLifetime(time.Now(), 8*time.Second),
			Source: token.SourceTokenRequest, Revision: 2, Previous: &token.Previous{Token: held.Token, ExpiresAt: held.ExpiresAt}}
		written.ApplyTo(s)
		Expect(k8sClient.Update(ctx, s)).To(Succeed())

		By("starting two managers at once")
		stopManager = startManager(newManager())
		stopSecond := startManager(newManager())
		defer stopSecond()

		revision(ctx, late, 2)
		Expect(late.Status.PreviousTokenID).To(Equal(lateFirst[:token.IDLength]))
		revision(ctx, lost, 2)
		Expect(lost.Status.TokenID).To(Equal(written.ID), "the lost rotation is adopted, not repeated")
		Expect(lost.Status.PreviousTokenID).To(Equal(held.ID))
		Expect(tokenOf(getSecret(ctx, ns, "lost-patch")(Default))).To(Equal(written.String()))

		By("seeing no second rotation in the window")
		nextWindow := late.Status.RenewalTime.Time
		if t := lost.Status.RenewalTime.Time; t.Before(nextWindow) {
			nextWindow = t
		}
		Consistently(func(g Gomega) {
			g.Expect(seen()["late"]).To(HaveLen(2))
			g.Expect(seen()["lost-patch"]).To(HaveLen(2))
		}).WithTimeout(time.Until(nextWindow) - 200*time.Millisecond).Should(Succeed())
	})

	It("keeps renewalTime at expiresAt - ttl x percentage after a re-issue that keeps the expiry", func(ctx SpecContext) {
		pct := int32(50)
		tr := waitFor(ctx, newTokenRequest(ctx, ns, "percent", "30s", func(tr *tokensv1alpha1.TokenRequest) {
			tr.Spec.Rotation = &tokensv1alpha1.Rotation{RenewBeforePercentage: &pct}
		}), tokensv1alpha1.ReasonIssued)
		expiresAt := tr.Status.ExpiresAt.Time
		Expect(tr.Status.RenewalTime).To(HaveValue(HaveField("Time", BeTemporally("==", expiresAt.Add(-15*time.Second)))))

		By("deleting the Secret by hand: the re-issued token keeps the recorded expiry, and so the renewal time")
		// Two seconds after the issue at least, so that the re-issued lifetime is shorter.
		Eventually(time.Now).WithTimeout(5 * time.Second).Should(BeTemporally(">", tr.Status.IssuedAt.Add(2*time.Second)))
		Expect(k8sClient.Delete(ctx, getSecret(ctx, ns, "percent")(Default))).To(Succeed())
		revision(ctx, tr, 2)
		Expect(tr.Status.IssuedAt.Time).To(BeTemporally(">", expiresAt.Add(-30*time.Second)))
		Expect(tr.Status.ExpiresAt.Time).To(BeTemporally("==", expiresAt))
		Expect(tr.Status.RenewalTime).To(HaveValue(HaveField("Time", BeTemporally("==", expiresAt.Add(-15*time.Second)))))
	})

	It("rotates on demand once per value of the rotate annotation", func(ctx SpecContext) {
		tr := waitFor(ctx, newTokenRequest(ctx, ns, "on-demand", "10m", func(tr *tokensv1alpha1.TokenRequest) {
			tr.Annotations = map[string]string{tokensv1alpha1.AnnotationRotate: "at-creation"}
		}), tokensv1alpha1.ReasonIssued)
		Expect(tr.Status.Revision).To(BeEquivalentTo(1), "a value present at creation asks only for the first token")
		Expect(tr.Status.LastRotationRequest).To(Equal("at-creation"))
		first := getSecret(ctx, ns, "on-demand")(Default)

		annotate(ctx, tr, tokensv1alpha1.AnnotationRotate, "1")
		revision(ctx, tr, 2)
		s := getSecret(ctx, ns, "on-demand")(Default)
		Expect(tokenOf(s)).NotTo(Equal(tokenOf(first)))
		Expect(previousOf(s)).To(BeEmpty(), "without spec.rotation the old token stops at once")
		Expect(tr.Status.LastRotationRequest).To(Equal("1"))
		Expect(tr.Status.ExpiresAt.Time).To(BeTemporally(">=", first.CreationTimestamp.Add(10*time.Minute)))

		By("touching the TokenRequest without a new value")
		annotate(ctx, tr, "unrelated", "x")
		Consistently(func(g Gomega) int64 {
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(tr), tr)).To(Succeed())
			return tr.Status.Revision
		}).WithTimeout(2 * time.Second).Should(BeEquivalentTo(2))

		By("asking again")
		annotate(ctx, tr, tokensv1alpha1.AnnotationRotate, "2")
		revision(ctx, tr, 3)
	})

	It("renews an Expired TokenRequest on request", func(ctx SpecContext) {
		tr := newTokenRequest(ctx, ns, "lapsed", "2s")
		Eventually(readyCondition(ctx, tr)).WithTimeout(5 * time.Second).Should(HaveField("Reason", tokensv1alpha1.ReasonExpired))
		Eventually(func() bool {
			return apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "lapsed"}, &corev1.Secret{}))
		}).Should(BeTrue())
		annotate(ctx, tr, tokensv1alpha1.AnnotationRotate, "renew")
		revision(ctx, tr, 2)
		waitFor(ctx, tr, tokensv1alpha1.ReasonIssued)
		Expect(tokenOf(getSecret(ctx, ns, "lapsed")(Default))).To(HavePrefix(tr.Status.TokenID + ":"))
		Expect(tr.Status.ExpiresAt.Time).To(BeTemporally(">", time.Now()))
		Eventually(eventReasons(ctx, tr)).Should(ContainElement(EventTokenRotated))
	})

	It("keeps the old token for the overlap through an on-demand rotation when spec.rotation is set", func(ctx SpecContext) {
		tr := waitFor(ctx, newTokenRequest(ctx, ns, "overlap", "10m", renewBefore(time.Minute)), tokensv1alpha1.ReasonIssued)
		first := getSecret(ctx, ns, "overlap")(Default)
		annotate(ctx, tr, tokensv1alpha1.AnnotationRotate, "now")
		revision(ctx, tr, 2)
		Expect(previousOf(getSecret(ctx, ns, "overlap")(Default))).To(Equal(tokenOf(first)))
		By("cutting the old token's life to the one-minute overlap, so the next renewal keeps its own")
		Expect(tr.Status.PreviousExpiresAt.Time).To(BeTemporally("~", tr.Status.IssuedAt.Add(time.Minute), time.Second))
		Expect(tr.Status.RenewalTime.Time).To(BeTemporally("==", tr.Status.ExpiresAt.Add(-time.Minute)))
	})
})

var _ = Describe("Limited-use tokens", func() {
	var ns string
	BeforeEach(func(ctx SpecContext) { ns = newNamespace(ctx) })

	It("writes the use count, marks the TokenRequest Spent and deletes the Secret at the last use, and never re-issues it", func(ctx SpecContext) {
		tr := waitFor(ctx, newTokenRequest(ctx, ns, "once", "10m", func(tr *tokensv1alpha1.TokenRequest) {
			tr.Spec.MaxUses = new(int64(2))
		}), tokensv1alpha1.ReasonIssued)
		s := getSecret(ctx, ns, "once")(Default)
		Expect(s.Annotations).To(HaveKeyWithValue(token.AnnotationUsesLeft, "2"))

		By("spending the last use, as the redeem endpoint does")
		s.Annotations[token.AnnotationUsesLeft] = "0"
		Expect(k8sClient.Update(ctx, s)).To(Succeed())
		waitFor(ctx, tr, tokensv1alpha1.ReasonSpent)
		Eventually(func() bool {
			return apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKeyFromObject(s), &corev1.Secret{}))
		}).Should(BeTrue())
		Consistently(func() bool {
			return apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKeyFromObject(s), &corev1.Secret{}))
		}).WithTimeout(2 * time.Second).Should(BeTrue())
		Expect(ready(tr)).To(HaveField("Reason", tokensv1alpha1.ReasonSpent))
		Eventually(eventReasons(ctx, tr)).Should(ContainElement(EventTokenSpent))

		By("renewing it with the rotate annotation")
		annotate(ctx, tr, tokensv1alpha1.AnnotationRotate, "again")
		revision(ctx, tr, 2)
		waitFor(ctx, tr, tokensv1alpha1.ReasonIssued)
		Expect(getSecret(ctx, ns, "once")(Default).Annotations).To(HaveKeyWithValue(token.AnnotationUsesLeft, "2"))
	})
})

// ready is the TokenRequest's Ready condition as last read.
func ready(tr *tokensv1alpha1.TokenRequest) metav1.Condition {
	for _, c := range tr.Status.Conditions {
		if c.Type == tokensv1alpha1.ConditionReady {
			return c
		}
	}
	return metav1.Condition{}
}
