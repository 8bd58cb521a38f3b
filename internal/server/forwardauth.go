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
	"math"
	"net/http"
	"net/url"
	"strings"

	"github.com/tokenops/token-operator/internal/audit"
	"github.com/tokenops/token-operator/internal/metrics"
	"github.com/tokenops/token-operator/internal/token"
)

// The forward-auth route and what it answers beside its status.
const (
	routeAuth = "/app/auth"
	// headerTokenID, headerTokenSubject and headerTokenPurpose describe an accepted token to
	// the proxy, which passes them on to the service behind it.
	headerTokenID      = "X-Token-Id"
	headerTokenSubject = "X-Token-Subject"
	headerTokenPurpose = "X-Token-Purpose"
	// headerSubjectEncoding says that X-Token-Subject is percent-encoded (RFC 3986): only for
	// a subject that is not printable ASCII.
	headerSubjectEncoding = "X-Token-Subject-Encoding"
	// headerTokenReason says why a token was refused, in a word.
	headerTokenReason = "X-Token-Reason"
)

// resultNeedsSpend: a valid limited-use token at a location that does not spend a use
// (?spend=1): refused there, so that a one-time link is not reusable forever.
const resultNeedsSpend = "needs_spend"

// forwardAuth answers GET /app/auth for a reverse proxy's auth subrequest (NGINX auth_request,
// ingress-nginx auth-url, Traefik ForwardAuth, Envoy ext_authz in HTTP mode): 200 for
// "Authorization: Bearer <token>" that validates (?purpose= as validation takes it), with the
// token's id, subject and purpose in headers; 401 for none, a malformed one, or one that does
// not validate; 403 when this replica may not answer now (the client's failed validations, a
// view older than --max-staleness), with Retry-After. Nothing else: a proxy turns any other
// status of an auth subrequest into a 500. X-Token-Reason says why in a word.
//
// The Authorization header is the token checked, not the caller's credential: the route is
// never behind --http-auth and never sends the header to a TokenReview. A limited-use token
// is refused unless the location asks to spend a use (?spend=1), which spends one exactly
// once as a redemption does. It counts as a validation for the guard and the metrics.
func (s *Server) forwardAuth(w http.ResponseWriter, r *http.Request) {
	if s.failures != nil {
		if wait := s.failures.blocked(s.clientKey(r), s.Clock.Now()); wait > 0 {
			metrics.Validations.WithLabelValues(resultLimited).Inc()
			w.Header().Set("Retry-After", fmt.Sprint(int(math.Ceil(wait.Seconds()))))
			refuse(w, http.StatusForbidden, "rate-limited", "too many failed validations from this address; retry later")
			return
		}
	}
	if age, stale := s.stale(); stale {
		metrics.Validations.WithLabelValues(resultStale).Inc()
		w.Header().Set("Retry-After", fmt.Sprint(int(staleRetry.Seconds())))
		refuse(w, http.StatusForbidden, "stale", fmt.Sprintf("this replica has not seen the API server's changes for %s: it cannot tell", age))
		return
	}
	presented, ok := bearer(r.Header.Get("Authorization"))
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="token-operator"`)
		refuse(w, http.StatusUnauthorized, "no-token", "want Authorization: Bearer <token>")
		return
	}
	q := r.URL.Query()
	p := presentation{Token: presented, Purpose: q.Get("purpose")}
	result, rec := s.check(p)
	if result == string(token.VerdictValid) && rec.Limited() {
		if q.Get("spend") != "1" {
			result = resultNeedsSpend
		} else {
			spent, err := s.spend(r.Context(), p)
			if err != nil {
				s.Log.Error(err, "Failed to spend a use for forward auth")
				w.Header().Set("Retry-After", "1")
				refuse(w, http.StatusForbidden, "unavailable", "the use could not be spent: "+storeFailure(err))
				return
			}
			if spent.usesLeft != nil {
				e := s.auditOf(audit.OpRedeem, audit.Success, rec)
				e.UsesLeft = spent.usesLeft
				s.audit(w, r, e)
			}
			result = spent.result
		}
	}
	metrics.Validations.WithLabelValues(result).Inc()
	if result != string(token.VerdictValid) {
		s.chargeFailure(r)
		s.auditFailure(w, r, audit.OpValidate, result, presented)
		w.Header().Set("WWW-Authenticate", `Bearer realm="token-operator", error="invalid_token"`)
		refuse(w, http.StatusUnauthorized, strings.ReplaceAll(result, "_", "-"), "the token does not validate here")
		return
	}
	h := w.Header()
	h.Set(headerTokenID, rec.Current.ID.String())
	if slot := rec.Match(token.DigestOf(presented)); slot == token.SlotPrevious {
		h.Set(headerTokenID, rec.Previous().ID.String())
	}
	if sub := rec.Subject(); sub != "" {
		if v, encoded := headerValue(sub); encoded {
			h.Set(headerTokenSubject, v)
			h.Set(headerSubjectEncoding, "percent")
		} else {
			h.Set(headerTokenSubject, v)
		}
	}
	if purpose := rec.Purpose(); purpose != "" {
		h.Set(headerTokenPurpose, purpose)
	}
	writeBody(w, http.StatusOK, answerValid)
}

// refuse answers code with a reason word and the API's JSON error.
func refuse(w http.ResponseWriter, code int, reason, detail string) {
	w.Header().Set(headerTokenReason, reason)
	writeError(w, code, detail)
}

// bearer reads the token of "Bearer <token>" (the scheme in any case, RFC 7235).
func bearer(h string) (string, bool) {
	scheme, tok, ok := strings.Cut(strings.TrimSpace(h), " ")
	tok = strings.TrimSpace(tok)
	return tok, ok && strings.EqualFold(scheme, "Bearer") && tok != ""
}

// headerValue is v as a header value: itself when every byte is printable ASCII, else
// percent-encoded (RFC 3986), reported by encoded. A subject holds no control characters,
// but may hold any other UTF-8, which HTTP header values do not carry safely.
func headerValue(v string) (string, bool) {
	for i := range len(v) {
		if v[i] < 0x20 || v[i] > 0x7e {
			return url.PathEscape(v), true
		}
	}
	return v, false
}
