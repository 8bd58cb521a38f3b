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

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tokenops/token-operator/internal/metrics"
	"github.com/tokenops/token-operator/internal/token"
)

// IndexTokenID is the cache index of token Secrets by the public id of the token they hold.
const IndexTokenID = "tokens.tokenops.io/token-id" //nolint:gosec // an index name, not a credential

// SetupIndexes registers the cache index the validator looks tokens up by. Call it before
// the manager starts.
func SetupIndexes(ctx context.Context, indexer client.FieldIndexer) error {
	return indexer.IndexField(ctx, &corev1.Secret{}, IndexTokenID, indexTokenID)
}

// indexTokenID indexes a Secret by the id part of its token data, and of its previous token
// during a rotation's overlap: the values validation compares, so that an edited label cannot
// hide or misfile a token.
func indexTokenID(obj client.Object) []string {
	s, ok := obj.(*corev1.Secret)
	if !ok {
		return nil
	}
	var ids []string
	for _, id := range []string{token.TokenID(s), token.PreviousTokenID(s)} {
		if id != "" {
			ids = append(ids, id)
		}
	}
	return ids
}

// Validation results, the values of the validations and redemptions metrics: a
// token.Verdict, or one of these.
const (
	resultMalformed = "malformed"
	resultLimited   = "limited"
)

// validate answers GET /app/valid/{token} from the cache: true only for a well-formed token
// whose Secret exists, is not being deleted, holds exactly this token as its current token or
// as the previous token of a rotation (its SHA-256 digest, compared in constant time: the
// cache keeps no token itself), has not expired by the clock and, if it has a use limit, has
// a use left. It spends no use. A Secret found expired is handed to the expiry controller.
func (s *Server) validate(w http.ResponseWriter, r *http.Request) {
	if s.overLimit(w, r) {
		return
	}
	result, err := s.check(r.Context(), r.URL.Path[len(validPrefix):])
	if err != nil {
		s.Log.Error(err, "Failed to read the token cache")
		writeError(w, http.StatusServiceUnavailable, "the token cache is unavailable")
		return
	}
	metrics.Validations.WithLabelValues(result).Inc()
	if result == string(token.VerdictValid) {
		writeBody(w, http.StatusOK, answerValid)
		return
	}
	s.chargeFailure(r)
	writeBody(w, http.StatusOK, answerInvalid)
}

// check looks presented up in the cache and says which result it gets.
func (s *Server) check(ctx context.Context, presented string) (string, error) {
	secret, result, err := s.lookupPresented(ctx, presented)
	if secret == nil {
		return result, err
	}
	return string(s.verify(secret, presented)), nil
}

// lookupPresented finds, in the cache, the token Secret that holds presented; without one
// (nil), it says which result that is.
func (s *Server) lookupPresented(ctx context.Context, presented string) (*corev1.Secret, string, error) {
	tok, err := token.Parse(presented)
	if err != nil {
		return nil, resultMalformed, nil
	}
	secret, err := s.find(ctx, tok.ID, presented)
	if err != nil || secret == nil {
		return nil, string(token.VerdictUnknown), err
	}
	return secret, "", nil
}

// verify says what secret makes of presented now, and hands a Secret whose expiry has passed
// to the expiry controller.
func (s *Server) verify(secret *corev1.Secret, presented string) token.Verdict {
	now := s.Clock.Now()
	if expiresAt, err := token.ExpiresAt(secret); err != nil || !now.Before(expiresAt) {
		s.Expiry.Enqueue(secret)
	}
	return token.Verify(secret, presented, now)
}

// find returns, from the cache, the live (not deleting) token Secret of a token id that
// holds presented, current or previous (any, when presented is empty), or nil. The object is the cache's own:
// read it, never change it.
func (s *Server) find(ctx context.Context, id, presented string) (*corev1.Secret, error) {
	list := &corev1.SecretList{}
	// The cache's own objects, read only: no copy on the hot path.
	if err := s.Client.List(ctx, list, client.MatchingFields{IndexTokenID: id}, client.UnsafeDisableDeepCopy); err != nil {
		return nil, err
	}
	for i := range list.Items {
		secret := &list.Items[i]
		if token.IsTokenSecret(secret) && secret.DeletionTimestamp.IsZero() &&
			(presented == "" || token.Match(secret, presented) != token.SlotNone) {
			return secret, nil
		}
	}
	return nil, nil
}
