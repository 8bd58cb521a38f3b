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
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tokenops/token-operator/internal/audit"
	"github.com/tokenops/token-operator/internal/metrics"
	"github.com/tokenops/token-operator/internal/token"
)

// Validation results, the values of the validations and redemptions metrics: a
// token.Verdict, or one of these.
const (
	resultMalformed = "malformed"
	resultLimited   = "limited"
)

// validate answers GET /app/valid/{token} from the token index: true only for a well-formed
// token whose Secret exists, is not being deleted, holds exactly this token as its current
// token or as the previous token of a rotation (its SHA-256 digest, compared in constant
// time: the index keeps no token itself), has not expired by the clock and, if it has a use
// limit, has a use left. It spends no use; the expiry controller removes expired Secrets at
// their expiry.
func (s *Server) validate(w http.ResponseWriter, r *http.Request, presented string) {
	if s.overLimit(w, r) || s.cannotKnow(w, metrics.Validations) {
		return
	}
	result, _ := s.check(presented)
	s.answerResult(w, r, metrics.Validations, audit.OpValidate, result, presented)
}

// answerResult counts result and answers true for a valid token; any other result answers
// false and counts against the client's failed-validation limit (and, if asked, is audited
// as a failed op).
func (s *Server) answerResult(w http.ResponseWriter, r *http.Request, counter *prometheus.CounterVec, op, result, presented string) {
	counter.WithLabelValues(result).Inc()
	if result == string(token.VerdictValid) {
		writeBody(w, http.StatusOK, answerValid)
		return
	}
	s.chargeFailure(r)
	s.auditFailure(w, r, op, result, presented)
	writeBody(w, http.StatusOK, answerInvalid)
}

// check looks presented up in the token index and says which result it gets, with the Record
// that holds it (nil for none).
func (s *Server) check(presented string) (string, *token.Record) {
	tok, err := token.Parse(presented)
	if err != nil {
		return resultMalformed, nil
	}
	id, _ := token.ParseID(tok.ID)
	rec, which := s.Tokens.Find(id, token.DigestOf(presented))
	if rec == nil {
		return string(token.VerdictUnknown), nil
	}
	return string(rec.Judge(which, s.Clock.Now())), rec
}
