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
	"net/http"
	"time"

	"github.com/tokenops/token-operator/internal/metrics"
)

// The issuing limits' defaults, as the binary's flags set them. Every replica holds every
// token, so what one client can issue is what every replica must hold: the cap on live HTTP
// tokens keeps them within the shipped memory limit (README "Issuing limits": 1 000 000 live
// tokens in token slices, measured by make bench against the 1Gi limit), the per-client rate keeps one client from
// taking all of it at once, and the maximum ttl bounds how long a token issued over HTTP
// holds its place.
const (
	// DefaultHTTPMaxTTL is the longest ttl POST /app/token accepts by default, shorter than a
	// TokenRequest's DefaultMaxTTL: an HTTP token has no object its owner can delete.
	DefaultHTTPMaxTTL = 24 * time.Hour
	// DefaultIssuesPerSecond and DefaultIssueBurst are the tokens one client may issue.
	DefaultIssuesPerSecond = 10
	DefaultIssueBurst      = 100
	// DefaultMaxLiveTokens is the cap on live tokens issued over HTTP, in every namespace.
	DefaultMaxLiveTokens = 1000000
)

// Why an issue was refused, as tokenoperator_http_issues_refused_total counts it.
const (
	refusedClientLimit = "client_limit"
	refusedLiveTokens  = "live_token_cap"
)

// issueThrottled answers 429 and reports true when the request's client has issued its
// allowance; otherwise it charges the client this issue.
func (s *Server) issueThrottled(w http.ResponseWriter, r *http.Request) bool {
	if s.issues == nil {
		return false
	}
	client, now := s.clientKey(r), s.Clock.Now()
	if wait := s.issues.blocked(client, now); wait > 0 {
		metrics.IssuesRefused.WithLabelValues(refusedClientLimit).Inc()
		writeTooManyRequests(w, wait, fmt.Sprintf("this client has issued its limit of tokens (%v a second, %d at once); "+
			"retry later", s.IssuesPerSecond, s.issues.burst))
		return true
	}
	s.issues.charge(client, now)
	return false
}

// reserveLive holds a place for one more live HTTP token under MaxLiveTokens, answering 507
// and reporting false when there is none. The caller releases the place once the token is
// indexed, or not issued: the index's count and the issues in flight on this replica are
// held against the cap together, so concurrent issues cannot pass it here (other replicas'
// issues in flight can, by as many as they have open).
func (s *Server) reserveLive(w http.ResponseWriter) (release func(), ok bool) {
	if s.MaxLiveTokens <= 0 {
		return func() {}, true
	}
	inFlight := s.issuing.Add(1) - 1
	release = func() { s.issuing.Add(-1) }
	if atCap(s.Tokens.LiveHTTP(), int(inFlight), s.MaxLiveTokens) {
		release()
		metrics.IssuesRefused.WithLabelValues(refusedLiveTokens).Inc()
		writeError(w, http.StatusInsufficientStorage, fmt.Sprintf("the operator holds its limit of %d live tokens issued "+
			"over HTTP (--http-max-live-tokens); retry once some expire or are revoked", s.MaxLiveTokens))
		return nil, false
	}
	return release, true
}

// atCap reports whether one more token would pass limit live tokens: live are indexed and
// inFlight are being issued besides it. A limit of zero or less is no cap.
func atCap(live, inFlight, limit int) bool {
	return limit > 0 && live+inFlight >= limit
}
