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
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/tokenops/token-operator/internal/index"
	"github.com/tokenops/token-operator/internal/token"
)

// The listing route and its page sizes.
const (
	routeList        = "/app/tokens"
	defaultListLimit = 500
	maxListLimit     = 5000
)

// listedToken is one token Secret in GET /app/tokens: its current token's metadata, never
// the token.
type listedToken struct {
	// TokenID is null for a Secret that holds no usable token (edited by hand).
	TokenID   *string `json:"token_id"`
	Source    string  `json:"source"`
	Namespace string  `json:"namespace"`
	// TokenRequest names the TokenRequest that controls the Secret; null for a token issued
	// over HTTP.
	TokenRequest *string `json:"token_request"`
	IssuedAt     string  `json:"issued_at"`
	ExpiresAt    string  `json:"expires_at"`
	Expired      bool    `json:"expired"`
	UsesLeft     *int64  `json:"uses_left"`
	// PreviousTokenID is the token a rotation replaced, during its overlap.
	PreviousTokenID *string `json:"previous_token_id,omitempty"`
	tokenAbout
}

// tokenAbout is whom and what a token is for, and who issued it, in the listing and a
// lookup: the subject goes only to a caller allowed to read the token's metadata.
type tokenAbout struct {
	Issuer  string `json:"issuer"`
	Subject string `json:"subject,omitempty"`
	Purpose string `json:"purpose,omitempty"`
	// Metadata is the token's string map, as the Secret holds it (JSON).
	Metadata json.RawMessage `json:"metadata,omitempty"`
}

func aboutOf(rec *token.Record) tokenAbout {
	a := tokenAbout{Issuer: rec.Issuer(), Subject: rec.Subject(), Purpose: rec.Purpose()}
	if m := rec.Metadata(); m != "" {
		a.Metadata = json.RawMessage(m)
	}
	return a
}

type listAnswer struct {
	StatusCode int           `json:"status_code"`
	Tokens     []listedToken `json:"tokens"`
	// Continue asks for the next page (?continue=); empty on the last page.
	Continue string `json:"continue"`
}

// list answers GET /app/tokens: the metadata of every token Secret in the token index, by
// namespace and name, ?limit= at a time (default 500, at most 5000) with a continue token for
// the next page, as the Kubernetes API pages a list. A page costs O(limit + log N) (see
// index.Page); each client may ask for ListsPerSecond of them.
//
// With ?subject= (and optionally ?purpose=) it lists that subject's tokens of the caller's
// own issuer, or of ?issuer= for an admin, in O(the subject's tokens) (index.BySubject).
// Without it, it lists every issuer's tokens, which needs verbAdmin under --http-auth.
func (s *Server) list(w http.ResponseWriter, r *http.Request) {
	if s.listThrottled(w, r) {
		return
	}
	q := r.URL.Query()
	limit := defaultListLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxListLimit {
			writeError(w, http.StatusBadRequest, "limit: want a whole number from 1 to "+strconv.Itoa(maxListLimit))
			return
		}
		limit = n
	}
	after, ok := decodeContinue(q.Get("continue"))
	if !ok {
		writeError(w, http.StatusBadRequest, "continue: not a continue token from this API")
		return
	}
	var recs []*token.Record
	var more bool
	if q.Has("subject") {
		req, ok := s.parseSubjectRequest(w, r)
		if !ok {
			return
		}
		recs, more = s.subjectPage(req, after, limit)
	} else {
		if admin, err := s.isAdmin(r); err != nil || !admin {
			s.refuseAcrossIssuers(w, r, err)
			return
		}
		recs, more = s.Tokens.Page(after, limit)
	}
	now := s.Clock.Now()
	answer := listAnswer{StatusCode: http.StatusOK, Tokens: make([]listedToken, 0, len(recs))}
	for _, rec := range recs {
		t := listedToken{
			Source:    string(rec.Source),
			Namespace: rec.Namespace,
			IssuedAt:  formatUnix(rec.IssuedAt),
			ExpiresAt: formatUnix(rec.Current.ExpiresAt),
			Expired:   rec.Expired(now),
		}
		if rec.HasToken {
			t.TokenID = new(rec.Current.ID.String())
		}
		if rec.Controller != nil {
			t.TokenRequest = new(rec.Controller.Name)
		}
		if rec.Limited() {
			t.UsesLeft = new(rec.UsesLeft)
		}
		if rec.HasPrevious() {
			t.PreviousTokenID = new(rec.Previous().ID.String())
		}
		t.tokenAbout = aboutOf(rec)
		answer.Tokens = append(answer.Tokens, t)
	}
	if more {
		answer.Continue = encodeContinue(index.PositionOf(recs[len(recs)-1]))
	}
	body, _ := json.Marshal(answer) // strings, bools and integers always marshal
	writeBody(w, http.StatusOK, body)
}

// listThrottled answers 429 to a client past its listing rate (ListsPerSecond), which
// listings and revocations by subject share.
func (s *Server) listThrottled(w http.ResponseWriter, r *http.Request) bool {
	if s.lists == nil {
		return false
	}
	if wait := s.lists.take(s.clientKey(r), s.Clock.Now()); wait > 0 {
		writeTooManyRequests(w, wait, "too many listings from this client; retry later")
		return true
	}
	return false
}

// refuseAcrossIssuers answers a listing of every issuer's tokens by a caller that is no
// admin (403), or whose authorization failed (503).
func (s *Server) refuseAcrossIssuers(w http.ResponseWriter, r *http.Request, err error) {
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "the Kubernetes API server could not authorize the request")
		return
	}
	writeError(w, http.StatusForbidden, fmt.Sprintf("%s may list its own tokens by ?subject= only: every issuer's needs the verb %q on %s",
		issuerOf(r), verbAdmin, routeList))
}

// subjectPage is one page of a listing by subject: the first limit Records after the key
// after, in order of namespace and name, and whether more follow. One issuer's Records come
// in that order; across issuers (?issuer=*) they are gathered and sorted first.
func (s *Server) subjectPage(req subjectRequest, after index.Position, limit int) ([]*token.Record, bool) {
	var out []*token.Record
	more := false
	if req.scope.all {
		var every []*token.Record
		s.records(req, func(rec *token.Record) bool {
			every = append(every, rec)
			return true
		})
		slices.SortFunc(every, func(a, b *token.Record) int { return index.PositionOf(a).Compare(index.PositionOf(b)) })
		for _, rec := range every {
			if afterKey(rec, after) {
				if len(out) == limit {
					return out, true
				}
				out = append(out, rec)
			}
		}
		return out, false
	}
	s.records(req, func(rec *token.Record) bool {
		if !afterKey(rec, after) {
			return true
		}
		if len(out) == limit {
			more = true
			return false
		}
		out = append(out, rec)
		return true
	})
	return out, more
}

// A continue token is the position of the last token of the page before (index.Position),
// base64url of "<namespace>/<name>" or "<namespace>/<name>/<token id>" for a token of a slice:
// namespaces and names never hold a "/".
func encodeContinue(p index.Position) string {
	v := p.Namespace + "/" + p.Name
	if p.ID != "" {
		v += "/" + p.ID
	}
	return base64.RawURLEncoding.EncodeToString([]byte(v))
}

func decodeContinue(v string) (index.Position, bool) {
	if v == "" {
		return index.Position{}, true
	}
	b, err := base64.RawURLEncoding.DecodeString(v)
	if err != nil {
		return index.Position{}, false
	}
	parts := strings.Split(string(b), "/")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return index.Position{}, false
	}
	p := index.Position{Namespace: parts[0], Name: parts[1]}
	if len(parts) == 3 {
		if !token.ValidID(parts[2]) {
			return index.Position{}, false
		}
		p.ID = parts[2]
	}
	return p, true
}
