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
	"encoding/json"
	"net/http"
	"time"

	"k8s.io/klog/v2"

	"github.com/tokenops/token-operator/internal/audit"
	"github.com/tokenops/token-operator/internal/token"
)

// The path of one token: DELETE revokes it, GET looks it up by its id.
//
//nolint:gosec // route paths, not credentials
const (
	routeToken = "/app/token/{token}"
)

// revoke deletes the Secret of a token issued over HTTP, answering true when it existed.
// A TokenRequest's token is revoked by deleting the TokenRequest: 409 says so.
func (s *Server) revoke(w http.ResponseWriter, r *http.Request, p presentation) {
	if s.overLimit(w, r) {
		return
	}
	presented := p.Token      // revocation needs the token, whatever it is for
	result, rec := s.check(p) // expired, spent and other-purpose tokens are revoked too
	if rec == nil {
		s.chargeFailure(r)
		s.auditFailure(w, r, audit.OpRevoke, result, presented)
		writeBody(w, http.StatusOK, answerInvalid)
		return
	}
	e := s.auditOf(audit.OpRevoke, audit.Failure, rec)
	if rec.Source != token.SourceHTTP {
		e.Reason = "issued for a TokenRequest"
		s.audit(w, r, e)
		writeError(w, http.StatusConflict, "issued for a TokenRequest: delete the TokenRequest to revoke it")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.WriteTimeout)
	defer cancel()
	deleted, err := s.Store.Delete(ctx, rec)
	switch {
	case err == nil && !deleted:
		// That Secret is gone (or replaced by a newer one): revoked by someone else or expired.
		e.Reason = "gone already"
		s.audit(w, r, e)
		writeBody(w, http.StatusOK, answerInvalid)
	case err != nil:
		e.Reason = storeFailure(err)
		s.audit(w, r, e)
		writeError(w, http.StatusServiceUnavailable, "the token could not be revoked: "+storeFailure(err))
	default:
		s.Log.Info("Revoked token", "secret", klog.KRef(rec.Namespace, rec.Name), "tokenID", rec.Current.ID.String())
		e.Outcome = audit.Success
		s.audit(w, r, e)
		writeBody(w, http.StatusOK, answerValid)
	}
}

// tokenInfo is what GET /app/token/{id} tells about a token: never its secret.
type tokenInfo struct {
	StatusCode int    `json:"status_code"`
	TokenID    string `json:"token_id"`
	Source     string `json:"source"`
	// IssuedAt is null for the previous token of a rotation: only its expiry is kept.
	IssuedAt  *string `json:"issued_at"`
	ExpiresAt string  `json:"expires_at"`
	// Current is false for the previous token of a rotation, valid until expires_at.
	Current bool `json:"current"`
	Expired bool `json:"expired"`
	// UsesLeft is how many redemptions a limited-use token has left; null without a limit.
	UsesLeft *int64 `json:"uses_left"`
	tokenAbout
}

// lookup answers the metadata of a token by its public id, as Vault's lookup by accessor.
func (s *Server) lookup(w http.ResponseWriter, id string) {
	if s.cannotKnow(w, nil) {
		return
	}
	bid, ok := token.ParseID(id)
	if !ok {
		writeError(w, http.StatusBadRequest, "want a token id: the 16 hex digits before the colon, never the whole token")
		return
	}
	rec := s.Tokens.ByID(bid)
	if rec == nil {
		writeError(w, http.StatusNotFound, "no such token")
		return
	}
	now := s.Clock.Now()
	info := tokenInfo{
		StatusCode: http.StatusOK,
		TokenID:    id,
		Source:     string(rec.Source),
		IssuedAt:   new(formatUnix(rec.IssuedAt)),
		ExpiresAt:  formatUnix(rec.Current.ExpiresAt),
		Current:    true,
		Expired:    rec.Expired(now),
	}
	if !rec.HasToken || rec.Current.ID != bid {
		// The previous token of a rotation: its expiry is kept, its issue time is not.
		info.IssuedAt, info.Current = nil, false
		info.ExpiresAt = formatUnix(rec.Previous().ExpiresAt)
		info.Expired = rec.Judge(token.SlotPrevious, now) == token.VerdictExpired
	}
	if rec.Limited() {
		info.UsesLeft = new(rec.UsesLeft)
	}
	info.tokenAbout = aboutOf(rec)
	body, _ := json.Marshal(info) // plain strings, a bool and an integer always marshal
	writeBody(w, http.StatusOK, body)
}

// formatUnix writes Unix seconds as the annotations do (RFC 3339, UTC).
func formatUnix(sec int64) string {
	return time.Unix(sec, 0).UTC().Format(time.RFC3339)
}
