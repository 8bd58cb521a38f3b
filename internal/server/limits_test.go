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
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tokenops/token-operator/internal/index"
	"github.com/tokenops/token-operator/internal/metrics"
	"github.com/tokenops/token-operator/internal/provenance"
	"github.com/tokenops/token-operator/internal/token"
)

func TestAtCap(t *testing.T) {
	tests := []struct {
		live, inFlight, limit int
		want                  bool
	}{
		{0, 0, 0, false},
		{1 << 30, 100, 0, false}, // no cap
		{0, 0, 1, false},
		{2, 0, 3, false},
		{3, 0, 3, true},
		{2, 1, 3, true}, // the place left is being taken on this replica
		{1, 1, 3, false},
		{4, 0, 3, true}, // past it (issues in flight on other replicas)
	}
	for _, tt := range tests {
		if got := atCap(tt.live, tt.inFlight, tt.limit); got != tt.want {
			t.Errorf("atCap(%d, %d, %d) = %v, want %v", tt.live, tt.inFlight, tt.limit, got, tt.want)
		}
	}
}

// TestIssueLimits drives the issue handler over an index holding one HTTP token: a malformed
// request costs the client nothing, a client past its rate gets 429 with Retry-After while
// another client issues, and the cap counts every live HTTP token, whoever issued it.
func TestIssueLimits(t *testing.T) {
	srv, _, clock := cachedServer()
	srv.Namespace, srv.MaxTTL, srv.DefaultTTL, srv.MaxLiveTokens = "ns", time.Hour, time.Hour, 4
	srv.IssuesPerSecond, srv.IssueBurst = 1, 2
	srv.issues = newClientLimiter(srv.IssuesPerSecond, srv.IssueBurst)
	h := srv.Handler()
	postBody := func(addr, body string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, "/app/token", strings.NewReader(body))
		req.RemoteAddr = addr
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	post := func(addr string) *httptest.ResponseRecorder { return postBody(addr, "") }
	// A refused request costs the client nothing: 400s first, then its whole burst.
	for _, bad := range []string{`{"ttl":"2h"}`, `{"ttl":"15m","max_uses":0}`, `[]`} {
		if rec := postBody("10.0.0.1:1", bad); rec.Code != http.StatusBadRequest {
			t.Fatalf("%s: %d %s", bad, rec.Code, rec.Body)
		}
	}
	for i := range 2 {
		if rec := post("10.0.0.1:1"); rec.Code != http.StatusOK {
			t.Fatalf("issue %d within the burst: %d %s", i, rec.Code, rec.Body)
		}
	}
	rec := post("10.0.0.1:2")
	want := `{"status_code":429,"detail":"this client has issued its limit of tokens (1 a second, 2 at once); retry later"}`
	if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") != "1" || rec.Body.String() != want {
		t.Fatalf("past the burst: %d, Retry-After %q, %s", rec.Code, rec.Header().Get("Retry-After"), rec.Body)
	}
	if rec := post("10.0.0.2:1"); rec.Code != http.StatusOK {
		t.Fatalf("another client: %d %s", rec.Code, rec.Body)
	}
	// 1 stored + 3 issued: the cap of 4 is reached, whoever asks.
	if got := srv.Tokens.LiveHTTP(); got != 4 {
		t.Fatalf("LiveHTTP = %d, want 4", got)
	}
	rec = post("10.0.0.3:1")
	want = `{"status_code":507,"detail":"the operator holds its limit of 4 live tokens issued over HTTP ` +
		`(--http-max-live-tokens); retry once some expire or are revoked"}`
	if rec.Code != http.StatusInsufficientStorage || rec.Body.String() != want {
		t.Fatalf("at the cap: %d %s", rec.Code, rec.Body)
	}
	clock.Step(time.Second)
	srv.MaxLiveTokens = 0
	if rec := post("10.0.0.1:3"); rec.Code != http.StatusOK {
		t.Fatalf("a second later, without a cap: %d %s", rec.Code, rec.Body)
	}
	if srv.issuing.Load() != 0 {
		t.Fatalf("%d issues still counted in flight", srv.issuing.Load())
	}
}

// postFrom issues a token as the client at the X-Forwarded-For address from, through a
// trusted proxy (the spec's own loopback), and returns the answer's code, body and headers.
func postFrom(base, from, body string) (int, string, http.Header) {
	GinkgoHelper()
	req, err := http.NewRequest(http.MethodPost, base+"/app/token", strings.NewReader(body))
	Expect(err).NotTo(HaveOccurred())
	req.Header.Set("X-Forwarded-For", from)
	resp, err := httpClient.Do(req)
	Expect(err).NotTo(HaveOccurred())
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	Expect(err).NotTo(HaveOccurred())
	return resp.StatusCode, string(b), resp.Header
}

// liveHTTPSecrets counts the live HTTP tokens in the cluster, as the index counts them (an
// index read from a list of the Secrets, with the suite's keys: only what provenance admits),
// once none is about to expire (the suite's expiry controller deletes those within seconds).
func liveHTTPSecrets(ctx SpecContext) int {
	GinkgoHelper()
	n := 0
	Eventually(func(g Gomega) {
		list := &corev1.SecretList{}
		g.Expect(k8sClient.List(ctx, list, client.InNamespace(httpNamespace), client.MatchingLabels{token.LabelManagedBy: token.ManagedBy,
			token.LabelSource: string(token.SourceHTTP)})).To(Succeed())
		x := index.New(logr.Discard())
		x.Trust = provenance.NewChecker(suiteKeys(ctx), httpNamespace)
		snap := x.NewSnapshot()
		for i := range list.Items {
			snap.Add(&list.Items[i])
		}
		x.Replace(snap)
		for _, rec := range x.Records() {
			g.Expect(rec.ExpiresAt()).To(BeTemporally(">", time.Now().Add(time.Minute)), "a token about to expire: wait for it")
		}
		n = x.LiveHTTP()
	}).WithTimeout(2 * time.Minute).Should(Succeed())
	return n
}

var _ = Describe("Issuing limits", func() {
	It("answers a client past its issuing limit 429 with Retry-After, and no other client", func() {
		stop, base, clock := startAtFakeTime(false, func(s *Server) {
			s.IssuesPerSecond, s.IssueBurst = 1, 3
			s.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
		})
		defer stop()
		refused := testutil.ToFloat64(metrics.IssuesRefused.WithLabelValues(refusedClientLimit))
		for range 3 {
			code, body, _ := postFrom(base, "192.0.2.1", "")
			Expect(code).To(Equal(http.StatusOK), body)
		}
		code, body, header := postFrom(base, "192.0.2.1", `{"ttl":"1m"}`)
		Expect(code).To(Equal(http.StatusTooManyRequests))
		Expect(header.Get("Retry-After")).To(Equal("1"))
		Expect(body).To(Equal(`{"status_code":429,"detail":"this client has issued its limit of tokens (1 a second, 3 at once); retry later"}`))
		Expect(testutil.ToFloat64(metrics.IssuesRefused.WithLabelValues(refusedClientLimit))).To(Equal(refused + 1))

		code, body, _ = postFrom(base, "192.0.2.2", "")
		Expect(code).To(Equal(http.StatusOK), "another client behind the same proxy: "+body)
		clock.Step(time.Second)
		code, body, _ = postFrom(base, "192.0.2.1", "")
		Expect(code).To(Equal(http.StatusOK), "after Retry-After: "+body)
	})

	It("answers 507 naming the cap once the live HTTP tokens reach it, and issues again after a revocation", func(ctx SpecContext) {
		const room = 3
		limit := liveHTTPSecrets(ctx) + room // the cap counts every live HTTP token the cluster holds
		stop, srv := startOperator(false, func(s *Server) { s.MaxLiveTokens = limit })
		DeferCleanup(stop) // after the revocations below: cleanups run last in, first out
		base := "http://" + srv.Listener.Addr().String()
		refused := testutil.ToFloat64(metrics.IssuesRefused.WithLabelValues(refusedLiveTokens))
		var issued []string
		for range room {
			code, body, _ := call(base, http.MethodPost, "/app/token", "")
			Expect(code).To(Equal(http.StatusOK), body)
			issued = append(issued, strings.TrimSuffix(strings.TrimPrefix(body, `{"status_code":200,"token":"`), `"}`))
		}
		DeferCleanup(func() {
			for _, tok := range issued {
				call(base, http.MethodDelete, "/app/token", `{"token":"`+tok+`"}`)
			}
		})
		Expect(srv.Tokens.LiveHTTP()).To(Equal(limit))
		code, body, _ := call(base, http.MethodPost, "/app/token", `{"ttl":"1m"}`)
		Expect(code).To(Equal(http.StatusInsufficientStorage))
		Expect(body).To(Equal(fmt.Sprintf(`{"status_code":507,"detail":"the operator holds its limit of %d live tokens `+
			`issued over HTTP (--http-max-live-tokens); retry once some expire or are revoked"}`, limit)))
		Expect(testutil.ToFloat64(metrics.IssuesRefused.WithLabelValues(refusedLiveTokens))).To(Equal(refused + 1))
		_, body, _ = call(base, http.MethodGet, "/app/valid/"+issued[0], "")
		Expect(body).To(Equal(string(answerValid)), "the tokens issued before the cap validate")

		code, body, _ = call(base, http.MethodDelete, "/app/token", `{"token":"`+issued[0]+`"}`)
		Expect(code).To(Equal(http.StatusOK), body)
		issued = issued[1:]
		Eventually(func() int { code, _, _ := call(base, http.MethodPost, "/app/token", ""); return code }).
			Should(Equal(http.StatusOK), "a revocation makes room")
	})

	It("refuses an HTTP ttl of 8760h with the default --http-max-ttl, and accepts 24h", func() {
		stop, srv := startOperator(false, func(s *Server) { s.MaxTTL = DefaultHTTPMaxTTL })
		defer stop()
		base := "http://" + srv.Listener.Addr().String()
		code, body, _ := call(base, http.MethodPost, "/app/token", `{"ttl":"8760h"}`)
		Expect(code).To(Equal(http.StatusBadRequest))
		Expect(body).To(Equal(`{"status_code":400,"detail":"ttl: must be at most 24h0m0s"}`))
		code, body, _ = call(base, http.MethodPost, "/app/token", `{"ttl":"24h"}`)
		Expect(code).To(Equal(http.StatusOK), body)
	})
})
