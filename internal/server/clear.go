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

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// clear answers DELETE /app/clear/all/tokens: it deletes every expired token Secret it
// knows of, in every namespace, and answers after the deletes. Secrets already gone or
// replaced are no error, so several replicas may clear at once.
func (s *Server) clear(w http.ResponseWriter, r *http.Request) {
	list := &corev1.SecretList{}
	if err := s.Client.List(r.Context(), list, client.UnsafeDisableDeepCopy); err != nil {
		s.Log.Error(err, "Failed to read the token cache")
		writeError(w, http.StatusServiceUnavailable, "the token cache is unavailable")
		return
	}
	var errs []error
	deleted := 0
	for i := range list.Items {
		ok, err := s.Expiry.DeleteExpired(r.Context(), &list.Items[i])
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
