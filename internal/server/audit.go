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
	"encoding/binary"
	"encoding/hex"
	"math/rand/v2"
	"net/http"
	"strings"

	"github.com/tokenops/token-operator/internal/audit"
	"github.com/tokenops/token-operator/internal/token"
)

// requestIDHeader carries a request's id, in the request and back in its answer.
const requestIDHeader = "X-Request-Id"

// setRequestID gives a request an id: the client's X-Request-Id when it is a plain one (at
// most 64 letters, digits, '-', '_' or '.'), else a new random one. The answer carries it back
// in X-Request-Id, which is where the audit log reads it (requestID); the access log names it.
func setRequestID(w http.ResponseWriter, r *http.Request) string {
	id := r.Header.Get(requestIDHeader)
	if !plainID(id) {
		var b [8]byte
		binary.BigEndian.PutUint64(b[:], rand.Uint64()) //nolint:gosec // a request id, not a secret
		id = hex.EncodeToString(b[:])
	}
	w.Header()[requestIDHeader] = []string{id}
	return id
}

// requestID is the id setRequestID gave the request answered through w.
func requestID(w http.ResponseWriter) string {
	if v := w.Header()[requestIDHeader]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func plainID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	return strings.IndexFunc(id, func(c rune) bool {
		plain := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.'
		return !plain
	}) < 0
}

// audit writes one audit line for a request answered through w, adding who asked (the user
// Auth admitted, else system:anonymous), from where, with which agent, and the request's id.
func (s *Server) audit(w http.ResponseWriter, r *http.Request, e audit.Event) {
	if s.Audit == nil {
		return
	}
	e.User = "system:anonymous"
	if u := callerOf(r.Context()); u != nil {
		e.User, e.Groups = u.GetName(), u.GetGroups()
	}
	e.RequestID = requestID(w)
	if a := ClientAddress(r, s.TrustedProxies); a.IsValid() {
		e.ClientAddress = a.String()
	}
	e.UserAgent = r.UserAgent()
	if err := s.Audit.Write(e); err != nil {
		s.Log.Error(err, "Failed to write an audit line", "operation", e.Operation, "tokenID", e.TokenID)
	}
}

// auditOf is audit.Of with the token's subject as the audit trail records it (an HMAC).
func (s *Server) auditOf(op, outcome string, rec *token.Record) audit.Event {
	e := audit.Of(op, outcome, rec)
	e.Subject = s.Store.Tokens.Trust.AuditSubject(rec.Subject())
	return e
}

// auditFailure writes a failed validation, redemption or revocation of presented, when
// AuditFailedValidations asks for them: its public id only, and what the check found.
func (s *Server) auditFailure(w http.ResponseWriter, r *http.Request, op, result, presented string) {
	if !s.AuditFailedValidations {
		return
	}
	e := audit.Event{Operation: op, Outcome: audit.Failure, Reason: result}
	if tok, err := token.Parse(presented); err == nil {
		e.TokenID = tok.ID
	}
	s.audit(w, r, e)
}
