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
	"math/rand/v2"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"

	"github.com/tokenops/token-operator/internal/groupcommit"
	"github.com/tokenops/token-operator/internal/token"
)

// SliceWritesInFlight bounds the slice writes one replica has in flight per expiry window.
// One: the issues arriving meanwhile wait and go together into the next write, so that under
// load a write carries as many tokens as there are clients waiting and a slice is written in
// few versions (the API server's watch history keeps every version of a slice whole; with two
// writes in flight the batches were half as large and a million tokens cost it 697 B each).
const SliceWritesInFlight = 1

// AppendLimit bounds the tokens a slice may hold after a write that appends to it: a write
// of n tokens goes into an open slice only if that slice then holds at most AppendLimit, else
// into a new one (which takes the whole batch, up to SliceCapacity). Every write of a slice
// rewrites it whole and the API server's watch history keeps every version whole, so a slice
// appended to k times costs it the sum of its k sizes: lone issues append to slices of at most
// 25 (an API write as cheap as a create, where one of 100 costs 1.35 times as much:
// hack/patchcost), and a batch under load is written once, into a slice of its own.
const AppendLimit = 25

// slices is the writer of one replica's token slices (issue 23): every token issued over HTTP
// goes into a slice of its expiry window (token.WindowOf) written by this replica alone, with
// the others issued at the same time (group commit), so that a slice expires whole and a
// replica never conflicts with another on issue.
type slices struct {
	store *Store
	// writer is this replica's writer label (token.SliceWriter).
	writer string

	mu      sync.Mutex
	windows map[windowKey]*window
	// seq numbers this process's slices from a random start, so that a replica restarted
	// under its name does not meet the names its earlier run took.
	seq uint32
}

// windowKey names an expiry window of one namespace.
type windowKey struct {
	namespace string
	start     int64
}

// window is the open slices of one expiry window and the group commit into them.
type window struct {
	windowKey
	commit groupcommit.Committer[*sliceItem]
	mu     sync.Mutex
	// open are the slices being filled, at most SliceWritesInFlight; one write at a time
	// goes to each.
	open []*openSlice
}

// openSlice is one slice being filled.
type openSlice struct {
	name string
	uid  types.UID // "" until created
	// keyID is the key its records are sealed with, the one its annotation names: after a
	// key rotation a new slice starts.
	keyID string
	left  int
	busy  bool
}

// sliceItem is one token waiting for its write; the write names the slice it went into.
type sliceItem struct {
	record token.SliceRecord
	slice  string
}

// UseSlices makes IssueHTTP write the tokens issued over HTTP into token slices, as the
// replica named replica (issue 23), instead of a Secret per token.
func (s *Store) UseSlices(replica string) {
	s.slices = &slices{store: s, writer: token.SliceWriter(replica), windows: map[windowKey]*window{},
		seq: rand.Uint32()} //nolint:gosec // a name's start, not a secret
}

// issue writes one token into a slice of its window and answers the slice's key.
func (sl *slices) issue(ctx context.Context, namespace string, issued token.Issued) (types.NamespacedName, error) {
	item := &sliceItem{record: token.SliceRecordOf(issued)}
	w := sl.window(windowKey{namespace: namespace, start: token.WindowOf(item.record.ExpiresAt)})
	err := w.commit.Do(ctx, item)
	return types.NamespacedName{Namespace: namespace, Name: item.slice}, err
}

// window is the window of key, made on first use; windows that have ended (no token issued
// now can expire in them) are dropped.
func (sl *slices) window(key windowKey) *window {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	if w, ok := sl.windows[key]; ok {
		return w
	}
	now := sl.store.Clock.Now().Unix()
	for k := range sl.windows {
		if token.SliceExpiresAt(k.start) <= now {
			delete(sl.windows, k)
		}
	}
	w := &window{windowKey: key}
	w.commit = groupcommit.Committer[*sliceItem]{MaxBatch: token.SliceCapacity, MaxInFlight: SliceWritesInFlight,
		Write: func(ctx context.Context, batch []*sliceItem) []error { return sl.write(ctx, w, batch) }}
	sl.windows[key] = w
	return w
}

// nextName is the name of a new slice of window start.
func (sl *slices) nextName(start int64) string {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	sl.seq++
	return token.SliceName(sl.writer, start, int(sl.seq))
}

// write writes one batch into a slice of w: a create for a new slice, an append to one this
// replica created. A name already taken (by an earlier run of this replica) is skipped, and a
// slice gone (deleted by hand) is left for a new one.
func (sl *slices) write(ctx context.Context, w *window, batch []*sliceItem) []error {
	var err error
	for range SliceWritesInFlight + 2 {
		slice := w.reserve(len(batch), sl.keyID(), sl.nextName)
		records := sl.seal(w.namespace, slice.name, batch)
		created := slice.uid == ""
		if created {
			secret := token.NewSliceSecret(w.namespace, slice.name, sl.writer, w.start, slice.keyID, records)
			err = sl.store.createSlice(ctx, secret)
			slice.uid = secret.UID
		} else {
			err = sl.store.appendSlice(ctx, types.NamespacedName{Namespace: w.namespace, Name: slice.name}, slice.uid, records)
		}
		w.release(slice, err)
		if err == nil {
			for _, it := range batch {
				it.slice = slice.name
			}
			break
		}
		if !apierrors.IsAlreadyExists(err) && (created || !patchFailed(err) && !apierrors.IsConflict(err)) {
			break
		}
	}
	errs := make([]error, len(batch))
	for i := range errs {
		errs[i] = err
	}
	return errs
}

// takes reports whether a write of n tokens may go into a slice holding held tokens with
// left free: room for them all, and the slice new (held 0) or then holding no more than
// AppendLimit.
func takes(held, left, n int) bool {
	return left >= n && (held == 0 || held+n <= AppendLimit)
}

// reserve is a slice of w sealed with keyID that takes n tokens and has no write in flight,
// made anew (uid "") when none has; it is busy until release. A new slice takes the place of
// an idle one that did not take this write (full, or too full for writes this small: it is
// written no more) when the open slices are at their bound.
func (w *window) reserve(n int, keyID string, name func(int64) string) *openSlice {
	w.mu.Lock()
	defer w.mu.Unlock()
	var found *openSlice
	for _, o := range w.open {
		if !o.busy && o.keyID == keyID && takes(token.SliceCapacity-o.left, o.left, n) {
			found = o
			break
		}
	}
	if found == nil {
		found = &openSlice{name: name(w.start), keyID: keyID, left: token.SliceCapacity}
		kept := w.open[:0]
		for _, o := range w.open {
			if o.busy || len(kept) < SliceWritesInFlight-1 {
				kept = append(kept, o)
			}
		}
		if w.open = kept; len(w.open) < SliceWritesInFlight {
			w.open = append(w.open, found)
		}
	}
	found.busy = true
	found.left -= n
	return found
}

// release ends a write to o; after a failure o is written no more (its state is unknown),
// and after one that found it gone neither is any other open slice of w with no write in
// flight (what deleted one, such as a clear of a replica whose clock is ahead, likely deleted
// them all).
func (w *window) release(o *openSlice, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	o.busy = false
	if err == nil {
		return
	}
	o.left = 0
	kept := w.open[:0]
	for _, x := range w.open {
		if x != o && (x.busy || !apierrors.IsNotFound(err)) {
			kept = append(kept, x)
		}
	}
	w.open = kept
}

// seal is the batch's records, each sealed for the slice namespace/name.
func (sl *slices) seal(namespace, name string, batch []*sliceItem) []token.SliceRecord {
	records := make([]token.SliceRecord, len(batch))
	for i, it := range batch {
		records[i] = it.record
		if t := sl.store.Tokens.Trust; t != nil {
			_, records[i].Seal = t.Keys().SealSliceRecord(namespace, name, it.record)
		}
	}
	return records
}

// keyID is the key the records are sealed with ("" without keys).
func (sl *slices) keyID() string {
	if t := sl.store.Tokens.Trust; t != nil {
		return t.Keys().Current()
	}
	return ""
}
