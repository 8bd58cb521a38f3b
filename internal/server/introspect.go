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
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"net/url"

	"github.com/tokenops/token-operator/internal/audit"
	"github.com/tokenops/token-operator/internal/metrics"
	"github.com/tokenops/token-operator/internal/token"
)

// routeIntrospect is RFC 7662 token introspection.
const routeIntrospect = "/app/introspect"

// accessIntrospect is what --http-auth=kubernetes asks of an introspecting caller: its own
// verb on its own URL (RFC 7662 section 2.1: the endpoint authenticates its callers).
var accessIntrospect = access{path: routeIntrospect}

// introspection is RFC 7662's answer for an active token. An inactive one is exactly
// {"active":false}.
type introspection struct {
	Active    bool   `json:"active"`
	Subject   string `json:"sub,omitempty"`
	Scope     string `json:"scope,omitempty"`
	ExpiresAt int64  `json:"exp"`
	IssuedAt  int64  `json:"iat"`
	ID        string `json:"jti"`
	TokenType string `json:"token_type"`
	// Issuer is who issued the token (token.Record.Issuer).
	Issuer   string          `json:"iss"`
	UsesLeft *int64          `json:"uses_left,omitempty"`
	Ext      json.RawMessage `json:"ext,omitempty"`
}

// inactive is the whole answer for every token that is not active: unknown, expired, spent,
// revoked or of another purpose (no reason is given).
var inactive = []byte(`{"active":false}`)

// ParseIntrospectionRequest reads an RFC 7662 request: form-encoded (token=, scope=) or a JSON
// body ({"token":..., "scope":...}); scope names the purpose the caller requires.
func ParseIntrospectionRequest(r *http.Request) (presentation, error) {
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct == "application/json" {
		var b struct {
			Token *string `json:"token"`
			Scope *string `json:"scope"`
		}
		empty, err := readJSON(r.Body, &b, `{"token":"<id>:<secret>","scope":"<purpose>"}`)
		switch {
		case err != nil:
			return presentation{}, err
		case empty || b.Token == nil:
			return presentation{}, badRequest("token: required")
		}
		p := presentation{Token: *b.Token}
		if b.Scope != nil {
			p.Purpose = *b.Scope
		}
		return p, nil
	}
	if ct != "application/x-www-form-urlencoded" {
		return presentation{}, badRequest("want Content-Type application/x-www-form-urlencoded or application/json")
	}
	body, err := readBody(r.Body)
	if err != nil {
		return presentation{}, err
	}
	form, err := url.ParseQuery(string(body))
	switch {
	case err != nil:
		return presentation{}, badRequest("the form does not parse")
	case len(form["token"]) != 1:
		return presentation{}, badRequest("token: required, once")
	case len(form["scope"]) > 1:
		return presentation{}, badRequest("scope: at most once")
	}
	return presentation{Token: form.Get("token"), Purpose: form.Get("scope")}, nil
}

// introspect answers POST /app/introspect in RFC 7662's shape (not this API's envelope): the
// token's record for an active token, {"active":false} for any other. It never spends a use.
// A malformed request answers 400 in RFC 6749's error shape.
func (s *Server) introspect(w http.ResponseWriter, r *http.Request) {
	if s.overLimit(w, r) || s.cannotKnow(w, metrics.Validations) {
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
	p, err := ParseIntrospectionRequest(r)
	if err != nil {
		code, detail := http.StatusBadRequest, "the request does not parse"
		if re, ok := errors.AsType[*requestError](err); ok {
			code, detail = re.code, re.detail
		}
		b, _ := json.Marshal(map[string]string{"error": "invalid_request", "error_description": detail})
		writeBody(w, code, b)
		return
	}
	result, rec := s.check(p)
	metrics.Validations.WithLabelValues(result).Inc()
	if result != string(token.VerdictValid) {
		s.chargeFailure(r)
		s.auditFailure(w, r, audit.OpValidate, result, p.Token)
		writeBody(w, http.StatusOK, inactive)
		return
	}
	a := introspection{Active: true, Subject: rec.Subject(), Scope: rec.Purpose(), ExpiresAt: rec.Current.ExpiresAt,
		IssuedAt: rec.IssuedAt, ID: rec.Current.ID.String(), TokenType: "bearer", Issuer: rec.Issuer()}
	if rec.Match(token.DigestOf(p.Token)) == token.SlotPrevious { // a rotation's previous token
		a.ExpiresAt, a.ID = min(rec.Previous().ExpiresAt, rec.Current.ExpiresAt), rec.Previous().ID.String()
	}
	if rec.Limited() {
		a.UsesLeft = new(rec.Left())
	}
	if m := rec.Metadata(); m != "" {
		a.Ext = json.RawMessage(m)
	}
	b, _ := json.Marshal(a)
	writeBody(w, http.StatusOK, b)
}
