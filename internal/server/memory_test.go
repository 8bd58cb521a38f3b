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
	"fmt"
	"io"
	"net/http"
	"runtime"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/tokenops/token-operator/api/v1alpha1"
	"github.com/tokenops/token-operator/internal/indexsync"
	"github.com/tokenops/token-operator/internal/metrics"
	"github.com/tokenops/token-operator/internal/token"
)

var _ = Describe("The operator's memory", func() {
	It("keeps only digests of tokens in its index, and validates against them", func(ctx SpecContext) {
		stop, srv := startOperator(false, nil)
		defer stop()
		base := "http://" + srv.Listener.Addr().String()
		issued := []string{issue(base, ""), issue(apiURL, `{"ttl":"5m"}`)}

		issued = append(issued, createTokenRequest(ctx, &tokensv1alpha1.TokenRequest{ObjectMeta: metav1.ObjectMeta{Name: "mem"}}))
		for _, tok := range issued {
			Eventually(valid).WithArguments(base, tok).Should(Equal(answerTrue))
		}

		for _, tok := range issued {
			parsed, _ := token.Parse(tok)
			id, _ := token.ParseID(parsed.ID)
			rec := srv.Tokens.ByID(id)
			Expect(rec).NotTo(BeNil())
			dump := fmt.Sprintf("%+v %s", *rec, rec.Current.Digest[:])
			Expect(dump).NotTo(ContainSubstring(parsed.Secret))
			want := token.DigestOf(tok)
			if rec.Packing == token.PackedEntry {
				// A token of a slice: the index keeps the digest's first 16 bytes.
				Expect(rec.Current.Digest[:16]).To(Equal(want[:16]))
				continue
			}
			Expect(rec.Current.Digest).To(Equal(want))
		}
		code, _, _ := call(base, http.MethodGet, "/app/valid/"+issued[0], "")
		Expect(code).To(Equal(http.StatusOK))
	})
})

var _ = Describe("A replica starting with many live tokens", func() {
	It("turns ready only once every token is indexed, and never answers false for a live one", func(ctx SpecContext) {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "many-"}}
		Expect(k8sClient.Create(ctx, ns)).To(Succeed())
		// More than two list pages at the shipped page size.
		n := 2*indexsync.DefaultPageSize + 200
		live := createHTTPTokens(ctx, ns.Name, n)

		var (
			mu                  sync.Mutex
			notReadySeen        bool
			indexedAtReady      = -1
			answers, falseCount int
		)
		done := make(chan struct{})
		// repeat runs fn in a loop of its own until done is closed.
		repeat := func(fn func()) {
			go func() {
				for {
					select {
					case <-done:
						return
					default:
						fn()
					}
				}
			}()
		}
		probe := func(srv *Server) {
			repeat(func() {
				synced := srv.Tokens.Synced() // what the token-index readiness check reports
				mu.Lock()
				if !synced {
					notReadySeen = true
				} else if indexedAtReady < 0 {
					indexedAtReady = srv.Tokens.Len()
				}
				mu.Unlock()
			})
			// Validation requests sent before the API serves wait in the listen queue.
			base := "http://" + srv.Listener.Addr().String()
			for _, tok := range []string{live[0], live[n-1], live[n/2]} {
				repeat(func() {
					resp, err := httpClient.Get(base + "/app/valid/" + tok)
					if err != nil {
						return
					}
					body, _ := io.ReadAll(resp.Body)
					_ = resp.Body.Close()
					mu.Lock()
					answers++
					if string(body) != answerTrue {
						falseCount++
					}
					mu.Unlock()
				})
			}
		}
		stop, srv := startOperator(false, probe)
		Eventually(func() int { mu.Lock(); defer mu.Unlock(); return answers }).Should(BeNumerically(">", 100))
		close(done)
		stop()

		mu.Lock()
		defer mu.Unlock()
		Expect(notReadySeen).To(BeTrue(), "the index reported not ready while it listed")
		Expect(indexedAtReady).To(BeNumerically(">=", n), "ready only with every token indexed")
		Expect(falseCount).To(BeZero(), "a live token answered false")
		for _, tok := range live {
			parsed, _ := token.Parse(tok)
			id, _ := token.ParseID(parsed.ID)
			rec, _ := srv.Tokens.Find(id, token.DigestOf(tok))
			Expect(rec).NotTo(BeNil())
		}
	})
})

var _ = Describe("Foreign Secrets of our type and label", func() {
	It("cost the index no memory: 10 000 planted, the heap grows by less than 1 MiB", func(ctx SpecContext) {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "planted-"}}
		Expect(k8sClient.Create(ctx, ns)).To(Succeed())
		heap := func() uint64 {
			runtime.GC()
			runtime.GC() // twice: sync.Pool keeps a victim cache for one GC
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			return m.HeapAlloc
		}
		before := heap()
		const n = 10_000
		var wg sync.WaitGroup
		for w := range 16 {
			wg.Go(func() {
				defer GinkgoRecover()
				for i := w; i < n; i += 16 {
					issued := token.Issued{Token: token.Generate(), Lifetime: token.NewLifetime(time.Now(), time.Hour), Source: token.SourceHTTP}
					Expect(k8sClient.Create(ctx, token.NewHTTPSecret(ns.Name, issued))).To(Succeed())
				}
			})
		}
		wg.Wait()
		DeferCleanup(func(ctx SpecContext) {
			Expect(k8sClient.DeleteAllOf(ctx, &corev1.Secret{}, client.InNamespace(ns.Name))).To(Succeed())
		})
		Eventually(func() float64 { return testutil.ToFloat64(metrics.UntrustedSecrets.WithLabelValues(ns.Name)) }).
			WithTimeout(time.Minute).Should(BeNumerically(">=", n), "the suite's replica saw every one")
		grew := int64(heap()) - int64(before)
		AddReportEntry("heap growth for 10 000 planted Secrets", fmt.Sprintf("%d bytes", grew))
		Expect(grew).To(BeNumerically("<", 1<<20))
	})
})
