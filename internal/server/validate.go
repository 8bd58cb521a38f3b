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

	"github.com/prometheus/client_golang/prometheus"
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
	result, _, err := s.check(r.Context(), r.URL.Path[len(validPrefix):])
	if err != nil {
		s.Log.Error(err, "Failed to read the token cache")
		writeError(w, http.StatusServiceUnavailable, "the token cache is unavailable")
		return
	}
	s.answerResult(w, r, metrics.Validations, result)
}

// answerResult counts result and answers true for a valid token; any other result answers
// false and counts against the client's failed-validation limit.
func (s *Server) answerResult(w http.ResponseWriter, r *http.Request, counter *prometheus.CounterVec, result string) {
	counter.WithLabelValues(result).Inc()
	if result == string(token.VerdictValid) {
		writeBody(w, http.StatusOK, answerValid)
		return
	}
	s.chargeFailure(r)
	writeBody(w, http.StatusOK, answerInvalid)
}

// check looks presented up in the cache and says which result it gets, with the Secret that
// holds it (nil for none). A Secret found expired is handed to the expiry controller.
func (s *Server) check(ctx context.Context, presented string) (string, *corev1.Secret, error) {
	tok, err := token.Parse(presented)
	if err != nil {
		return resultMalformed, nil, nil
	}
	secret, which, err := s.find(ctx, tok.ID, presented)
	if err != nil || secret == nil {
		return string(token.VerdictUnknown), nil, err
	}
	now := s.Clock.Now()
	verdict := token.Judge(secret, which, now)
	if verdict == token.VerdictExpired {
		// The presented token expired; the Secret did too unless that was a previous token.
		if expiresAt, err := token.ExpiresAt(secret); err != nil || !now.Before(expiresAt) {
			s.Expiry.Enqueue(secret)
		}
	}
	return string(verdict), secret, nil
}

// find returns, from the cache, the live (not deleting) token Secret of a token id that
// holds presented, and which of its tokens that is (any Secret of the id, and SlotNone, when
// presented is empty), or nil. The object is the cache's own: read it, never change it.
func (s *Server) find(ctx context.Context, id, presented string) (*corev1.Secret, token.Slot, error) {
	list := &corev1.SecretList{}
	// The cache's own objects, read only: no copy on the hot path.
	if err := s.Client.List(ctx, list, client.MatchingFields{IndexTokenID: id}, client.UnsafeDisableDeepCopy); err != nil {
		return nil, token.SlotNone, err
	}
	for i := range list.Items {
		secret := &list.Items[i]
		if !token.IsTokenSecret(secret) || !secret.DeletionTimestamp.IsZero() {
			continue
		}
		if presented == "" {
			return secret, token.SlotNone, nil
		}
		if which := token.Match(secret, presented); which != token.SlotNone {
			return secret, which, nil
		}
	}
	return nil, token.SlotNone, nil
}
