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
	"sync/atomic"

	"golang.org/x/sync/errgroup"

	"github.com/tokenops/token-operator/internal/audit"
)

// Clears a client may ask for, with the failed-validation guard on: one a second, five at
// once. A clear is cheap when nothing has expired, but each one scans the index.
const (
	clearsPerSecond = 1
	clearBurst      = 5
)

// clear answers DELETE /app/clear/all/tokens: it deletes every expired token Secret in the
// token index, in every namespace, and answers after the deletes. Secrets already gone or
// replaced are no error, so several replicas may clear at once. On one replica, clears run
// one at a time, each deleting with at most ClearWorkers requests in flight.
func (s *Server) clear(w http.ResponseWriter, r *http.Request) {
	if s.clears != nil {
		addr, now := s.clientKey(r), s.Clock.Now()
		if wait := s.clears.blocked(addr, now); wait > 0 {
			writeTooManyRequests(w, wait, "too many clears from this address; retry later")
			return
		}
		s.clears.charge(addr, now)
	}
	s.clearing.Lock()
	defer s.clearing.Unlock()
	deleted, failed, err := s.deleteExpired(r.Context())
	e := audit.Event{Operation: audit.OpClear, Outcome: audit.Success, Deleted: &deleted}
	if err != nil {
		s.Log.Error(err, "Failed to delete some expired token Secrets", "deleted", deleted, "failed", failed)
		e.Outcome, e.Reason = audit.Failure, fmt.Sprintf("%d expired tokens could not be deleted", failed)
		s.audit(w, r, e)
		writeError(w, http.StatusServiceUnavailable, "some expired tokens could not be deleted; try again")
		return
	}
	s.audit(w, r, e)
	s.Log.V(1).Info("Cleared expired tokens", "deleted", deleted)
	writeBody(w, http.StatusOK, answerValid)
}

// deleteExpired deletes every expired token Secret the index holds, ClearWorkers at a time,
// and reports how many it deleted, how many failed, and the first failure.
func (s *Server) deleteExpired(ctx context.Context) (deleted, failed int64, err error) {
	var g errgroup.Group
	g.SetLimit(max(s.ClearWorkers, 1))
	var ok, bad atomic.Int64
	for _, rec := range s.Tokens.Expired(s.Clock.Now()) {
		g.Go(func() error {
			done, err := s.Store.Expire(ctx, rec)
			switch {
			case err != nil:
				bad.Add(1)
			case done:
				ok.Add(1)
			}
			return err
		})
	}
	err = g.Wait() // the first failure; the others still ran
	return ok.Load(), bad.Load(), err
}
