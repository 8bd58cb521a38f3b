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
// token.Record per Secret, found by the Secret's key or by the id of a token it holds. One
// list-and-watch fills it (see sync.go); the HTTP API reads it, and the expiry and
// TokenRequest controllers are driven by its changes (see source.go). It keeps no token and
// no Secret object: a few hundred bytes per token.
package index

import (
	"container/heap"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/klog/v2"

	"github.com/tokenops/token-operator/internal/token"
)

// Index holds a token.Record of every token Secret in the cluster. It is a manager runnable
// that runs on every replica (Start, in sync.go); its readers never see a partial list:
// WaitForSync and ReadyCheck say when it is complete.
type Index struct {
	// Secrets lists and watches the token Secrets.
	Secrets corev1client.SecretsGetter
	// Log receives the index's own lines; never a token.
	Log logr.Logger
	// PageSize is how many Secrets one list request asks for (default 500).
	PageSize int64

	mu    sync.RWMutex
	state state
	// listeners are told of every change (see source.go).
	listeners map[int]func(old, updated *token.Record)
	nextID    int
	synced    chan struct{}
	syncOnce  sync.Once
	// listed counts the Secrets the current list has read, for the readiness message.
	listed atomic.Int64
}

// state is the index's maps. A relist builds a new state and swaps it in.
type state struct {
	byKey map[types.NamespacedName]*token.Record
	// byID maps a token id to the Record that holds it; moreByID holds any further Records
	// with the same id (a Secret copied by hand), which is rare.
	byID     map[token.BinaryID]*token.Record
	moreByID map[token.BinaryID][]*token.Record
	// namespaces interns namespace names: every Record of a namespace shares one string.
	namespaces map[string]string
}

func newState() state {
	return state{
		byKey:      map[types.NamespacedName]*token.Record{},
		byID:       map[token.BinaryID]*token.Record{},
		moreByID:   map[token.BinaryID][]*token.Record{},
		namespaces: map[string]string{},
	}
}

// New returns an empty index that reads Secrets through secrets.
func New(secrets corev1client.SecretsGetter, log logr.Logger) *Index {
	return &Index{Secrets: secrets, Log: log, state: newState(), synced: make(chan struct{})}
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
// and digest, and which of its tokens that is; nil when there is none. Comparing digests is
// constant time.
func (x *Index) Find(id token.BinaryID, digest token.Digest) (*token.Record, token.Slot) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	var found *token.Record
	slot := token.SlotNone
	x.state.eachWithID(id, func(r *token.Record) bool {
		if r.Deleting {
			return true
		}
		if s := r.Match(digest); s != token.SlotNone {
			found, slot = r, s
			return false
		}
		return true
	})
	return found, slot
}

// ByID returns the Record of a live Secret holding a token with this id, or nil.
func (x *Index) ByID(id token.BinaryID) *token.Record {
	x.mu.RLock()
	defer x.mu.RUnlock()
	var found *token.Record
	x.state.eachWithID(id, func(r *token.Record) bool {
		if !r.Deleting {
			found = r
		}
		return found == nil
	})
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

// Page returns, in order of namespace and name, the Records of the first limit Secrets after
// the key after (the zero key: from the start), and whether more follow. It keeps limit
// Records in a heap while it scans, so a page costs one pass over the index and no sort of it.
func (x *Index) Page(after types.NamespacedName, limit int) ([]*token.Record, bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	h := &pageHeap{}
	more := false
	for key, r := range x.state.byKey {
		if !keyLess(after, key) {
			continue
		}
		switch {
		case h.Len() < limit:
			heap.Push(h, r)
		case keyLess(key, (*h)[0].Key()):
			more = true
			(*h)[0] = r
			heap.Fix(h, 0)
		default:
			more = true
		}
	}
	out := make([]*token.Record, h.Len())
	for i := len(out) - 1; i >= 0; i-- {
		out[i] = heap.Pop(h).(*token.Record)
	}
	return out, more
}

func keyLess(a, b types.NamespacedName) bool {
	return a.Namespace < b.Namespace || a.Namespace == b.Namespace && a.Name < b.Name
}

// pageHeap is a max-heap of Records by key: its top is the largest of a page's candidates.
type pageHeap []*token.Record

func (h pageHeap) Len() int           { return len(h) }
func (h pageHeap) Less(i, j int) bool { return keyLess(h[j].Key(), h[i].Key()) }
func (h pageHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *pageHeap) Push(v any)        { *h = append(*h, v.(*token.Record)) }
func (h *pageHeap) Pop() any {
	old := *h
	v := old[len(old)-1]
	*h = old[:len(old)-1]
	return v
}

// Census is what the index holds in one namespace, for the metrics.
type Census struct {
	// HTTP counts the live token Secrets issued over HTTP.
	HTTP int
	// Lingering counts the token Secrets, of any source, whose token expired before the
	// cutoff and that are still there: the expiry controller deletes them within seconds.
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
		if r.Source == token.SourceHTTP && !r.Deleting {
			c.HTTP++
		}
		if r.Expired(cutoff) {
			c.Lingering++
		}
	}
	out := make(map[string]Census, len(counts))
	for ns, c := range counts {
		out[ns] = *c
	}
	return out
}

// Len is the number of token Secrets indexed.
func (x *Index) Len() int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return len(x.state.byKey)
}

// Put indexes a Secret this replica has just written, as the API server answered the write,
// unless the index already holds that Secret: the watch's own event for it then only
// confirms it. It lets a writer read its own write at once.
func (x *Index) Put(secret *corev1.Secret) {
	rec, err := token.RecordOf(secret)
	if err != nil {
		return
	}
	x.mu.Lock()
	if _, ok := x.state.byKey[rec.Key()]; ok {
		x.mu.Unlock()
		return
	}
	x.state.set(&rec)
	x.mu.Unlock()
	x.notify(nil, &rec)
}

// Forget drops the Record of a Secret that is gone (a watch's deletion, or a delete that
// found nothing), if it is still that Secret: a newer Secret of the same name stays.
func (x *Index) Forget(key types.NamespacedName, uid types.UID) {
	x.mu.Lock()
	old, ok := x.state.byKey[key]
	if !ok || old.UID != uid {
		x.mu.Unlock()
		return
	}
	x.state.remove(key)
	x.mu.Unlock()
	x.notify(old, nil)
}

// apply records what the watch says of one Secret: its new state, or its deletion.
func (x *Index) apply(secret *corev1.Secret, deleted bool) {
	key := types.NamespacedName{Namespace: secret.Namespace, Name: secret.Name}
	if deleted {
		x.Forget(key, secret.UID)
		return
	}
	rec, ok := x.convert(secret)
	if !ok {
		x.Forget(key, secret.UID)
		return
	}
	x.mu.Lock()
	old := x.state.byKey[key]
	if old != nil && rec.Same(old) {
		x.mu.Unlock()
		return // a confirmation of what Put indexed, or a change the Record does not keep
	}
	x.state.set(&rec)
	x.mu.Unlock()
	x.notify(old, &rec)
}

// convert reads a Secret into its Record, logging (never the token) what does not convert.
func (x *Index) convert(secret *corev1.Secret) (token.Record, bool) {
	rec, err := token.RecordOf(secret)
	if errors.Is(err, token.ErrNotTokenSecret) {
		x.Log.Info("Skipped a Secret that is not a token Secret", "secret", klog.KObj(secret), "reason", err.Error())
		return rec, false
	}
	if err != nil {
		x.Log.Info("Token Secret holds no usable token: it validates nothing until it expires", "secret", klog.KObj(secret),
			"reason", err.Error())
	}
	return rec, true
}

// eachWithID calls fn for every Record holding a token with this id, until fn returns false.
func (s *state) eachWithID(id token.BinaryID, fn func(*token.Record) bool) {
	r, ok := s.byID[id]
	if !ok || !fn(r) {
		return
	}
	for _, r := range s.moreByID[id] {
		if !fn(r) {
			return
		}
	}
}

// set indexes rec, replacing the Record of the same key. rec becomes the index's own.
func (s *state) set(rec *token.Record) {
	rec.Namespace = s.intern(rec.Namespace)
	key := rec.Key()
	if old, ok := s.byKey[key]; ok {
		s.unlinkAll(old)
	}
	s.byKey[key] = rec
	for _, id := range ids(rec) {
		if _, taken := s.byID[id]; taken {
			s.moreByID[id] = append(s.moreByID[id], rec)
		} else {
			s.byID[id] = rec
		}
	}
}

func (s *state) remove(key types.NamespacedName) {
	if old, ok := s.byKey[key]; ok {
		s.unlinkAll(old)
		delete(s.byKey, key)
	}
}

func (s *state) unlinkAll(rec *token.Record) {
	for _, id := range ids(rec) {
		s.unlink(id, rec)
	}
}

// unlink removes rec from the Records of id, promoting another one if there is one.
func (s *state) unlink(id token.BinaryID, rec *token.Record) {
	more := s.moreByID[id]
	if s.byID[id] == rec {
		if len(more) == 0 {
			delete(s.byID, id)
			return
		}
		s.byID[id], more = more[0], more[1:]
	} else {
		for i, r := range more {
			if r == rec {
				more = append(more[:i:i], more[i+1:]...)
				break
			}
		}
	}
	if len(more) == 0 {
		delete(s.moreByID, id)
	} else {
		s.moreByID[id] = more
	}
}

func (s *state) intern(ns string) string {
	if v, ok := s.namespaces[ns]; ok {
		return v
	}
	s.namespaces[ns] = ns
	return ns
}

// ids are the token ids a Record is found by: its current token's and its previous one's.
func ids(rec *token.Record) []token.BinaryID {
	var out []token.BinaryID
	if rec.HasToken {
		out = append(out, rec.Current.ID)
	}
	if rec.HasPrevious && (!rec.HasToken || rec.Previous.ID != rec.Current.ID) {
		out = append(out, rec.Previous.ID)
	}
	return out
}
