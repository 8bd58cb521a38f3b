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
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// resultStale is the validations and redemptions metrics' result for an answer refused
// because this replica's view is too old.
const resultStale = "stale"

// staleRetry is the Retry-After of a 503 for a stale view: about one heartbeat.
const staleRetry = 5 * time.Second

// cannotKnow answers 503 with Retry-After and reports true when this replica's view of the
// token Secrets is older than --max-staleness (Staleness): it would rather say it cannot
// know than answer true for a token revoked or spent elsewhere since.
func (s *Server) cannotKnow(w http.ResponseWriter, counter *prometheus.CounterVec) bool {
	if s.Staleness == nil {
		return false
	}
	age, stale := s.Staleness()
	if !stale {
		return false
	}
	if counter != nil {
		counter.WithLabelValues(resultStale).Inc()
	}
	w.Header().Set("Retry-After", fmt.Sprint(int(staleRetry.Seconds())))
	writeError(w, http.StatusServiceUnavailable, fmt.Sprintf("this replica has not seen the API server's changes for %s, "+
		"more than --max-staleness: it cannot tell whether the token is still valid; retry (another replica may answer)",
		age.Round(time.Second)))
	return true
}

// stale reports whether this replica's view is older than --max-staleness, and how old it is.
func (s *Server) stale() (time.Duration, bool) {
	if s.Staleness == nil {
		return 0, false
	}
	age, stale := s.Staleness()
	return age.Round(time.Second), stale
}
