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
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/tokenops/token-operator/internal/index"
	"github.com/tokenops/token-operator/internal/store"
	"github.com/tokenops/token-operator/internal/token"
)

// heldDeletes is an API server that deletes every Secret it is asked to, each only once
// release is closed, and records how many deletes were in flight at most.
type heldDeletes struct {
	release              chan struct{}
	inFlight, most, done atomic.Int64
}

func (e *heldDeletes) delete(context.Context, client.WithWatch, client.Object, ...client.DeleteOption) error {
	n := e.inFlight.Add(1)
	for m := e.most.Load(); n > m && !e.most.CompareAndSwap(m, n); m = e.most.Load() {
	}
	<-e.release
	e.inFlight.Add(-1)
	e.done.Add(1)
	return nil
}

// expiredServer is a Server whose index holds n expired HTTP tokens, and whose store deletes
// through expiry.
func expiredServer(n int, expiry *heldDeletes) *Server {
	now := time.Now()
	tokens := index.New(logr.Discard())
	for i := range n {
		issued := token.Issued{Token: token.Generate(), Lifetime: token.NewLifetime(now.Add(-2*time.Hour), time.Hour),
			Source: token.SourceHTTP}
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: token.HTTPSecretName(issued.ID),
			UID: types.UID("uid-" + strconv.Itoa(i))}}
		issued.ApplyTo(s)
		tokens.Put(s)
	}
	c := fake.NewClientBuilder().WithInterceptorFuncs(interceptor.Funcs{Delete: expiry.delete}).Build()
	clk := clocktesting.NewFakeClock(now)
	return &Server{Tokens: tokens, Store: store.New(c, c, tokens, clk), Clock: clk, Log: logr.Discard()}
}

func clearFrom(h http.Handler, addr string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodDelete, routeClear, nil)
	req.RemoteAddr = addr + ":40000"
	h.ServeHTTP(rec, req)
	return rec
}

func TestClearDeletesWithBoundedConcurrency(t *testing.T) {
	g := NewWithT(t)
	expiry := &heldDeletes{release: make(chan struct{})}
	srv := expiredServer(20, expiry)
	srv.ClearWorkers = 4
	answered := make(chan *httptest.ResponseRecorder)
	go func() { answered <- clearFrom(srv.Handler(), "10.0.0.1") }()

	g.Eventually(expiry.inFlight.Load).Should(BeEquivalentTo(4))
	g.Consistently(expiry.inFlight.Load, 100*time.Millisecond).Should(BeEquivalentTo(4))
	g.Expect(answered).NotTo(Receive(), "the answer comes after the deletes")
	close(expiry.release)
	var rec *httptest.ResponseRecorder
	g.Eventually(answered).Should(Receive(&rec))
	g.Expect(rec.Code).To(Equal(http.StatusOK))
	g.Expect(rec.Body.String()).To(Equal(`{"status_code":200,"status":true}`))
	g.Expect(expiry.done.Load()).To(BeEquivalentTo(20))
	g.Expect(expiry.most.Load()).To(BeEquivalentTo(4))
}

func TestClearIsRateLimitedPerClient(t *testing.T) {
	g := NewWithT(t)
	expiry := &heldDeletes{release: make(chan struct{})}
	close(expiry.release)
	srv := expiredServer(1, expiry)
	srv.clears = newClientLimiter(clearsPerSecond, clearBurst)
	h := srv.Handler()
	for range clearBurst {
		g.Expect(clearFrom(h, "10.0.0.1").Code).To(Equal(http.StatusOK))
	}
	rec := clearFrom(h, "10.0.0.1")
	g.Expect(rec.Code).To(Equal(http.StatusTooManyRequests))
	g.Expect(rec.Header().Get("Retry-After")).To(Equal("1"))
	g.Expect(rec.Body.String()).To(ContainSubstring(`"detail":"too many clears from this address; retry later"`))
	g.Expect(clearFrom(h, "10.0.0.2").Code).To(Equal(http.StatusOK), "another client is not limited")
}
