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

package index

import (
	"errors"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"

	"github.com/tokenops/token-operator/internal/token"
)

// Listener is told of one change: old is nil for a Secret newly indexed, updated is nil for
// one gone. Listeners only queue work: they never block, and never call the index's writers.
type Listener func(old, updated *token.Record)

// Subscribe tells fn of every change from now on, until the returned function is called.
func (x *Index) Subscribe(fn Listener) (unsubscribe func()) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.listeners == nil {
		x.listeners = map[int]Listener{}
	}
	x.nextID++
	id := x.nextID
	x.listeners[id] = fn
	return func() {
		x.mu.Lock()
		defer x.mu.Unlock()
		delete(x.listeners, id)
	}
}

// notify tells every listener of one change.
func (x *Index) notify(old, updated *token.Record) {
	x.mu.RLock()
	fns := make([]Listener, 0, len(x.listeners))
	for _, fn := range x.listeners {
		fns = append(fns, fn)
	}
	x.mu.RUnlock()
	for _, fn := range fns {
		fn(old, updated)
	}
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

// Apply records what a watch says of one Secret: its new state, or its deletion.
func (x *Index) Apply(secret *corev1.Secret, deleted bool) {
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

// Snapshot is a complete list of the token Secrets being read into Records, for Replace. It
// keeps Records only, so a list read page by page never holds more than a page of Secrets.
type Snapshot struct {
	index *Index
	state state
}

// NewSnapshot starts an empty snapshot.
func (x *Index) NewSnapshot() *Snapshot {
	return &Snapshot{index: x, state: newState()}
}

// Add reads one listed Secret into the snapshot; a Secret that is not a token Secret is
// skipped.
func (s *Snapshot) Add(secret *corev1.Secret) {
	if rec, ok := s.index.convert(secret); ok {
		s.state.set(&rec)
	}
}

// Replace swaps in a complete snapshot, tells the listeners of every Record it added,
// changed or removed, and marks the index synced.
func (x *Index) Replace(s *Snapshot) {
	x.mu.Lock()
	old := x.state
	x.state = s.state
	x.mu.Unlock()
	x.notifyDiff(old, s.state)
	x.syncOnce.Do(func() { close(x.synced) })
}

// notifyDiff tells the listeners of every Record that a relist added, changed or removed.
func (x *Index) notifyDiff(old, next state) {
	for key, rec := range next.byKey {
		if prev, ok := old.byKey[key]; !ok || !prev.Same(rec) {
			x.notify(prev, rec)
		}
	}
	for key, prev := range old.byKey {
		if _, ok := next.byKey[key]; !ok {
			x.notify(prev, nil)
		}
	}
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
