//go:build e2e

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

package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tokenops/token-operator/internal/provenance"
	"github.com/tokenops/token-operator/internal/token"
)

// fromLoopback is an HTTP client whose connections come from 127.0.2.n: to the operator a
// client address of its own, with its own failed-validation budget.
func fromLoopback(n int) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 2, byte(n))}, Timeout: 5 * time.Second}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: d.DialContext}}
}

// answerOf GETs url with c and returns the exact answer of a 200.
func answerOf(c *http.Client, url string) (string, error) {
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s: %d %s", url, resp.StatusCode, b)
	}
	return string(b), err
}

var _ = Describe("Revocation by subject", func() {
	It("revokes 1 000 tokens of one subject among 10 000 others with one call, on both replicas", func(ctx SpecContext) {
		const others, ofSubject = 10000, 1000
		subject := "user-" + rand.String(12) // 17 bytes: personal data, never in a log
		batch := rand.String(8)

		By("writing the tokens as the operator would, sealed with its key")
		keySecret := &corev1.Secret{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: "default", Name: provenance.DefaultKeySecretName}, keySecret)).To(Succeed())
		keys, err := provenance.KeyringOf(keySecret)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func(ctx SpecContext) {
			Expect(k8sClient.DeleteAllOf(ctx, &corev1.Secret{}, client.InNamespace("default"),
				client.MatchingLabels{"e2e.tokens.tokenops.io/batch": batch})).To(Succeed())
		})
		tokens := make([]string, others+ofSubject)
		work := make(chan int)
		var wg sync.WaitGroup
		for range 16 {
			wg.Go(func() {
				defer GinkgoRecover()
				for i := range work {
					issued := token.Issued{Token: token.Generate(), Lifetime: token.NewLifetime(time.Now(), time.Hour),
						Source: token.SourceHTTP, Issuer: token.IssuerAnonymous, Subject: fmt.Sprintf("user-other-%05d", i)}
					if i < ofSubject {
						issued.Subject = subject
					}
					s := token.NewHTTPSecret("default", issued)
					s.Labels["e2e.tokens.tokenops.io/batch"] = batch
					keys.Seal(s)
					Expect(k8sClient.Create(ctx, s)).To(Succeed())
					tokens[i] = issued.String()
				}
			})
		}
		for i := range tokens {
			work <- i
		}
		close(work)
		wg.Wait()
		listed := func(r *replica) (int, error) {
			body, err := answerOf(httpClient, r.url()+"/app/tokens?limit=5000&subject="+subject)
			if err != nil {
				return 0, err
			}
			var answer struct{ Tokens []json.RawMessage }
			err = json.Unmarshal([]byte(body), &answer)
			return len(answer.Tokens), err
		}
		for _, r := range replicas {
			Eventually(listed).WithArguments(r).WithTimeout(time.Minute).Should(Equal(ofSubject), r.name+" lists the subject's tokens")
		}

		By("revoking them with one call to one replica")
		answer := call(replicas[0], http.MethodDelete, "/app/tokens?subject="+subject, "", "")
		Expect(answer).To(Equal(fmt.Sprintf(`{"status_code":200,"revoked":%d,"token_requests":0,"more":false}`, ofSubject)))

		By("validating none of them on either replica, from 20 client addresses (50 failures each, within the guard's burst)")
		for _, r := range replicas {
			var failed sync.WaitGroup
			for c := range 20 {
				client := fromLoopback(c + 1)
				failed.Go(func() {
					defer GinkgoRecover()
					for i := c; i < ofSubject; i += 20 {
						Eventually(answerOf).WithArguments(client, r.url()+"/app/valid/"+tokens[i]).WithTimeout(10*time.Second).
							Should(Equal(`{"status_code":200,"status":false}`), r.name)
					}
				})
			}
			failed.Wait()
			Expect(listed(r)).To(BeZero())
		}
		By("still validating the others")
		for _, r := range replicas {
			for i := ofSubject; i < len(tokens); i += 50 {
				Expect(validate(r, tokens[i])).To(Equal(`{"status_code":200,"status":true}`), r.name)
			}
		}

		By("writing one audit line per revoked token, with no plaintext subject")
		revokes := 0
		for line := range strings.Lines(replicas[0].logs()) {
			var e struct{ Audit, Operation, Outcome, Subject string }
			if json.Unmarshal([]byte(line), &e) != nil || e.Audit == "" || e.Operation != "revoke" || e.Outcome != "success" {
				continue
			}
			if e.Subject == keys.AuditMAC(subject) {
				revokes++
			}
		}
		Expect(revokes).To(Equal(ofSubject))
		for _, r := range replicas {
			Expect(r.logs()).NotTo(ContainSubstring(subject))
		}
	})
})
