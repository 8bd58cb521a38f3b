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
	"net/http"
	"sync"
	"time"

	"github.com/go-logr/logr"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/tokenops/token-operator/internal/index"
	"github.com/tokenops/token-operator/internal/provenance"
	"github.com/tokenops/token-operator/internal/store"
	"github.com/tokenops/token-operator/internal/token"
)

var _ = Describe("Token slices on two replicas", func() {
	var otherURL string
	BeforeEach(func() {
		stop, other := startOperator(false, nil)
		DeferCleanup(stop)
		otherURL = "http://" + other.Listener.Addr().String()
	})

	It("revokes and redeems tokens of one slice from both replicas at once and loses no update", func(ctx SpecContext) {
		const n = 40
		toks := make([]string, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				defer GinkgoRecover()
				toks[i] = issue(apiURL, `{"max_uses":3,"ttl":"10m"}`)
			})
		}
		wg.Wait()
		holders := map[string]int{}
		for _, tok := range toks {
			s, _, err := storedOf(ctx, tok)
			Expect(err).NotTo(HaveOccurred())
			holders[s.Name]++
			Eventually(valid).WithArguments(otherURL, tok).Should(Equal(answerTrue))
		}
		Expect(len(holders)).To(BeNumerically("<", n/2), "issued together, most tokens share a slice: %v", holders)

		By("revoking the even tokens and redeeming the odd ones twice, half on each replica, all at once")
		start := make(chan struct{})
		for i, tok := range toks {
			base := []string{apiURL, otherURL}[i%4/2]
			wg.Go(func() {
				defer GinkgoRecover()
				<-start
				if i%2 == 0 {
					code, answer, _ := call(base, http.MethodDelete, "/app/token", tokenJSON(tok))
					Expect([]any{code, answer}).To(Equal([]any{http.StatusOK, answerTrue}))
					return
				}
				Expect(redeem(base, tok)).To(Equal(answerTrue))
				Expect(redeem(base, tok)).To(Equal(answerTrue))
			})
		}
		close(start)
		wg.Wait()

		for i, tok := range toks {
			slice, rec, err := storedOf(ctx, tok)
			if i%2 == 0 {
				Expect(apierrors.IsNotFound(err)).To(BeTrue(), "token %d revoked: %v", i, err)
				for _, base := range []string{apiURL, otherURL} {
					Eventually(valid).WithArguments(base, tok).Should(Equal(answerFalse))
				}
				continue
			}
			Expect(err).NotTo(HaveOccurred())
			Expect(rec.UsesLeft).To(BeEquivalentTo(1), "token %d: two uses spent of three", i)
			Expect(slice.ManagedFields).To(BeEmpty(), "once patched, the API server tracks no field ownership on a slice")
			parsed, _ := token.Parse(tok)
			for _, base := range []string{apiURL, otherURL} {
				Eventually(usesLeft).WithArguments(base, parsed.ID).Should(HaveValue(BeEquivalentTo(1)))
			}
		}
	})

	It("keeps validating, revoking and expiring the per-token Secrets of the earlier layout beside slices", func(ctx SpecContext) {
		stop, base, fake := startAtFakeTime(true, nil)
		defer stop()
		// What an earlier version wrote: a Secret per token, sealed with the same keys.
		legacyIndex := index.New(logr.Discard())
		legacyIndex.Trust = provenance.NewChecker(suiteKeys(ctx), httpNamespace)
		legacy := store.New(k8sClient, k8sClient, legacyIndex, nil)
		earlier := func(ttl time.Duration) string {
			issued := token.Issued{Token: token.Generate(), Lifetime: token.NewLifetime(fake.Now(), ttl), Source: token.SourceHTTP}
			_, err := legacy.IssueHTTP(ctx, httpNamespace, issued)
			Expect(err).NotTo(HaveOccurred())
			return issued.String()
		}
		old, oldRevoked := earlier(time.Hour), earlier(3*time.Hour)
		sliced := issue(base, `{"ttl":"1h"}`)
		for _, tok := range []string{old, oldRevoked, sliced} {
			s, _, err := storedOf(ctx, tok)
			Expect(err).NotTo(HaveOccurred())
			Expect(s.Type).To(Equal(map[bool]corev1.SecretType{true: token.SliceSecretType, false: token.SecretType}[tok == sliced]))
			Eventually(valid).WithArguments(base, tok).Should(Equal(answerTrue))
		}

		By("revoking a per-token Secret over HTTP")
		code, answer, _ := call(base, http.MethodDelete, "/app/token", tokenJSON(oldRevoked))
		Expect([]any{code, answer}).To(Equal([]any{http.StatusOK, answerTrue}))
		_, _, err := storedOf(ctx, oldRevoked)
		Expect(apierrors.IsNotFound(err)).To(BeTrue(), "its Secret is deleted: %v", err)
		Expect(valid(base, oldRevoked)).To(Equal(answerFalse))

		By("expiring both layouts in one clear")
		fake.Step(2 * time.Hour)
		code, answer, _ = call(base, http.MethodDelete, "/app/clear/all/tokens", "")
		Expect([]any{code, answer}).To(Equal([]any{http.StatusOK, answerTrue}))
		for _, tok := range []string{old, sliced} {
			_, _, err := storedOf(ctx, tok)
			Expect(apierrors.IsNotFound(err)).To(BeTrue(), "expired and deleted: %v", err)
			Expect(valid(base, tok)).To(Equal(answerFalse))
		}
	})
})
