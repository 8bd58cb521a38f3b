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
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/tokenops/token-operator/internal/token"
)

// countingTransport counts the TokenReviews sent to the API server.
type countingTransport struct {
	next    http.RoundTripper
	reviews atomic.Int64
}

func (t *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/tokenreviews") {
		t.reviews.Add(1)
	}
	return t.next.RoundTrip(r)
}

// countedAuth is Kubernetes auth over the suite's API server that keeps at most accepted and
// rejected TokenReview answers, and the count of the TokenReviews it sends.
func countedAuth(accepted, rejected int) (*KubernetesAuth, *countingTransport) {
	GinkgoHelper()
	hc, err := rest.HTTPClientFor(cfg)
	Expect(err).NotTo(HaveOccurred())
	counter := &countingTransport{next: hc.Transport}
	hc.Transport = counter
	auth, err := newKubernetesAuth(cfg, hc, accepted, rejected)
	Expect(err).NotTo(HaveOccurred())
	return auth, counter
}

// bearerCall sends one request with this bearer token and returns the status, the body and
// the Retry-After header.
func bearerCall(base, method, path, bearer string) (int, string, string) {
	GinkgoHelper()
	req, err := http.NewRequest(method, base+path, nil)
	Expect(err).NotTo(HaveOccurred())
	req.Header.Set("Authorization", "Bearer "+bearer)
	resp, err := httpClient.Do(req)
	Expect(err).NotTo(HaveOccurred())
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	Expect(err).NotTo(HaveOccurred())
	return resp.StatusCode, string(b), resp.Header.Get("Retry-After")
}

// randomBearer is a token no API server ever issued, shaped like a service account's JWT.
func randomBearer() string {
	return "eyJhbGciOiJSUzI1NiJ9." + strings.ToLower(token.Generate().Secret) + ".sig"
}

var _ = Describe("Reads that cost what they return", func() {
	It("limits the listing per client: 429 with Retry-After in the guard's JSON shape", func() {
		stop, base, clock := startAtFakeTime(false, func(s *Server) { s.ListsPerSecond, s.ListBurst = 1, 3 })
		defer stop()
		for i := range 3 {
			code, body, _ := call(base, http.MethodGet, "/app/tokens?limit=1", "")
			Expect(code).To(Equal(http.StatusOK), "page %d within the burst: %s", i, body)
		}
		req, err := http.NewRequest(http.MethodGet, base+"/app/tokens?limit=1", nil)
		Expect(err).NotTo(HaveOccurred())
		resp, err := httpClient.Do(req)
		Expect(err).NotTo(HaveOccurred())
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		Expect(resp.StatusCode).To(Equal(http.StatusTooManyRequests))
		Expect(resp.Header.Get("Retry-After")).To(Equal("1"))
		Expect(resp.Header.Get("Content-Type")).To(Equal("application/json"))
		Expect(string(body)).To(Equal(`{"status_code":429,"detail":"too many listings from this client; retry later"}`))

		clock.Step(time.Second)
		code, _, _ := call(base, http.MethodGet, "/app/tokens?limit=1", "")
		Expect(code).To(Equal(http.StatusOK), "a page again once the bucket refilled")
	})

	It("answers a flood of random bearer tokens 429 after the limit, and stops sending TokenReviews", func() {
		auth, counter := countedAuth(maxAcceptedReviews, maxRejectedReviews)
		stop, base, clock := startAtFakeTime(false, func(s *Server) {
			s.Auth = auth
			s.FailedValidationsPerSecond, s.FailedValidationsBurst = 1, 5
		})
		defer stop()
		for i := range 5 {
			code, body, _ := bearerCall(base, http.MethodPost, "/app/token", randomBearer())
			Expect(code).To(Equal(http.StatusUnauthorized), "attempt %d within the burst: %s", i, body)
		}
		Expect(counter.reviews.Load()).To(BeEquivalentTo(5), "one TokenReview per unknown token")
		for range 50 {
			code, body, retry := bearerCall(base, http.MethodPost, "/app/token", randomBearer())
			Expect(code).To(Equal(http.StatusTooManyRequests))
			Expect(retry).To(Equal("1"))
			Expect(body).To(Equal(`{"status_code":429,"detail":"too many failed authentications from this address; retry later"}`))
		}
		code, _, _ := bearerCall(base, http.MethodGet, "/app/tokens", randomBearer())
		Expect(code).To(Equal(http.StatusTooManyRequests), "on every guarded route")
		Expect(counter.reviews.Load()).To(BeEquivalentTo(5), "no TokenReview while the address is over its limit")

		clock.Step(time.Second)
		code, _, _ = bearerCall(base, http.MethodPost, "/app/token", randomBearer())
		Expect(code).To(Equal(http.StatusUnauthorized), "one more attempt per second")
		Expect(counter.reviews.Load()).To(BeEquivalentTo(6))
	})

	It("never keeps more TokenReview answers than its bound", func(ctx SpecContext) {
		// The API server answers an unknown token with an error, which is never kept: what
		// fills the cache is accepted tokens, and anyone who may create tokens for a service
		// account can mint as many as they like.
		cs, err := kubernetes.NewForConfig(cfg)
		Expect(err).NotTo(HaveOccurred())
		sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: httpNamespace, Name: "review-cache"}}
		Expect(k8sClient.Create(ctx, sa)).To(Succeed())
		const accepted, rejected = 3, 8
		minted := make([]string, 4*accepted)
		for i := range minted {
			tr, err := cs.CoreV1().ServiceAccounts(httpNamespace).CreateToken(ctx, sa.Name, &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
			Expect(err).NotTo(HaveOccurred())
			minted[i] = tr.Status.Token
		}

		auth, counter := countedAuth(accepted, rejected)
		stop, srv := startOperator(false, func(s *Server) {
			s.Auth = auth
			s.FailedValidationsPerSecond = 0 // no guard: every token reaches the cache
		})
		defer stop()
		base := "http://" + srv.Listener.Addr().String()
		for i, tok := range minted {
			code, _, _ := bearerCall(base, http.MethodPost, "/app/token", tok)
			Expect(code).To(Equal(http.StatusForbidden), "authenticated; RBAC grants it nothing")
			Expect(auth.reviews.accepted.Len()).To(BeNumerically("<=", accepted), "after minted token %d", i)
		}
		Expect(counter.reviews.Load()).To(BeEquivalentTo(len(minted)))
		for i := range 20 {
			code, _, _ := bearerCall(base, http.MethodPost, "/app/token", randomBearer())
			Expect(code).To(Equal(http.StatusUnauthorized))
			Expect(auth.reviews.Len()).To(BeNumerically("<=", accepted+rejected), "after unknown token %d", i)
		}
		code, _, _ := bearerCall(base, http.MethodPost, "/app/token", minted[len(minted)-1])
		Expect(code).To(Equal(http.StatusForbidden))
		Expect(counter.reviews.Load()).To(BeEquivalentTo(len(minted)+20), "the latest accepted answer is still kept")
	})
})

// fakeReviewer accepts the token "good", rejects the others, fails on "broken", and counts
// the reviews.
type fakeReviewer struct{ reviews atomic.Int64 }

func (f *fakeReviewer) AuthenticateToken(_ context.Context, tok string) (*authenticator.Response, bool, error) {
	f.reviews.Add(1)
	switch tok {
	case "good":
		return &authenticator.Response{User: &user.DefaultInfo{Name: "good"}}, true, nil
	case "broken":
		return nil, false, errors.New("the API server is away")
	}
	return nil, false, nil
}

func TestReviewCache(t *testing.T) {
	clock := clocktesting.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	next := &fakeReviewer{}
	c := newReviewCache(next, clock, time.Minute, 2, 3)
	auth := func(tok string) (bool, error) {
		_, ok, err := c.AuthenticateToken(t.Context(), tok)
		return ok, err
	}
	tests := []struct {
		name    string
		tok     string
		step    time.Duration
		ok      bool
		err     bool
		reviews int64 // the reviews so far
	}{
		{"an accepted token is reviewed", "good", 0, true, false, 1},
		{"and kept", "good", 0, true, false, 1},
		{"a rejected token is reviewed", "bad-0", 0, false, false, 2},
		{"and kept", "bad-0", 0, false, false, 2},
		{"an error is not kept", "broken", 0, false, true, 3},
		{"so the next request asks again", "broken", 0, false, true, 4},
		{"kept until the ttl", "good", 59 * time.Second, true, false, 4},
		{"then reviewed again", "good", time.Second, true, false, 5},
	}
	for _, tt := range tests {
		clock.Step(tt.step)
		ok, err := auth(tt.tok)
		if ok != tt.ok || (err != nil) != tt.err || next.reviews.Load() != tt.reviews {
			t.Errorf("%s (%s): ok %v, err %v, reviews %d; want %v, error %v, %d reviews",
				tt.name, tt.tok, ok, err, next.reviews.Load(), tt.ok, tt.err, tt.reviews)
		}
	}

	for i := range 1000 {
		if _, err := auth(fmt.Sprintf("bad-%d", i)); err != nil {
			t.Fatal(err)
		}
		if c.rejected.Len() > 3 || c.accepted.Len() > 2 {
			t.Fatalf("after %d unknown tokens the cache holds %d rejected, %d accepted; bound 3 and 2",
				i+1, c.rejected.Len(), c.accepted.Len())
		}
	}
	before := next.reviews.Load()
	if ok, _ := auth("good"); !ok || next.reviews.Load() != before {
		t.Errorf("a flood of unknown tokens evicted the accepted one (ok %v, %d more reviews)", ok, next.reviews.Load()-before)
	}
}

// TestReviewCacheKey: the key depends on the token and the audiences, unambiguously, and
// holds no token.
func TestReviewCacheKey(t *testing.T) {
	c := newReviewCache(&fakeReviewer{}, clocktesting.NewFakeClock(time.Now()), time.Minute, 1, 1)
	keys := map[string]string{}
	for _, tc := range []struct {
		tok  string
		auds authenticator.Audiences
	}{
		{"token-ab", nil},
		{"token-a", authenticator.Audiences{"b"}},
		{"token-ab", authenticator.Audiences{""}},
		{"token-ab", authenticator.Audiences{"x"}},
	} {
		k := c.keyOf(tc.auds, tc.tok)
		desc := fmt.Sprintf("%q %q", tc.tok, tc.auds)
		if other, dup := keys[k]; dup {
			t.Errorf("%s and %s share a key", desc, other)
		}
		if strings.Contains(k, tc.tok) {
			t.Errorf("the key of %s holds the token", desc)
		}
		keys[k] = desc
	}
}

func TestLimiterTake(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := newClientLimiter(2, 2)
	for i := range 2 {
		if wait := l.take("a", now); wait != 0 {
			t.Fatalf("take %d within the burst waits %v", i, wait)
		}
	}
	if wait := l.take("a", now); wait != 500*time.Millisecond {
		t.Fatalf("over the burst: wait %v, want 500ms", wait)
	}
	if wait := l.take("a", now); wait != 500*time.Millisecond {
		t.Fatalf("a refused take must cost nothing: wait %v, want 500ms", wait)
	}
	if wait := l.take("a", now.Add(500*time.Millisecond)); wait != 0 {
		t.Fatalf("after the wait: %v", wait)
	}
}
