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
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tokenops/token-operator/internal/audit"
	"github.com/tokenops/token-operator/internal/metrics"
	"github.com/tokenops/token-operator/internal/token"
)

// The redeem route.
const (
	routeRedeem     = "/app/redeem/{token}"
	routeRedeemBody = "/app/redeem"
)

// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;patch;delete

// redeem answers POST /app/redeem/{token} as validate answers: true spends one use of a
// limited-use token (a token without a limit spends nothing), false for a token that is
// unknown, expired or has no use left. A use is spent exactly once, whatever the number of
// replicas and callers: see spend.
func (s *Server) redeem(w http.ResponseWriter, r *http.Request, presented string) {
	if s.overLimit(w, r) {
		return
	}
	spent, err := s.spend(r.Context(), presented)
	if spent.rec != nil && (err != nil || spent.result == string(token.VerdictValid)) {
		e := audit.Of(audit.OpRedeem, audit.Success, spent.rec)
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

// spend checks presented against the token index and, for a limited-use token, spends one use on
// the live Secret: it reads the Secret from the API server and writes uses-left minus one
// with that read's resourceVersion, so of racing callers exactly one wins each use; the others
// read again after a growing, jittered pause (client-go's retry.RetryOnConflict) and try the
// next use, until none is left. The last use of an HTTP token deletes
// its Secret (resourceVersion precondition); that of a TokenRequest's token writes 0, and the
// TokenRequest controller records it and deletes the Secret.
func (s *Server) spend(ctx context.Context, presented string) (redemption, error) {
	result, cached := s.check(presented)
	if result != string(token.VerdictValid) || !cached.Limited() {
		return redemption{result: result, rec: cached}, nil
	}
	var left *int64
	ctx, cancel := context.WithTimeout(ctx, s.WriteTimeout)
	defer cancel()
	key, uid := cached.Key(), cached.UID
	err := retry.RetryOnConflict(spendBackoff, func() error {
		live := &corev1.Secret{}
		if err := s.APIReader.Get(ctx, key, live); err != nil {
			if apierrors.IsNotFound(err) {
				result = string(token.VerdictSpent) // its last use went to another caller
				return nil
			}
			return err
		}
		rec, err := token.RecordOf(live)
		if err != nil || live.UID != uid || rec.Deleting {
			result = string(token.VerdictUnknown)
			return nil
		}
		if v := rec.Verify(presented, s.Clock.Now()); v != token.VerdictValid || !rec.Limited() {
			result = string(v)
			return nil
		}
		err = s.spendOne(ctx, live, rec.UsesLeft)
		switch {
		case err == nil:
			result, left = string(token.VerdictValid), new(rec.UsesLeft-1)
		case apierrors.IsNotFound(err):
			result = string(token.VerdictSpent)
		default:
			return err // a conflict: another caller spent a use first; read again after a pause
		}
		return nil
	})
	return redemption{result: result, rec: cached, usesLeft: left}, err
}

// spendBackoff paces a caller that lost a use to another one before it reads again: short
// pauses that grow, jittered so that racing callers spread out, bounded by the write timeout.
var spendBackoff = wait.Backoff{Duration: 5 * time.Millisecond, Factor: 1.5, Jitter: 1, Steps: 30, Cap: 500 * time.Millisecond}

// spendOne writes one use less onto live, failing with a conflict if live is no longer the
// newest version of the Secret.
func (s *Server) spendOne(ctx context.Context, live *corev1.Secret, n int64) error {
	if n == 1 && live.Labels[token.LabelSource] == string(token.SourceHTTP) {
		uid, rv := live.UID, live.ResourceVersion
		return s.Client.Delete(ctx, live, client.Preconditions{UID: &uid, ResourceVersion: &rv})
	}
	spent := live.DeepCopy()
	spent.Annotations[token.AnnotationUsesLeft] = strconv.FormatInt(n-1, 10)
	return s.Client.Patch(ctx, spent, client.MergeFromWithOptions(live, client.MergeFromWithOptimisticLock{}))
}
