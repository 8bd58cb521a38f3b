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
	"net/http"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/types"
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
func (s *Server) list(w http.ResponseWriter, r *http.Request) {
	if s.lists != nil {
		if wait := s.lists.take(s.clientKey(r), s.Clock.Now()); wait > 0 {
			writeTooManyRequests(w, wait, "too many listings from this client; retry later")
			return
		}
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
	recs, more := s.Tokens.Page(after, limit)
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
		if rec.HasPrevious {
			t.PreviousTokenID = new(rec.Previous.ID.String())
		}
		answer.Tokens = append(answer.Tokens, t)
	}
	if more {
		answer.Continue = encodeContinue(recs[len(recs)-1].Key())
	}
	body, _ := json.Marshal(answer) // strings, bools and integers always marshal
	writeBody(w, http.StatusOK, body)
}

// A continue token is the last key of the page before, base64url: namespaces and names never
// hold a "/".
func encodeContinue(key types.NamespacedName) string {
	return base64.RawURLEncoding.EncodeToString([]byte(key.String()))
}

func decodeContinue(v string) (types.NamespacedName, bool) {
	if v == "" {
		return types.NamespacedName{}, true
	}
	b, err := base64.RawURLEncoding.DecodeString(v)
	if err != nil {
		return types.NamespacedName{}, false
	}
	ns, name, ok := strings.Cut(string(b), "/")
	return types.NamespacedName{Namespace: ns, Name: name}, ok && ns != "" && name != "" && !strings.Contains(name, "/")
}
