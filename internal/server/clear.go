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
	"errors"
	"net/http"
)

// clear answers DELETE /app/clear/all/tokens: it deletes every expired token Secret in the
// token index, in every namespace, and answers after the deletes. Secrets already gone or
// replaced are no error, so several replicas may clear at once.
func (s *Server) clear(w http.ResponseWriter, r *http.Request) {
	var errs []error
	deleted := 0
	for _, rec := range s.Tokens.Expired(s.Clock.Now()) {
		ok, err := s.Expiry.DeleteExpired(r.Context(), rec)
		if err != nil {
			errs = append(errs, err)
		}
		if ok {
			deleted++
		}
	}
	if err := errors.Join(errs...); err != nil {
		s.Log.Error(err, "Failed to delete some expired token Secrets", "deleted", deleted)
		writeError(w, http.StatusServiceUnavailable, "some expired tokens could not be deleted; try again")
		return
	}
	s.Log.V(1).Info("Cleared expired tokens", "deleted", deleted)
	writeBody(w, http.StatusOK, answerValid)
}
