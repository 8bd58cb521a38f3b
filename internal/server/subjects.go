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
	"net/http"
	"strconv"
	"sync/atomic"

	"golang.org/x/sync/errgroup"
	"k8s.io/klog/v2"

	"github.com/tokenops/token-operator/internal/audit"
	"github.com/tokenops/token-operator/internal/index"
	"github.com/tokenops/token-operator/internal/token"
)

// verbAdmin on routeList lets a caller act on the tokens of every issuer: list them all, and
// list or revoke another issuer's tokens by subject (?issuer=). Without it a caller acts on
// the tokens it issued itself, so that one application can neither enumerate nor revoke
// another's users. api-admin has it; api-subjects does not.
const verbAdmin = "admin"

// allIssuers is ?issuer='s value for every issuer.
const allIssuers = "*"

// revokeWorkers is how many Secrets a revocation by subject deletes at once.
const revokeWorkers = 8

// scope is the issuers a request by subject acts on: nil for every issuer.
type scope struct {
	issuers []string
	all     bool
}

// issuerScope decides whose tokens a request acts on: the caller's own (asked is "" or the
// caller), another issuer's or every issuer's (asked names it, or is allIssuers) only for an
// admin. It answers "" or why the caller may not.
func issuerScope(caller, asked string, admin bool) (scope, string) {
	switch {
	case asked == "" || asked == caller:
		return scope{issuers: []string{caller}}, ""
	case !admin:
		return scope{}, fmt.Sprintf("%s may act on its own tokens only: ?issuer= needs the verb %q on %s", caller, verbAdmin, routeList)
	case asked == allIssuers:
		return scope{all: true}, ""
	}
	return scope{issuers: []string{asked}}, ""
}

// isAdmin reports whether the caller may act across issuers: always without --http-auth
// (anyone may do anything then), else when the API server authorizes verbAdmin on routeList.
func (s *Server) isAdmin(r *http.Request) (bool, error) {
	if s.Auth == nil {
		return true, nil
	}
	u := callerOf(r.Context())
	if u == nil {
		return false, nil
	}
	return s.Auth.allowed(r.Context(), u, routeList, verbAdmin)
}

// subjectRequest is a request by subject: ?subject= (required), ?purpose= (optional: every
// purpose without it) and the issuers it acts on.
type subjectRequest struct {
	subject, purpose string
	scope            scope
}

// parseSubjectRequest reads and authorizes a request by subject, answering the error itself
// when it fails.
func (s *Server) parseSubjectRequest(w http.ResponseWriter, r *http.Request) (subjectRequest, bool) {
	q := r.URL.Query()
	req := subjectRequest{subject: q.Get("subject"), purpose: q.Get("purpose")}
	if err := checkText("subject", req.subject); err != nil {
		writeRequestError(w, err)
		return req, false
	}
	if req.purpose != "" {
		if err := checkPurpose(req.purpose); err != nil {
			writeRequestError(w, err)
			return req, false
		}
	}
	sc, ok := s.scopeOf(w, r, q.Get("issuer"))
	req.scope = sc
	return req, ok
}

// scopeOf decides and authorizes whose tokens a request acts on, answering 403 or 503 itself.
func (s *Server) scopeOf(w http.ResponseWriter, r *http.Request, asked string) (scope, bool) {
	admin := false
	if asked != "" && asked != issuerOf(r) {
		var err error
		if admin, err = s.isAdmin(r); err != nil {
			writeError(w, http.StatusServiceUnavailable, "the Kubernetes API server could not authorize the request")
			return scope{}, false
		}
	}
	sc, why := issuerScope(issuerOf(r), asked, admin)
	if why != "" {
		writeError(w, http.StatusForbidden, why)
		return scope{}, false
	}
	return sc, true
}

// records calls fn for every Record of the request's subject, purpose and issuers, in order
// of issuer, namespace and name, until fn returns false. It costs O(the subject's tokens).
func (s *Server) records(req subjectRequest, fn func(*token.Record) bool) {
	issuers := req.scope.issuers
	if req.scope.all {
		issuers = s.Tokens.Issuers()
	}
	for _, issuer := range issuers {
		goOn := true
		s.Tokens.BySubject(issuer, req.subject, func(rec *token.Record) bool {
			if req.purpose != "" && rec.Purpose() != req.purpose {
				return true
			}
			goOn = fn(rec)
			return goOn
		})
		if !goOn {
			return
		}
	}
}

// revokeSubject answers DELETE /app/tokens?subject=...: it revokes every live HTTP token of
// the subject (and purpose, if given) that the caller's scope holds, a few Secrets at a time,
// and answers how many it revoked. A TokenRequest's tokens are left alone and counted, as
// single revocation refuses them: delete the TokenRequest. A call that runs out of time
// answers what it did with "more":true; calling again revokes the rest.
func (s *Server) revokeSubject(w http.ResponseWriter, r *http.Request) {
	if s.overLimit(w, r) || s.listThrottled(w, r) {
		return
	}
	req, ok := s.parseSubjectRequest(w, r)
	if !ok {
		return
	}
	var targets []*token.Record
	tokenRequests := 0
	s.records(req, func(rec *token.Record) bool {
		switch {
		case rec.Deleting:
		case rec.Source != token.SourceHTTP:
			tokenRequests++
		default:
			targets = append(targets, rec)
		}
		return true
	})
	// Twice a single write's bound: the server's own write timeout leaves 10s beyond one.
	ctx, cancel := context.WithTimeout(r.Context(), 2*s.WriteTimeout)
	defer cancel()
	var revoked, failed, left atomic.Int64
	g := errgroup.Group{}
	g.SetLimit(revokeWorkers)
	for _, rec := range targets {
		if ctx.Err() != nil {
			left.Add(1)
			continue
		}
		g.Go(func() error {
			if ctx.Err() != nil {
				left.Add(1)
				return nil
			}
			e := s.auditOf(audit.OpRevoke, audit.Failure, rec)
			deleted, err := s.Store.Delete(ctx, rec)
			switch {
			case err != nil:
				failed.Add(1)
				e.Reason = storeFailure(err)
			case !deleted:
				e.Reason = "gone already"
			default:
				revoked.Add(1)
				e.Outcome = audit.Success
				s.Log.V(1).Info("Revoked token by subject", "secret", klog.KRef(rec.Namespace, rec.Name), "tokenID", rec.Current.ID.String())
			}
			s.audit(w, r, e)
			return nil
		})
	}
	_ = g.Wait() // the workers report through the counters
	s.Log.Info("Revoked tokens by subject", "revoked", revoked.Load(), "failed", failed.Load(), "left", left.Load())
	if failed.Load() > 0 {
		writeError(w, http.StatusServiceUnavailable, fmt.Sprintf("revoked %d tokens; %d could not be revoked: call again", revoked.Load(), failed.Load()))
		return
	}
	body := fmt.Appendf(nil, `{"status_code":200,"revoked":%d,"token_requests":%d,"more":%s}`, revoked.Load(), tokenRequests,
		strconv.FormatBool(left.Load() > 0))
	writeBody(w, http.StatusOK, body)
}

// afterKey is whether rec comes after the page token's key in a listing by subject, whose
// Records come in order of namespace and name within one issuer.
func afterKey(rec *token.Record, after index.Position) bool {
	return after == (index.Position{}) || index.PositionOf(rec).Compare(after) > 0
}
