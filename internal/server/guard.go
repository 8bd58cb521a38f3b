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
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"
	"k8s.io/utils/lru"

	"github.com/tokenops/token-operator/internal/metrics"
)

// clientLimiter limits, per client address, how often a client may do a kind of work: failed
// validations (unknown, expired or malformed tokens: a brute-force guard, valid tokens cost
// nothing), failed bearer authentications, clears and listings. A client over its limit is answered 429 with Retry-After until its
// bucket refills.
type clientLimiter struct {
	limit rate.Limit
	burst int
	mu    sync.Mutex
	// clients holds one token bucket per client address, the least recently seen evicted
	// first, so the guard's memory is bounded whatever the callers.
	clients *lru.Cache
}

// maxTrackedClients bounds the guard's memory.
const maxTrackedClients = 65536

// newClientLimiter allows perSecond units of work per client, with burst; nil when
// perSecond is zero or less (no guard).
func newClientLimiter(perSecond float64, burst int) *clientLimiter {
	if perSecond <= 0 {
		return nil
	}
	return &clientLimiter{limit: rate.Limit(perSecond), burst: max(burst, 1), clients: lru.New(maxTrackedClients)}
}

func (l *clientLimiter) bucket(client string) *rate.Limiter {
	l.mu.Lock()
	defer l.mu.Unlock()
	if b, ok := l.clients.Get(client); ok {
		return b.(*rate.Limiter)
	}
	b := rate.NewLimiter(l.limit, l.burst)
	l.clients.Add(client, b)
	return b
}

// blocked reports how long the client must wait before its next validation, or zero.
func (l *clientLimiter) blocked(client string, now time.Time) time.Duration {
	b := l.bucket(client)
	if b.TokensAt(now) >= 1 {
		return 0
	}
	r := b.ReserveN(now, 1)
	defer r.CancelAt(now)
	return r.DelayFrom(now)
}

// take charges the client one unit of work if it has one left, else reports how long it must
// wait for one.
func (l *clientLimiter) take(client string, now time.Time) time.Duration {
	r := l.bucket(client).ReserveN(now, 1)
	if wait := r.DelayFrom(now); wait > 0 {
		r.CancelAt(now)
		return wait
	}
	return 0
}

// charge charges the client one unit of work.
func (l *clientLimiter) charge(client string, now time.Time) {
	l.bucket(client).AllowN(now, 1)
}

// writeTooManyRequests answers 429 with Retry-After in whole seconds.
func writeTooManyRequests(w http.ResponseWriter, wait time.Duration, detail string) {
	w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
	writeError(w, http.StatusTooManyRequests, detail)
}

// overLimit answers 429 and reports true when the request's client has used up its failed
// validations; the guard covers every endpoint that tells whether a token exists.
func (s *Server) overLimit(w http.ResponseWriter, r *http.Request) bool {
	if s.failures == nil {
		return false
	}
	if wait := s.failures.blocked(s.clientKey(r), s.Clock.Now()); wait > 0 {
		metrics.Validations.WithLabelValues(resultLimited).Inc()
		writeTooManyRequests(w, wait, "too many failed validations from this address; retry later")
		return true
	}
	return false
}

// chargeFailure counts a failed validation (or revocation) against the request's client.
func (s *Server) chargeFailure(r *http.Request) {
	if s.failures != nil {
		s.failures.charge(s.clientKey(r), s.Clock.Now())
	}
}
