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
	"net/http"

	"github.com/tokenops/token-operator/internal/audit"
	"github.com/tokenops/token-operator/internal/metrics"
	"github.com/tokenops/token-operator/internal/token"
)

// The redeem route.
const (
	routeRedeem     = "/app/redeem/{token}"
	routeRedeemBody = "/app/redeem"
)

// redeem answers POST /app/redeem/{token} as validate answers: true spends one use of a
// limited-use token (a token without a limit spends nothing), false for a token that is
// unknown, expired or has no use left. A use is spent exactly once, whatever the number of
// replicas and callers: see spend.
func (s *Server) redeem(w http.ResponseWriter, r *http.Request, p presentation) {
	if s.overLimit(w, r) || s.cannotKnow(w, metrics.Redemptions) {
		return
	}
	presented := p.Token
	spent, err := s.spend(r.Context(), p)
	if spent.rec != nil && (err != nil || spent.result == string(token.VerdictValid)) {
		e := s.auditOf(audit.OpRedeem, audit.Success, spent.rec)
		e.UsesLeft = spent.usesLeft
		if err != nil {
			e.Outcome, e.Reason = audit.Failure, storeFailure(err)
		}
		s.audit(w, r, e)
	}
	if err != nil {
		s.Log.Error(err, "Failed to redeem a token")
		writeError(w, http.StatusServiceUnavailable, "the token could not be redeemed: "+storeFailure(err))
		return
	}
	s.answerResult(w, r, metrics.Redemptions, audit.OpRedeem, spent.result, presented)
}

// redemption is what spend did: the result, the Record of the token it checked (nil for
// none) and, when it spent a use, how many are left.
type redemption struct {
	result   string
	rec      *token.Record
	usesLeft *int64
}

// spend checks presented against the token index and, for a limited-use token, has the store
// spend one use on the live Secret (Store.Spend: exactly once, whatever the number of replicas
// and callers).
func (s *Server) spend(ctx context.Context, p presentation) (redemption, error) {
	presented := p.Token
	result, cached := s.check(p) // a wrong purpose spends nothing
	if result != string(token.VerdictValid) || !cached.Limited() {
		return redemption{result: result, rec: cached}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.WriteTimeout)
	defer cancel()
	spent, err := s.Store.Spend(ctx, cached, presented)
	if err != nil {
		return redemption{result: result, rec: cached}, err // answered 503; audited as a failed redemption
	}
	return redemption{result: string(spent.Verdict), rec: cached, usesLeft: spent.UsesLeft}, nil
}
