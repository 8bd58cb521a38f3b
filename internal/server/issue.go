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
	"regexp"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/klog/v2"

	"github.com/tokenops/token-operator/internal/audit"
	"github.com/tokenops/token-operator/internal/metrics"
	"github.com/tokenops/token-operator/internal/token"
)

// durationSyntax matches what time.ParseDuration reads, whatever the size.
var durationSyntax = regexp.MustCompile(`^\+?([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h)(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))*$`)

// MaxUses is the largest use count a limited-use token may have.
const MaxUses = 1000000

// issueBody is the optional body of POST /app/token.
type issueBody struct {
	// TTL is a Go duration string, such as "15m".
	TTL *string `json:"ttl"`
	// MaxUses makes a limited-use token: POST /app/redeem spends one use each.
	MaxUses *int64 `json:"max_uses"`
	// Subject, Purpose and Metadata say whom and what the token is for.
	Subject  *string           `json:"subject"`
	Purpose  *string           `json:"purpose"`
	Metadata map[string]string `json:"metadata"`
}

// IssueRequest is what POST /app/token asks for.
type IssueRequest struct {
	// TTL is the token's lifetime.
	TTL time.Duration
	// MaxUses is the token's use count, nil for a token without a use limit.
	MaxUses *int64
	// Subject, Purpose and Metadata say whom and what the token is for (empty: none).
	Subject, Purpose string
	Metadata         map[string]string
}

// ParseIssueRequest reads the body of POST /app/token: the default ttl for an empty body or a
// missing or null ttl, no use limit for a missing or null max_uses, and an error with a
// client status code (400 or 413) for anything else that is not
// {"ttl":"<duration within bounds>","max_uses":<1..MaxUses>}.
func ParseIssueRequest(body io.Reader, defaultTTL, maxTTL time.Duration) (IssueRequest, error) {
	req := IssueRequest{TTL: defaultTTL}
	var b issueBody
	empty, err := readJSON(body, &b, `{"ttl":"15m","max_uses":1}`)
	switch {
	case err != nil:
		return IssueRequest{}, err
	case empty:
		return req, nil
	}
	if b.MaxUses != nil {
		if *b.MaxUses < 1 || *b.MaxUses > MaxUses {
			return IssueRequest{}, badRequest("max_uses: must be from 1 to %d", MaxUses)
		}
		req.MaxUses = b.MaxUses
	}
	if b.Subject != nil {
		if err := checkText("subject", *b.Subject); err != nil {
			return IssueRequest{}, err
		}
		req.Subject = *b.Subject
	}
	if b.Purpose != nil {
		if err := checkPurpose(*b.Purpose); err != nil {
			return IssueRequest{}, err
		}
		req.Purpose = *b.Purpose
	}
	if err := checkMetadata(b.Metadata); err != nil {
		return IssueRequest{}, err
	}
	req.Metadata = b.Metadata
	if b.TTL == nil {
		return req, nil
	}
	if req.TTL, err = parseTTL(*b.TTL, maxTTL); err != nil {
		return IssueRequest{}, err
	}
	return req, nil
}

// parseTTL reads a ttl within 1s and maxTTL.
func parseTTL(s string, maxTTL time.Duration) (time.Duration, error) {
	ttl, err := time.ParseDuration(s)
	switch {
	case err != nil && durationSyntax.MatchString(s):
		// Well-formed but beyond what a time.Duration holds (about 292 years).
		return 0, badRequest("ttl: must be at most %s", maxTTL)
	case err != nil:
		return 0, badRequest("ttl: want a duration such as \"90s\", \"15m\" or \"24h\"")
	case ttl < time.Second:
		return 0, badRequest("ttl: must be at least 1s")
	case ttl > maxTTL:
		return 0, badRequest("ttl: must be at most %s", maxTTL)
	}
	return ttl, nil
}

// issue answers POST /app/token: it writes a new token Secret (the token's digest, never the
// token) in one API write and answers once the API server has stored it and this replica's
// token index holds it, so that the token validates here as soon as the client has it.
//
// A client past its issuing limit is answered 429 (a request refused as malformed costs it
// nothing), and every issue once the live HTTP tokens reach MaxLiveTokens 507 (limits.go).
func (s *Server) issue(w http.ResponseWriter, r *http.Request) {
	req, err := ParseIssueRequest(http.MaxBytesReader(w, r.Body, MaxBodyBytes), s.DefaultTTL, s.MaxTTL)
	if err != nil {
		writeRequestError(w, err)
		return
	}
	if s.issueThrottled(w, r) {
		return
	}
	release, ok := s.reserveLive(w)
	if !ok {
		return
	}
	defer release()
	ctx, cancel := context.WithTimeout(r.Context(), s.WriteTimeout)
	defer cancel()

	issued := token.Issued{Token: token.Generate(), Lifetime: token.NewLifetime(s.Clock.Now(), req.TTL), Source: token.SourceHTTP,
		UsesLeft: req.MaxUses, Subject: req.Subject, Purpose: req.Purpose, Metadata: req.Metadata, Issuer: issuerOf(r)}
	e := audit.Event{Operation: audit.OpIssue, TokenID: issued.ID, Source: string(token.SourceHTTP), Namespace: s.Namespace,
		UsesLeft: req.MaxUses, Subject: s.Store.Tokens.Trust.AuditSubject(req.Subject), Purpose: req.Purpose}
	// The store indexes the token as soon as the API server has stored it, so that it validates
	// here the moment the client has it; the watch's event for it then only confirms it.
	key, err := s.Store.IssueHTTP(ctx, s.Namespace, issued)
	e.Name = key.Name
	if err != nil {
		s.Log.Error(err, "Failed to store an issued token", "secret", klog.KRef(key.Namespace, key.Name), "tokenID", issued.ID)
		e.Outcome, e.Reason = audit.Failure, storeFailure(err)
		s.audit(w, r, e)
		writeError(w, http.StatusServiceUnavailable, "the token could not be stored: "+storeFailure(err))
		return
	}
	e.Outcome = audit.Success
	s.audit(w, r, e)
	metrics.TokensIssued.WithLabelValues(string(token.SourceHTTP)).Inc()
	writeBody(w, http.StatusOK, fmt.Appendf(nil, `{"status_code":200,"token":%s}`, quote(issued.String())))
}

// storeFailure says why the API server did not store a Secret, in words safe for a client.
func storeFailure(err error) string {
	switch {
	case apierrors.IsForbidden(err):
		return "the operator may not create Secrets in its namespace"
	case apierrors.IsNotFound(err):
		return "the namespace does not exist"
	case errors.Is(err, context.DeadlineExceeded), apierrors.IsTimeout(err), apierrors.IsServerTimeout(err):
		return "the Kubernetes API server did not answer in time"
	case apierrors.IsTooManyRequests(err):
		return "the Kubernetes API server is overloaded"
	}
	return "the Kubernetes API server is unavailable"
}
