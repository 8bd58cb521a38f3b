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
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/tokenops/token-operator/internal/audit"
	"github.com/tokenops/token-operator/internal/metrics"
	"github.com/tokenops/token-operator/internal/otp"
	"github.com/tokenops/token-operator/internal/store"
)

// The routes of one-time codes.
const (
	routeCode       = "/app/code"
	routeCodeVerify = "/app/code/verify"
)

// The defaults of the codes' issuing limit, per issuer, subject and purpose, as the binary's
// flags set them.
const (
	DefaultCodeIssueLimit  = 5
	DefaultCodeIssueWindow = 15 * time.Minute
)

// Why a code issue was refused, as tokenoperator_http_issues_refused_total counts it.
const refusedCodeLimit = "code_limit"

// codeBody is the body of POST /app/code.
type codeBody struct {
	Subject     *string `json:"subject"`
	Purpose     *string `json:"purpose"`
	TTL         *string `json:"ttl"`
	Digits      *int    `json:"digits"`
	MaxAttempts *int    `json:"max_attempts"`
}

// CodeIssue is what POST /app/code asks for.
type CodeIssue struct {
	Subject, Purpose    string
	TTL                 time.Duration
	Digits, MaxAttempts int
}

// ParseCodeRequest reads the body of POST /app/code: a subject (required), an optional
// purpose, ttl (default otp.DefaultTTL, at most otp.MaxTTL), digits and max_attempts
// within code's bounds; anything else is a requestError naming the field.
func ParseCodeRequest(body io.Reader) (CodeIssue, error) {
	var b codeBody
	empty, err := readJSON(body, &b, `{"subject":"user-42","purpose":"login"}`)
	switch {
	case err != nil:
		return CodeIssue{}, err
	case empty || b.Subject == nil:
		return CodeIssue{}, badRequest(`subject: required, as {"subject":"user-42","purpose":"login"}`)
	}
	req := CodeIssue{Subject: *b.Subject, TTL: otp.DefaultTTL, Digits: otp.DefaultDigits, MaxAttempts: otp.DefaultMaxAttempts}
	if err := checkText("subject", req.Subject); err != nil {
		return CodeIssue{}, err
	}
	if b.Purpose != nil {
		if err := checkPurpose(*b.Purpose); err != nil {
			return CodeIssue{}, err
		}
		req.Purpose = *b.Purpose
	}
	if b.TTL != nil {
		if req.TTL, err = parseTTL(*b.TTL, otp.MaxTTL); err != nil {
			return CodeIssue{}, err
		}
	}
	if b.Digits != nil {
		if *b.Digits < otp.MinDigits || *b.Digits > otp.MaxDigits {
			return CodeIssue{}, badRequest("digits: must be from %d to %d", otp.MinDigits, otp.MaxDigits)
		}
		req.Digits = *b.Digits
	}
	if b.MaxAttempts != nil {
		if *b.MaxAttempts < otp.MinAttempts || *b.MaxAttempts > otp.MaxAttemptsLimit {
			return CodeIssue{}, badRequest("max_attempts: must be from %d to %d", otp.MinAttempts, otp.MaxAttemptsLimit)
		}
		req.MaxAttempts = *b.MaxAttempts
	}
	return req, nil
}

// codeVerifyBody is the body of POST /app/code/verify.
type codeVerifyBody struct {
	Subject *string `json:"subject"`
	Purpose *string `json:"purpose"`
	Code    *string `json:"code"`
}

// CodeVerification is what POST /app/code/verify asks.
type CodeVerification struct {
	Subject, Purpose, Code string
}

// ParseCodeVerifyBody reads the body of POST /app/code/verify: subject and purpose as
// POST /app/code takes them, and a code of otp.MinDigits to otp.MaxDigits ASCII digits.
// A code of another shape is a requestError (400) and spends no attempt: only a code that
// could be right is a guess.
func ParseCodeVerifyBody(body io.Reader) (CodeVerification, error) {
	var b codeVerifyBody
	empty, err := readJSON(body, &b, `{"subject":"user-42","purpose":"login","code":"123456"}`)
	switch {
	case err != nil:
		return CodeVerification{}, err
	case empty || b.Subject == nil:
		return CodeVerification{}, badRequest(`subject: required, as {"subject":"user-42","purpose":"login","code":"123456"}`)
	case b.Code == nil:
		return CodeVerification{}, badRequest(`code: required, as {"subject":"user-42","purpose":"login","code":"123456"}`)
	}
	v := CodeVerification{Subject: *b.Subject, Code: *b.Code}
	if err := checkText("subject", v.Subject); err != nil {
		return CodeVerification{}, err
	}
	if b.Purpose != nil && *b.Purpose != "" { // "" asks for a code without a purpose, as validation takes it
		if err := checkPurpose(*b.Purpose); err != nil {
			return CodeVerification{}, err
		}
		v.Purpose = *b.Purpose
	}
	if n := len(v.Code); n < otp.MinDigits || n > otp.MaxDigits || strings.Trim(v.Code, "0123456789") != "" {
		return CodeVerification{}, badRequest("code: want %d to %d digits", otp.MinDigits, otp.MaxDigits)
	}
	return v, nil
}

// issueCode answers POST /app/code: a new one-time code for the subject and purpose, which
// replaces any live one of the caller's, written through the store (Store.IssueCode) and
// answered as {"status_code":200,"code":"<digits>"}. Issues count against the client's issuing
// rate as tokens do, and against the subject and purpose's own limit (CodeLimit): 429 with
// Retry-After past either.
func (s *Server) issueCode(w http.ResponseWriter, r *http.Request) {
	req, err := ParseCodeRequest(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		writeRequestError(w, err)
		return
	}
	if s.issueThrottled(w, r) {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.WriteTimeout)
	defer cancel()
	f := store.CodeFor{Issuer: issuerOf(r), Subject: req.Subject, Purpose: req.Purpose}
	c, wait, err := s.Store.IssueCode(ctx, s.Namespace, store.CodeRequest{CodeFor: f, TTL: req.TTL, Digits: req.Digits,
		MaxAttempts: req.MaxAttempts, Limit: s.CodeLimit})
	e := s.codeAudit(audit.OpCodeIssue, f)
	switch {
	case err != nil:
		s.Log.Error(err, "Failed to store a one-time code")
		e.Outcome, e.Reason = audit.Failure, storeFailure(err)
		s.audit(w, r, e)
		writeError(w, http.StatusServiceUnavailable, "the code could not be stored: "+storeFailure(err))
	case wait > 0:
		metrics.IssuesRefused.WithLabelValues(refusedCodeLimit).Inc()
		e.Outcome, e.Reason = audit.Failure, "issue limit"
		s.audit(w, r, e)
		writeTooManyRequests(w, wait, fmt.Sprintf("this subject and purpose have had their limit of codes (%d in %s); retry later",
			s.CodeLimit.Count, s.CodeLimit.Window))
	default:
		metrics.CodesIssued.Inc()
		e.Outcome = audit.Success
		s.audit(w, r, e)
		writeBody(w, http.StatusOK, fmt.Appendf(nil, `{"status_code":200,"code":%s}`, quote(c)))
	}
}

// verifyCode answers POST /app/code/verify: true once for the live code of the subject and
// purpose (the caller's own), false otherwise, byte for byte as validation answers. A wrong
// code spends one of its attempts (Store.VerifyCode: exactly once across replicas) and does
// not count toward the client's failed-validation guard: the code's own attempts bound the
// guesses, and the application verifying codes is one client whose users' typos must not lock
// it out. A verification that finds no live code (none issued, expired, spent, out of
// attempts) counts toward the guard as a failed validation does.
func (s *Server) verifyCode(w http.ResponseWriter, r *http.Request) {
	req, err := ParseCodeVerifyBody(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		writeRequestError(w, err)
		return
	}
	if s.overLimit(w, r) {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.WriteTimeout)
	defer cancel()
	f := store.CodeFor{Issuer: issuerOf(r), Subject: req.Subject, Purpose: req.Purpose}
	verdict, left, err := s.Store.VerifyCode(ctx, s.Namespace, f, req.Code)
	e := s.codeAudit(audit.OpCodeVerify, f)
	if err != nil {
		s.Log.Error(err, "Failed to verify a one-time code")
		e.Outcome, e.Reason = audit.Failure, storeFailure(err)
		s.audit(w, r, e)
		writeError(w, http.StatusServiceUnavailable, "the code could not be verified: "+storeFailure(err))
		return
	}
	metrics.CodeVerifications.WithLabelValues(string(verdict)).Inc()
	switch verdict {
	case otp.Valid:
		e.Outcome = audit.Success
		s.audit(w, r, e)
		writeBody(w, http.StatusOK, answerValid)
		return
	case otp.Wrong: // an attempt spent: a change of state, always audited
		e.Outcome, e.Reason, e.AttemptsLeft = audit.Failure, "wrong code", new(int64(left))
		s.audit(w, r, e)
	default:
		s.chargeFailure(r)
		if s.AuditFailedValidations {
			e.Outcome, e.Reason = audit.Failure, "no live code"
			s.audit(w, r, e)
		}
	}
	writeBody(w, http.StatusOK, answerInvalid)
}

// codeAudit is the audit line of an operation on the code of f: its Secret's name and purpose,
// its subject as an HMAC.
func (s *Server) codeAudit(op string, f store.CodeFor) audit.Event {
	e := audit.Event{Operation: op, Namespace: s.Namespace, Subject: s.Store.Tokens.Trust.AuditSubject(f.Subject), Purpose: f.Purpose}
	if name, err := s.Store.CodeName(f); err == nil {
		e.Name = name
	}
	return e
}
