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

// Package index is the operator's in-memory view of every token Secret: one compact
// token.Record per Secret, found by the Secret's key or by the id of a token it holds, and for
// each token slice (up to 100 tokens issued over HTTP in one Secret) a packed entry per token
// (packed.go, slices.go), changed entry by entry as the slice changes. It is
// a pure view: it makes no API call and reads no clock (every query that depends on the time
// takes it). Package indexsync fills it from a list and watch of the token Secrets, the token
// store (package store) tells it of its own writes at once, the HTTP API reads it, and the
// expiry and TokenRequest controllers are driven by its changes through package indexsource.
// It keeps no token and no Secret object: a few hundred bytes per token.
package index

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/time/rate"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/lru"

	"github.com/tokenops/token-operator/internal/provenance"
	"github.com/tokenops/token-operator/internal/token"
)

// Index holds a token.Record of every token Secret in the cluster. Its readers never see a
// partial list: WaitForSync and Synced say when the first complete one is in (Replace).
type Index struct {
	// Log receives the index's own lines; never a token.
	Log logr.Logger
	// Trust admits the token Secrets the operator wrote as they are; nil admits every one
	// (for tests that index Secrets they built by hand).
	Trust *provenance.Checker

	// bindings are the TokenRequests' statuses, by TokenRequest (Bind).
	bindings map[types.NamespacedName]*token.Binding
	// reported remembers the names of refused Secrets already logged, at most maxReported.
	reportedMu  sync.Mutex
	reported    *lru.Cache
	reportLimit *rate.Limiter

	mu    sync.RWMutex
	state state
	// listeners are told of every change (Subscribe).
	listeners map[int]Listener
	nextID    int
	synced    chan struct{}
	syncOnce  sync.Once
}

// New returns an empty index, not yet synced.
func New(log logr.Logger) *Index {
	return &Index{Log: log, state: newState(), synced: make(chan struct{}),
		bindings: map[types.NamespacedName]*token.Binding{}, reported: lru.New(maxReported),
		reportLimit: rate.NewLimiter(reportRate, reportBurst)}
}

// reportRate and reportBurst bound the log lines about refused Secrets.
const (
	reportRate  = 10
	reportBurst = 100
)

// maxReported bounds the names of refused Secrets the index remembers having logged.
const maxReported = 1024

// WaitForSync blocks until the first complete list is in, or ctx ends; it reports which.
func (x *Index) WaitForSync(ctx context.Context) bool {
	select {
	case <-x.synced:
		return true
	case <-ctx.Done():
		return false
	}
}

// Synced reports whether the first complete list is in.
func (x *Index) Synced() bool {
	select {
	case <-x.synced:
		return true
	default:
		return false
	}
}

// Get returns the Record of the Secret with this key. The Record is the index's own: read
// it, never change it.
func (x *Index) Get(key types.NamespacedName) (*token.Record, bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	r, ok := x.state.byKey[key]
	return r, ok
}

// Find returns the Record of a live (not deleting) Secret that holds a token with this id
// and digest and may prove it (token.Record.Proves), and which of its tokens that is; nil
// when there is none. A token of a slice is answered as its own Record (token.PackedEntry),
// built for the call. Comparing digests is constant time.
func (x *Index) Find(id token.BinaryID, digest token.Digest) (*token.Record, token.Slot) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	var found *token.Record
	slot := token.SlotNone
	x.state.eachWithID(id, func(r *token.Record) bool {
		if r.Deleting {
			return true
		}
		if s := r.Match(digest); r.Proves(s) {
			found, slot = r, s
			return false
		}
		return true
	})
	if found == nil {
		if r, ok := x.state.findInSlice(id, digest); ok {
			found, slot = &r, token.SlotCurrent
		}
	}
	return found, slot
}

// ByID returns the Record of a live Secret holding a token with this id that it may prove,
// or nil.
func (x *Index) ByID(id token.BinaryID) *token.Record {
	x.mu.RLock()
	defer x.mu.RUnlock()
	var found *token.Record
	x.state.eachWithID(id, func(r *token.Record) bool {
		slot := token.SlotPrevious
		if r.HasToken && r.Current.ID == id {
			slot = token.SlotCurrent
		}
		if !r.Deleting && r.Proves(slot) {
			found = r
		}
		return found == nil
	})
	if found == nil {
		if r, ok := x.state.sliceByID(id); ok {
			found = &r
		}
	}
	return found
}

// Expired returns the Records of every live Secret whose token has expired at now.
func (x *Index) Expired(now time.Time) []*token.Record {
	x.mu.RLock()
	defer x.mu.RUnlock()
	var out []*token.Record
	for _, r := range x.state.byKey {
		if !r.Deleting && r.Expired(now) {
			out = append(out, r)
		}
	}
	return out
}

// Position is where a token is in the order of a listing: by namespace and name of its
// Secret, then by token id among the tokens of one slice. ID is "" for a token Secret of its
// own.
type Position struct {
	Namespace, Name, ID string
}

// PositionOf is the position of a Record's token.
func PositionOf(rec *token.Record) Position {
	p := Position{Namespace: rec.Namespace, Name: rec.Name}
	if rec.Packing == token.PackedEntry {
		p.ID = rec.Current.ID.String()
	}
	return p
}

// Compare orders positions: -1, 0 or +1.
func (p Position) Compare(o Position) int {
	return cmp.Or(cmp.Compare(p.Namespace, o.Namespace), cmp.Compare(p.Name, o.Name), cmp.Compare(p.ID, o.ID))
}

// Page returns, in order of position, the Records of the first limit tokens after the
// position after (the zero position: from the start), and whether more follow: a token
// Secret's own Record, or one built for each token of a slice. It walks the sorted keys from
// after: a page costs O(limit + log N), whatever the index holds.
func (x *Index) Page(after Position, limit int) ([]*token.Record, bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	out := make([]*token.Record, 0, min(limit, x.state.keys.Len()))
	more := false
	add := func(rec *token.Record) bool {
		if PositionOf(rec).Compare(after) <= 0 {
			return true
		}
		if len(out) == limit {
			more = true
			return false
		}
		out = append(out, rec)
		return true
	}
	from := types.NamespacedName{Namespace: after.Namespace, Name: after.Name}
	x.state.keys.AscendGreaterOrEqual(from, func(key types.NamespacedName) bool {
		rec := x.state.byKey[key]
		if rec.Packing != token.PackedSlice {
			return add(rec)
		}
		ps := x.state.slices[key]
		for i := range ps.entries {
			r := ps.recordOf(&ps.entries[i])
			if !add(&r) {
				return false
			}
		}
		return true
	})
	return out, more
}

// BySubject calls fn, in order of position, for every Record of a token issued by issuer
// (token.Record.Issuer) for subject, until fn returns false. It costs O(log N + the
// subject's tokens). fn runs under the index's read lock: it must not call the index.
func (x *Index) BySubject(issuer, subject string, fn func(*token.Record) bool) {
	if subject == "" {
		return
	}
	if issuer == token.IssuerAnonymous {
		issuer = "" // as About holds it
	}
	x.mu.RLock()
	defer x.mu.RUnlock()
	var own []*token.Record
	pivot := &token.Record{About: &token.About{Subject: subject, Kind: &token.Kind{Issuer: issuer}}}
	x.state.subjects.AscendGreaterOrEqual(pivot, func(r *token.Record) bool {
		if r.About.Kind.Issuer != issuer || r.About.Subject != subject {
			return false
		}
		own = append(own, r)
		return true
	})
	var packed []*token.Record
	x.state.sliceSubjects.AscendGreaterOrEqual(sliceSubject{about: pivot.About}, func(it sliceSubject) bool {
		if it.about.Kind.Issuer != issuer || it.about.Subject != subject {
			return false
		}
		if r, ok := it.slice.entry(it.id); ok {
			packed = append(packed, &r)
		}
		return true
	})
	// Both are in order of position: merge them.
	for len(own)+len(packed) > 0 {
		var next *token.Record
		if len(packed) == 0 || len(own) > 0 && PositionOf(own[0]).Compare(PositionOf(packed[0])) < 0 {
			next, own = own[0], own[1:]
		} else {
			next, packed = packed[0], packed[1:]
		}
		if !fn(next) {
			return
		}
	}
}

// Issuers is every issuer of a token with a subject (token.Record.Issuer's names).
func (x *Index) Issuers() []string {
	x.mu.RLock()
	defer x.mu.RUnlock()
	out := make([]string, 0, len(x.state.issuers))
	for issuer := range x.state.issuers {
		if issuer == "" {
			issuer = token.IssuerAnonymous
		}
		out = append(out, issuer)
	}
	slices.Sort(out)
	return out
}

func keyLess(a, b types.NamespacedName) bool {
	return a.Namespace < b.Namespace || a.Namespace == b.Namespace && a.Name < b.Name
}

// Census is what the index holds in one namespace, for the metrics.
type Census struct {
	// HTTP counts the live tokens issued over HTTP (each token of a slice counts).
	HTTP int
	// Lingering counts the tokens, of any source, whose Secret expired before the cutoff and
	// is still there (a slice's tokens once the slice has): the expiry controller deletes
	// them within seconds.
	Lingering int
}

// CensusByNamespace counts, in one pass, what the metrics report of each namespace that
// holds a token Secret.
func (x *Index) CensusByNamespace(cutoff time.Time) map[string]Census {
	x.mu.RLock()
	defer x.mu.RUnlock()
	// One map lookup per record: a pointer per namespace, copied out at the end.
	counts := map[string]*Census{}
	for _, r := range x.state.byKey {
		c := counts[r.Namespace]
		if c == nil {
			c = &Census{}
			counts[r.Namespace] = c
		}
		n := 1
		if r.Packing == token.PackedSlice {
			n = len(x.state.slices[r.Key()].entries) // the slice's tokens, not the Secret
		}
		if r.Source == token.SourceHTTP && !r.Deleting {
			c.HTTP += n
		}
		if r.Expired(cutoff) {
			c.Lingering += n
		}
	}
	out := make(map[string]Census, len(counts))
	for ns, c := range counts {
		out[ns] = *c
	}
	return out
}

// LiveHTTP is the number of live (not deleting) token Secrets issued over HTTP, in every
// namespace: the sum of Census.HTTP, kept as the index changes, so reading it costs no scan.
func (x *Index) LiveHTTP() int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.state.liveHTTP
}

// Len is the number of token Secrets indexed.
func (x *Index) Len() int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return len(x.state.byKey)
}

// Records returns every Record. The Records are the index's own: read them, never change them.
func (x *Index) Records() []*token.Record {
	x.mu.RLock()
	defer x.mu.RUnlock()
	out := make([]*token.Record, 0, len(x.state.byKey))
	for _, r := range x.state.byKey {
		out = append(out, r)
	}
	return out
}
