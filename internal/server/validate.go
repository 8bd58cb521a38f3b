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
	// resultWrongPurpose: a valid token asked for with another purpose than its own (or with
	// one, or without, when it has none, or one): answered false, as an unknown token is.
	resultWrongPurpose = "wrong_purpose"
)

// validate answers GET /app/valid/{token} from the token index: true only for a well-formed
// token whose Secret exists, is not being deleted, holds exactly this token as its current
// token or as the previous token of a rotation (its SHA-256 digest, compared in constant
// time: the index keeps no token itself), has not expired by the clock and, if it has a use
// limit, has a use left. It spends no use; the expiry controller removes expired Secrets at
// their expiry.
func (s *Server) validate(w http.ResponseWriter, r *http.Request, p presentation) {
	if s.overLimit(w, r) || s.cannotKnow(w, metrics.Validations) {
		return
	}
	result, _ := s.check(p)
	s.answerResult(w, r, metrics.Validations, audit.OpValidate, result, p.Token)
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

// check looks the presented token up in the token index and says which result it gets, with
// the Record that holds it (nil for none): a valid token asked for with the wrong purpose is
// resultWrongPurpose (see purposeMatches).
func (s *Server) check(p presentation) (string, *token.Record) {
	tok, err := token.Parse(p.Token)
	if err != nil {
		return resultMalformed, nil
	}
	id, _ := token.ParseID(tok.ID)
	rec, which := s.Tokens.Find(id, token.DigestOf(p.Token))
	if rec == nil {
		return string(token.VerdictUnknown), nil
	}
	v := rec.Judge(which, s.Clock.Now())
	if v == token.VerdictValid && !purposeMatches(rec.Purpose(), p.Purpose) {
		return resultWrongPurpose, rec
	}
	return string(v), rec
}
