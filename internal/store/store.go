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

// Package store is the one writer of token Secrets. Controllers and HTTP handlers call its
// verbs (Create, IssueHTTP, Update, Spend, Delete, Expire, DigestOnly) and never build, edit or
// delete a token Secret themselves: each verb carries the preconditions its write needs, reads
// the API server's answer the same way, and keeps the token index (package index) in step with
// that answer (a created Secret is indexed at once; a Secret a delete found gone is forgotten).
// Tokens issued over HTTP go into token slices (UseSlices; slices.go groups the issues arriving
// together into one write, slice_changes.go batches the revocations and redemptions of one
// slice, slice_writes.go holds every patch of a slice's data); the
// Record of a slice's token (token.PackedEntry) is revoked and spent by the same verbs. The
// formats are package token's.
package store

import (
	"context"
	"encoding/json"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tokenops/token-operator/internal/index"
	"github.com/tokenops/token-operator/internal/metrics"
	"github.com/tokenops/token-operator/internal/token"
)

// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;create;update;patch;delete

// Store writes token Secrets through the API server and tells the token index of its writes.
// It is safe for concurrent use, and several replicas may call the same verb on the same
// Secret at once: every write is guarded so that at most one of them takes effect.
type Store struct {
	// Client writes to the API server.
	Client client.Client
	// Reader reads live Secrets from the API server, around any cache (the manager's
	// APIReader): a spend must see the newest count.
	Reader client.Reader
	// Tokens is the token index kept in step with the writes.
	Tokens *index.Index
	// Clock tells whether a token has expired, for Expire and Spend.
	Clock clock.PassiveClock

	// slices writes the tokens issued over HTTP into token slices (UseSlices); nil: a Secret
	// per token.
	slices *slices
	// changes batches the revocations and redemptions of tokens of slices per slice.
	changes sliceChanges
}

// New is a store writing through c, reading live Secrets through reader, keeping tokens in
// step, telling the time by clk (nil: the real clock).
func New(c client.Client, reader client.Reader, tokens *index.Index, clk clock.PassiveClock) *Store {
	if clk == nil {
		clk = clock.RealClock{}
	}
	return &Store{Client: c, Reader: reader, Tokens: tokens, Clock: clk}
}

// Create stores a new token Secret and indexes it as the API server answered, so that its
// token validates on this replica at once; the watch's event for it then only confirms it.
// Create never overwrites: a name already taken answers AlreadyExists.
func (s *Store) Create(ctx context.Context, secret *corev1.Secret) error {
	s.seal(secret)
	if err := s.Client.Create(ctx, secret); err != nil {
		return err
	}
	s.Tokens.Put(secret)
	return nil
}

// IssueHTTP stores a token issued over HTTP into namespace (its digest, never the token):
// into a token slice with the others issued at the same time (UseSlices), or into a Secret of
// its own. It answers the key of the Secret that holds it, once the API server has stored it
// and the index holds it.
func (s *Store) IssueHTTP(ctx context.Context, namespace string, issued token.Issued) (types.NamespacedName, error) {
	if s.slices != nil {
		return s.slices.issue(ctx, namespace, issued)
	}
	secret := token.NewHTTPSecret(namespace, issued)
	return client.ObjectKeyFromObject(secret), s.Create(ctx, secret)
}

// Update writes a token Secret read from the API server and changed (token.Rewrite): a
// rotation, a repair, an adoption. It carries the resourceVersion it was read with, so it fails
// with a Conflict rather than overwrite a newer write: of two writers, one wins.
func (s *Store) Update(ctx context.Context, secret *corev1.Secret) error {
	s.seal(secret)
	return s.writeBack(ctx, secret)
}

// writeBack writes a Secret read from the API server and changed, with the resourceVersion it
// was read with: of two writers, one wins and the other gets a Conflict. Every such write of
// the store (token Secrets, one-time codes) goes through here.
func (s *Store) writeBack(ctx context.Context, secret *corev1.Secret) error {
	return s.Client.Update(ctx, secret)
}

// seal puts the operator's seal on a token Secret about to be written (token.AnnotationSeal),
// with the index's keys: what the index then admits. Without keys (tests of the index alone)
// Secrets go unsealed.
func (s *Store) seal(secret *corev1.Secret) {
	if t := s.Tokens.Trust; t != nil {
		t.Keys().Seal(secret)
	}
}

// Delete deletes the Secret rec was read from (a revocation, a spent TokenRequest token),
// and reports whether this call deleted it. A Secret already gone, or replaced by a newer one
// of the same name, is no error: several replicas may delete at once.
func (s *Store) Delete(ctx context.Context, rec *token.Record) (bool, error) {
	if rec.Packing == token.PackedEntry {
		return s.removeEntry(ctx, rec)
	}
	return tookEffect(s.deleteSecret(ctx, rec.Key(), rec.UID, ""))
}

// Expire deletes the Secret rec was read from if its token has expired at the store's clock
// (or its expiry does not parse), and reports whether this call deleted it, as Delete does. A
// token slice (token.PackedSlice) is deleted whole once its last token has expired.
func (s *Store) Expire(ctx context.Context, rec *token.Record) (bool, error) {
	if rec.Deleting || !rec.Expired(s.Clock.Now()) {
		return false, nil
	}
	tokens := 1
	if rec.Packing == token.PackedSlice {
		tokens = s.Tokens.SliceLen(rec.Key()) // a slice expires whole
	}
	done, err := tookEffect(s.deleteSecret(ctx, rec.Key(), rec.UID, ""))
	if done {
		metrics.ExpiredDeleted.Add(float64(tokens))
	}
	return done, err
}

// deleteSecret deletes the Secret of key if it is still the one with uid (and, with rv, still
// that version of it), and forgets it in the index when it is gone: deleted now, not
// found, or (without rv) replaced by a newer Secret, which the UID precondition reports as a
// Conflict (a Secret the index does not hold, such as a code's, is forgotten by no one). It
// returns the API server's answer. Every delete of the store goes through here.
func (s *Store) deleteSecret(ctx context.Context, key types.NamespacedName, uid types.UID, rv string) error {
	pre := client.Preconditions{UID: &uid}
	if rv != "" {
		pre.ResourceVersion = &rv
	}
	err := s.Client.Delete(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name}}, pre)
	if err == nil || apierrors.IsNotFound(err) || rv == "" && apierrors.IsConflict(err) {
		s.Tokens.Forget(key, uid) // gone: this replica stops validating it now, not at the watch's event
	}
	return err
}

// tookEffect reads the answer to a write guarded by the Secret's UID (a delete, a patch): true
// when it took effect, false with no error for a Secret already gone or replaced.
func tookEffect(err error) (bool, error) {
	switch {
	case apierrors.IsNotFound(err), apierrors.IsConflict(err):
		return false, nil
	case err != nil:
		return false, err
	}
	return true, nil
}

// DigestOnly turns the Secret of an HTTP token written by an earlier version, which held the
// token itself, into today's shape: the token's digest in its place. The patch carries the
// Secret's UID, so it never touches a newer Secret of the same name. It reports whether it
// changed the Secret (false: gone or replaced).
func (s *Store) DigestOnly(ctx context.Context, rec *token.Record) (bool, error) {
	patch, err := json.Marshal(map[string]any{
		"metadata": map[string]any{"uid": rec.UID},
		"data":     map[string]any{token.DataToken: nil, token.DataTokenDigest: rec.Current.Digest[:]},
	})
	if err != nil {
		return false, err
	}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: rec.Namespace, Name: rec.Name}}
	err = s.Client.Patch(ctx, secret, client.RawPatch(types.MergePatchType, patch))
	return tookEffect(err)
}

// Redemption is what Spend did.
type Redemption struct {
	// Verdict is the token's verdict on the live Secret: VerdictValid when a use was spent.
	Verdict token.Verdict
	// UsesLeft is how many uses are left after this one; nil when none was spent.
	UsesLeft *int64
}

// Spend spends one use of the limited-use token presented, whose Record in the index is
// cached: it reads the Secret from the API server and writes uses-left minus one with that
// read's resourceVersion, so of racing callers exactly one wins each use; the others read
// again after a growing, jittered pause (client-go's retry.RetryOnConflict) and try the next
// use, until none is left. The last use of an HTTP token deletes its Secret (resourceVersion
// precondition); that of a TokenRequest's token writes 0, and the TokenRequest controller
// records it and deletes the Secret.
func (s *Store) Spend(ctx context.Context, cached *token.Record, presented string) (Redemption, error) {
	if cached.Packing == token.PackedEntry {
		return s.spendEntry(ctx, cached, presented)
	}
	var out Redemption
	key, uid := cached.Key(), cached.UID
	err := retry.RetryOnConflict(spendBackoff, func() error {
		live := &corev1.Secret{}
		if err := s.Reader.Get(ctx, key, live); err != nil {
			if apierrors.IsNotFound(err) {
				out.Verdict = token.VerdictSpent // its last use went to another caller
				return nil
			}
			return err
		}
		rec, admitted, _ := s.Tokens.Admit(live) // judged as validation judges it: seal, status, namespace
		if !admitted || live.UID != uid || rec.Deleting {
			out.Verdict = token.VerdictUnknown
			return nil
		}
		if v := rec.Verify(presented, s.Clock.Now()); v != token.VerdictValid || !rec.Limited() {
			out.Verdict = v
			return nil
		}
		err := s.spendOne(ctx, live, &rec)
		switch {
		case err == nil:
			out.Verdict, out.UsesLeft = token.VerdictValid, new(rec.Left()-1)
		case apierrors.IsNotFound(err):
			out.Verdict = token.VerdictSpent
		default:
			return err // a conflict: another caller spent a use first; read again after a pause
		}
		return nil
	})
	return out, err
}

// spendBackoff paces a caller that lost a use to another one before it reads again: short
// pauses that grow, jittered so that racing callers spread out, bounded by the caller's
// deadline.
var spendBackoff = wait.Backoff{Duration: 5 * time.Millisecond, Factor: 1.5, Jitter: 1, Steps: 30, Cap: 500 * time.Millisecond}

// spendOne writes one use less onto live (whose Record is rec), failing with a Conflict if
// live is no longer the newest version of the Secret.
func (s *Store) spendOne(ctx context.Context, live *corev1.Secret, rec *token.Record) error {
	left := rec.Left() // the Secret's count, never above the TokenRequest's status
	if left == 1 && rec.Source == token.SourceHTTP {
		return s.deleteSecret(ctx, rec.Key(), live.UID, live.ResourceVersion)
	}
	spent := token.WithUsesLeft(live, left-1)
	return s.Client.Patch(ctx, spent, client.MergeFromWithOptions(live, client.MergeFromWithOptimisticLock{}))
}
