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

package store

import (
	"context"
	"hash/maphash"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"

	"github.com/tokenops/token-operator/internal/groupcommit"
	"github.com/tokenops/token-operator/internal/token"
)

// Revocations and redemptions of the tokens of a slice (issue 23), batched per slice: the
// changes of one slice that arrive while a change of it is being written go together into its
// next write, one read of the slice and one JSON Patch for all of them (a test of each record
// as read, then its replace or remove), since every write of a slice rewrites the whole
// object. The patch is atomic: if any test fails (another replica changed one of the records),
// none of it is written, and the batch reads the slice again and decides again, as a lone
// change would.

// changeShards is how many group commits the changes of slices are spread over, by the slice's
// key: one write in flight each, so the changes of one slice are written one batch at a time
// and those of different slices mostly in parallel.
const changeShards = 64

// sliceChange is a revocation (presented "") or a redemption of one token of a slice, and
// what its write did.
type sliceChange struct {
	cached    *token.Record
	presented string
	// The outcome, set by each attempt of the write.
	removed    bool       // a revocation removed the record
	redemption Redemption // a redemption's verdict
}

// sliceChanges is the group commits of the changes of slices.
type sliceChanges struct {
	once   sync.Once
	seed   maphash.Seed
	shards [changeShards]groupcommit.Committer[*sliceChange]
}

// change writes c with the changes of its slice arriving at the same time.
func (s *Store) change(ctx context.Context, c *sliceChange) error {
	x := &s.changes
	x.once.Do(func() {
		x.seed = maphash.MakeSeed()
		for i := range x.shards {
			x.shards[i].Write, x.shards[i].MaxBatch = s.writeChanges, 100
		}
	})
	key := c.cached.Key()
	shard := maphash.String(x.seed, key.Namespace+"/"+key.Name) % changeShards
	return x.shards[shard].Do(ctx, c)
}

// removeEntry revokes the token of a slice rec is (token.PackedEntry): it removes its record
// from the slice, if the slice is still the one with rec's UID, and reports whether this call
// removed it (false: already gone).
func (s *Store) removeEntry(ctx context.Context, rec *token.Record) (bool, error) {
	c := &sliceChange{cached: rec}
	if err := s.change(ctx, c); err != nil {
		return false, err // (c may still be written: a caller that stops waiting does not stop the write)
	}
	return c.removed, nil
}

// spendEntry is Spend for the token of a slice: with the other changes of its slice, it reads
// the slice from the API server and writes the token's record with one use less (its last use
// removes it), guarded by a test of the record as read, so of racing callers exactly one wins
// each use; the others read again after a pause, as Spend's do.
func (s *Store) spendEntry(ctx context.Context, cached *token.Record, presented string) (Redemption, error) {
	c := &sliceChange{cached: cached, presented: presented}
	if err := s.change(ctx, c); err != nil {
		return Redemption{}, err
	}
	return c.redemption, nil
}

// writeChanges is a shard's write: the batch's changes, one write per slice, the slices in
// parallel.
func (s *Store) writeChanges(ctx context.Context, batch []*sliceChange) []error {
	bySlice := map[types.NamespacedName][]int{}
	for i, c := range batch {
		bySlice[c.cached.Key()] = append(bySlice[c.cached.Key()], i)
	}
	errs := make([]error, len(batch))
	var wg sync.WaitGroup
	for key, at := range bySlice {
		wg.Go(func() {
			changes := make([]*sliceChange, len(at))
			for j, i := range at {
				changes[j] = batch[i]
			}
			err := s.changeSlice(ctx, key, changes)
			for _, i := range at {
				errs[i] = err
			}
		})
	}
	wg.Wait()
	return errs
}

// changeSlice writes changes, all of the slice key, in one patch: it reads the slice, decides
// each change on the records as the changes before it in the batch leave them, and writes
// them; a failed test reads again after a pause.
func (s *Store) changeSlice(ctx context.Context, key types.NamespacedName, changes []*sliceChange) error {
	return retry.OnError(spendBackoff, apierrors.IsInvalid, func() error {
		live := &corev1.Secret{}
		err := s.Reader.Get(ctx, key, live)
		if apierrors.IsNotFound(err) {
			live = nil // gone with its slice
		} else if err != nil {
			return err
		}
		ops := decideChanges(live, changes, s.liveSlice(live), s.Clock.Now())
		if len(ops) == 0 {
			return nil
		}
		err = s.patchSlice(ctx, key, append([]patchOp{testUID(live.UID)}, ops...))
		if apierrors.IsNotFound(err) {
			decideChanges(nil, changes, nil, s.Clock.Now())
			return nil
		}
		return err // a failed test: another caller changed a record first; read again after a pause
	})
}

// entryJudge judges the record raw with data key key of a live slice as the index judges it:
// its Record and record, false if it is not admitted.
type entryJudge func(key string, raw []byte) (token.Record, token.SliceRecord, bool)

// decideChanges decides changes, all of the slice live (nil: gone), in order, each on the
// records as the changes before it leave them: it sets each change's outcome and answers the
// patch operations that write them (none: nothing to write). A token gone, or a slice of
// another UID, is spent (a redemption) or not removed (a revocation); a revocation removes the
// record whatever it holds; a redemption spends a use of an admitted, valid, limited token,
// guarded by a test of its record as read.
func decideChanges(live *corev1.Secret, changes []*sliceChange, judge entryJudge, now time.Time) []patchOp {
	var ops []patchOp
	written := map[string][]byte{} // the records the operations so far leave; nil: removed
	for _, c := range changes {
		c.removed, c.redemption = false, Redemption{}
		if c.presented != "" {
			c.redemption.Verdict = token.VerdictSpent
		}
		if live == nil || live.UID != c.cached.UID {
			continue // gone with its slice, or a newer slice of its name
		}
		key, path := token.SliceKey(c.cached.Current.ID), dataPath(c.cached.Current.ID)
		raw, ok := written[key]
		if !ok {
			raw, ok = live.Data[key]
		}
		if !ok || raw == nil {
			continue // its last use went to another caller, or it was revoked
		}
		if c.presented == "" {
			ops = append(ops, patchOp{Op: "remove", Path: path})
			written[key], c.removed = nil, true
			continue
		}
		rec, r, admitted := judge(key, raw)
		if !admitted {
			c.redemption.Verdict = token.VerdictUnknown
			continue
		}
		if v := rec.Verify(c.presented, now); v != token.VerdictValid || !rec.Limited() {
			c.redemption.Verdict = v
			continue
		}
		ops = append(ops, patchOp{Op: "test", Path: path, Value: raw})
		if rec.UsesLeft == 1 {
			ops = append(ops, patchOp{Op: "remove", Path: path})
			written[key] = nil
		} else {
			r.UsesLeft--
			written[key] = token.AppendSliceRecord(nil, r)
			ops = append(ops, patchOp{Op: "replace", Path: path, Value: written[key]})
		}
		c.redemption = Redemption{Verdict: token.VerdictValid, UsesLeft: new(rec.UsesLeft - 1)}
	}
	return ops
}

// liveSlice is the judge of the records of the live slice (nil: gone), as the index judges
// them (the slice's namespace and each record's seal).
func (s *Store) liveSlice(live *corev1.Secret) entryJudge {
	refuse := func(string, []byte) (token.Record, token.SliceRecord, bool) {
		return token.Record{}, token.SliceRecord{}, false
	}
	if live == nil {
		return refuse
	}
	slice, _, _, err := token.SliceOf(&corev1.Secret{ObjectMeta: live.ObjectMeta, Type: live.Type})
	if err != nil {
		return refuse
	}
	verify := func(token.SliceRecord) bool { return true }
	if t := s.Tokens.Trust; t != nil {
		if !t.CheckSlice(live, &slice).Admit {
			return refuse
		}
		verify = t.SliceVerifier(live)
	}
	slice.Sealed = true
	return func(key string, raw []byte) (token.Record, token.SliceRecord, bool) {
		r, err := token.ParseSliceRecord(key, raw)
		if err != nil || !verify(r) {
			return refuse(key, raw)
		}
		return token.EntryOf(&slice, r.ID, r.Digest, r.IssuedAt, r.ExpiresAt, r.UsesLeft, r.About()), r, true
	}
}
