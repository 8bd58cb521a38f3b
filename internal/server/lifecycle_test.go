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

package server

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/tokenops/token-operator/api/v1alpha1"
	"github.com/tokenops/token-operator/internal/token"
)

// redeem POSTs /app/redeem/{tok} to base and returns the exact answer.
func redeem(base, tok string) string {
	GinkgoHelper()
	code, answer, _ := call(base, http.MethodPost, "/app/redeem/"+tok, "")
	Expect(code).To(Equal(http.StatusOK), answer)
	return answer
}

// usesLeft looks a token up by id and returns its uses_left (nil without a limit).
func usesLeft(base, id string) *int64 {
	GinkgoHelper()
	code, body, _ := call(base, http.MethodGet, "/app/token/"+id, "")
	Expect(code).To(Equal(http.StatusOK), body)
	var info struct {
		UsesLeft *int64 `json:"uses_left"`
	}
	Expect(json.Unmarshal([]byte(body), &info)).To(Succeed())
	return info.UsesLeft
}

// race sends n concurrent redeems of tok, alternating between the bases, and counts the
// true answers.
func race(n int, tok string, bases ...string) int {
	GinkgoHelper()
	answers := make([]string, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			defer GinkgoRecover()
			<-start
			answers[i] = redeem(bases[i%len(bases)], tok)
		})
	}
	close(start)
	wg.Wait()
	trues := 0
	for _, a := range answers {
		Expect(a).To(BeElementOf(answerTrue, answerFalse))
		if a == answerTrue {
			trues++
		}
	}
	return trues
}

var _ = Describe("Limited-use tokens over HTTP", func() {
	var otherURL string
	BeforeEach(func() {
		stop, other := startOperator(false, nil)
		DeferCleanup(stop)
		otherURL = "http://" + other.Listener.Addr().String()
	})

	It("spends a one-use token exactly once when 50 callers race on two replicas, and then it is gone", func(ctx SpecContext) {
		tok := issue(apiURL, `{"max_uses":1}`)
		parsed, _ := token.Parse(tok)
		Eventually(valid).WithArguments(otherURL, tok).Should(Equal(answerTrue))
		Expect(usesLeft(apiURL, parsed.ID)).To(HaveValue(BeEquivalentTo(1)))

		By("validating, which spends nothing")
		for range 3 {
			Expect(valid(apiURL, tok)).To(Equal(answerTrue))
			Expect(valid(otherURL, tok)).To(Equal(answerTrue))
		}

		By("racing 50 redeems")
		Expect(race(50, tok, apiURL, otherURL)).To(Equal(1))
		_, _, err := storedOf(ctx, tok)
		Expect(apierrors.IsNotFound(err)).To(BeTrue(), "the token's record is removed with the last use: %v", err)
		Eventually(valid).WithArguments(otherURL, tok).WithTimeout(time.Second).Should(Equal(answerFalse))
		Eventually(valid).WithArguments(apiURL, tok).WithTimeout(time.Second).Should(Equal(answerFalse))
		Expect(redeem(apiURL, tok)).To(Equal(answerFalse))
		code, _, _ := call(apiURL, http.MethodGet, "/app/token/"+parsed.ID, "")
		Expect(code).To(Equal(http.StatusNotFound))
	})

	It("spends exactly max_uses uses among 50 racing callers", func(ctx SpecContext) {
		tok := issue(apiURL, `{"max_uses":3,"ttl":"10m"}`)
		parsed, _ := token.Parse(tok)
		Expect(redeem(apiURL, tok)).To(Equal(answerTrue))
		Eventually(usesLeft).WithArguments(apiURL, parsed.ID).Should(HaveValue(BeEquivalentTo(2)))
		Eventually(valid).WithArguments(otherURL, tok).Should(Equal(answerTrue))
		Expect(race(50, tok, apiURL, otherURL)).To(Equal(2))
		_, _, err := storedOf(ctx, tok)
		Expect(apierrors.IsNotFound(err)).To(BeTrue())
	})

	It("redeems a token without a use limit any number of times, and refuses unknown or malformed ones", func() {
		tok := issue(apiURL, "")
		for range 3 {
			Expect(redeem(apiURL, tok)).To(Equal(answerTrue))
		}
		Expect(valid(apiURL, tok)).To(Equal(answerTrue))
		Expect(redeem(apiURL, token.Generate().String())).To(Equal(answerFalse))
		Expect(redeem(apiURL, "not-a-token")).To(Equal(answerFalse))
		code, _, _ := call(apiURL, http.MethodGet, "/app/redeem/"+tok, "")
		Expect(code).To(Equal(http.StatusMethodNotAllowed))
	})

	It("spends a TokenRequest's last use and leaves it Spent, never re-issued", func(ctx SpecContext) {
		tr := &tokensv1alpha1.TokenRequest{ObjectMeta: metav1.ObjectMeta{Name: "reset-link"},
			Spec: tokensv1alpha1.TokenRequestSpec{MaxUses: new(int64(1))}}
		tok := createTokenRequest(ctx, tr)
		ns := tr.Namespace
		Eventually(valid).WithArguments(apiURL, tok).Should(Equal(answerTrue))

		Expect(race(20, tok, apiURL, otherURL)).To(Equal(1))
		Expect(valid(apiURL, tok)).To(Equal(answerFalse))
		Eventually(readyReason(ctx, tr)).Should(Equal(tokensv1alpha1.ReasonSpent))
		Eventually(func() bool {
			_, err := secretOf(ctx, ns, "reset-link")
			return apierrors.IsNotFound(err)
		}).Should(BeTrue())
		Consistently(func() bool {
			_, err := secretOf(ctx, ns, "reset-link")
			return apierrors.IsNotFound(err)
		}).WithTimeout(time.Second).Should(BeTrue())
	})
})

var _ = Describe("A limited-use token whose use limit is removed by hand (the use limit is sealed)", func() {
	// removeUsesLeft deletes the annotation from a TokenRequest's Secret with a JSON merge patch.
	removeUsesLeft := func(ctx context.Context, ns, name string) {
		GinkgoHelper()
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
		patch := []byte(`{"metadata":{"annotations":{"` + token.AnnotationUsesLeft + `":null}}}`)
		Expect(k8sClient.Patch(ctx, s, client.RawPatch(types.MergePatchType, patch))).To(Succeed())
	}
	It("validates nothing over HTTP: the seal covers the use limit, and the operator leaves the slice alone", func(ctx SpecContext) {
		tok := issue(apiURL, `{"max_uses":2}`)
		parsed, _ := token.Parse(tok)
		editStored(ctx, tok, func(r *token.SliceRecord) { r.UsesLeft = token.Unlimited })
		Eventually(valid).WithArguments(apiURL, tok).Should(Equal(answerFalse))

		Expect([]string{valid(apiURL, tok), redeem(apiURL, tok), redeem(apiURL, tok)}).To(HaveEach(answerFalse))
		code, _, _ := call(apiURL, http.MethodGet, "/app/token/"+parsed.ID, "")
		Expect(code).To(Equal(http.StatusNotFound), "nor is it looked up")
		_, rec, err := storedOf(ctx, tok)
		Expect(err).NotTo(HaveOccurred())
		Expect(rec.Limited()).To(BeFalse(), "the operator writes nothing onto a record it did not write")
	})

	It("is replaced for a TokenRequest with spec.maxUses, by a token with the uses the status recorded, never more", func(ctx SpecContext) {
		tr := &tokensv1alpha1.TokenRequest{ObjectMeta: metav1.ObjectMeta{Name: "limited"},
			Spec: tokensv1alpha1.TokenRequestSpec{MaxUses: new(int64(3))}}
		tok := createTokenRequest(ctx, tr)
		Eventually(valid).WithArguments(apiURL, tok).Should(Equal(answerTrue))
		Expect(redeem(apiURL, tok)).To(Equal(answerTrue))
		Eventually(func(g Gomega) *int64 {
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(tr), tr)).To(Succeed())
			return tr.Status.UsesLeft
		}).Should(HaveValue(BeEquivalentTo(2)), "the status records the count")
		counts := watchCounts(ctx, tr.Namespace)

		removeUsesLeft(ctx, tr.Namespace, "limited")
		Eventually(valid).WithArguments(apiURL, tok).Should(Equal(answerFalse))
		Expect(redeem(apiURL, tok)).To(Equal(answerFalse))
		var replaced string
		Eventually(func(g Gomega) string {
			s, err := secretOf(ctx, tr.Namespace, "limited")
			g.Expect(err).NotTo(HaveOccurred())
			replaced = string(s.Data[token.DataToken])
			return replaced
		}).ShouldNot(Equal(tok), "the controller replaces the token of its own Secret")
		Eventually(valid).WithArguments(apiURL, replaced).Should(Equal(answerTrue))
		Expect(redeem(apiURL, replaced)).To(Equal(answerTrue))
		Expect(redeem(apiURL, replaced)).To(Equal(answerTrue))
		Expect(redeem(apiURL, replaced)).To(Equal(answerFalse), "2 uses, as the status recorded, not spec.maxUses' 3")
		Eventually(readyReason(ctx, tr)).Should(Equal(tokensv1alpha1.ReasonSpent))
		Expect(counts()).To(HaveEach(MatchRegexp(`^[0-2]$`)), "never a count above the recorded one, never negative")
	})
})

// readyReason reads the reason of a TokenRequest's Ready condition from the API server.
func readyReason(ctx context.Context, tr *tokensv1alpha1.TokenRequest) func(Gomega) string {
	return func(g Gomega) string {
		g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(tr), tr)).To(Succeed())
		c := meta.FindStatusCondition(tr.Status.Conditions, tokensv1alpha1.ConditionReady)
		g.Expect(c).NotTo(BeNil())
		return c.Reason
	}
}

// watchCounts records every uses-left value a Secret of ns holds until the spec ends.
func watchCounts(ctx context.Context, ns string) func() []string {
	GinkgoHelper()
	c, err := client.NewWithWatch(cfg, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())
	w, err := c.Watch(ctx, &corev1.SecretList{}, client.InNamespace(ns))
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(w.Stop)
	var mu sync.Mutex
	var counts []string
	go func() {
		for ev := range w.ResultChan() {
			if s, ok := ev.Object.(*corev1.Secret); ok {
				if v, ok := s.Annotations[token.AnnotationUsesLeft]; ok {
					mu.Lock()
					counts = append(counts, v)
					mu.Unlock()
				}
			}
		}
	}()
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), counts...)
	}
}

var _ = Describe("Rotated TokenRequest tokens over HTTP", func() {
	It("validates both tokens during the overlap and only the new one after it", func(ctx SpecContext) {
		// Renewed 4s after issue; the old token validates 2s more.
		tr := &tokensv1alpha1.TokenRequest{ObjectMeta: metav1.ObjectMeta{Name: "rotating"},
			Spec: tokensv1alpha1.TokenRequestSpec{
				TTL:      &metav1.Duration{Duration: 6 * time.Second},
				Rotation: &tokensv1alpha1.Rotation{RenewBefore: &metav1.Duration{Duration: 2 * time.Second}},
			}}
		first := createTokenRequest(ctx, tr)
		ns := tr.Namespace
		Eventually(valid).WithArguments(apiURL, first).Should(Equal(answerTrue))

		By("waiting for the rotation")
		var second *corev1.Secret
		Eventually(func(g Gomega) {
			var err error
			second, err = secretOf(ctx, ns, "rotating")
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(string(second.Data[token.DataPreviousToken])).To(Equal(first))
		}).WithTimeout(10 * time.Second).Should(Succeed())
		newTok := string(second.Data[token.DataToken])
		prevExpiry, err := time.Parse(time.RFC3339, second.Annotations[token.AnnotationPreviousExpiresAt])
		Expect(err).NotTo(HaveOccurred())
		Expect(time.Until(prevExpiry)).To(BeNumerically(">", 500*time.Millisecond), "the overlap is still ahead")

		By("validating both during the overlap")
		Eventually(valid).WithArguments(apiURL, newTok).Should(Equal(answerTrue))
		Expect(valid(apiURL, first)).To(Equal(answerTrue))
		code, body, _ := call(apiURL, http.MethodGet, "/app/token/"+first[:token.IDLength], "")
		Expect(code).To(Equal(http.StatusOK))
		Expect(body).To(ContainSubstring(`"issued_at":null,"expires_at":"` + prevExpiry.Format(time.RFC3339) + `","current":false,"expired":false`))

		By("validating only the new one after the old one's expiry")
		Eventually(valid).WithArguments(apiURL, first).WithTimeout(time.Until(prevExpiry) + time.Second).Should(Equal(answerFalse))
		Expect(time.Now()).To(BeTemporally(">=", prevExpiry), "the old token validated until its expiry")
		Expect(valid(apiURL, newTok)).To(Equal(answerTrue))
	})
})
