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

	"github.com/tokenops/token-operator/internal/metrics"
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
// unless the index already holds that Secret (for a token slice: that version of it or a
// newer one): the watch's own event for it then only confirms it. It lets a writer read its
// own write at once.
func (x *Index) Put(secret *corev1.Secret) {
	if x.applySlice(secret) {
		return
	}
	rec, ok := x.convert(secret)
	if !ok {
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
	if x.applySlice(secret) {
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
	st := newState()
	st.bulk = true
	return &Snapshot{index: x, state: st}
}

// Add reads one listed Secret into the snapshot; a Secret that is not a token Secret is
// skipped.
func (s *Snapshot) Add(secret *corev1.Secret) {
	if rec, records, admit, ok, isSlice := s.index.readSlice(secret); isSlice {
		if ok {
			s.state.setSlice(&rec, secret.ResourceVersion, records, admit)
		}
		return
	}
	if rec, ok := s.index.convert(secret); ok {
		s.state.set(&rec)
	}
}

// Replace swaps in a complete snapshot, tells the listeners of every Record it added,
// changed or removed, and marks the index synced.
func (x *Index) Replace(s *Snapshot) {
	s.state.loadSubjects()
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

// convert reads a Secret into its Record, and admits it only if the operator wrote it as it
// is (Trust): a refused Secret is counted and reported, and costs the index nothing. It logs
// (never the token) what does not convert.
func (x *Index) convert(secret *corev1.Secret) (token.Record, bool) {
	rec, err := token.RecordOf(secret)
	if errors.Is(err, token.ErrNotTokenSecret) {
		x.Log.Info("Skipped a Secret that is not a token Secret", "secret", klog.KObj(secret), "reason", err.Error())
		return rec, false
	}
	ok, reason := x.admit(secret, &rec)
	if !ok {
		x.refuse(secret, reason)
	}
	return rec, ok
}

// admit decides whether the Secret read into rec is admitted, and completes rec with what
// provenance says of it (Sealed, Bound).
func (x *Index) admit(secret *corev1.Secret, rec *token.Record) (bool, string) {
	if x.Trust == nil {
		rec.Sealed = true
		return true, ""
	}
	binding := x.bindingOf(rec)
	v := x.Trust.Check(secret, rec, binding)
	if !v.Admit {
		return false, v.Reason
	}
	rec.Sealed = v.Sealed
	if rec.Source == token.SourceTokenRequest {
		rec.Bound = rec.BoundBy(binding)
	}
	return true, ""
}

// refuse counts a token Secret that Trust did not admit, and names it in the log the first
// time, at most reportRate lines a second (a bounded memory of the names reported and a rate
// limit, so that a million planted Secrets grow nothing and flood no log: the metric counts
// them all).
func (x *Index) refuse(secret *corev1.Secret, reason string) {
	metrics.UntrustedSecrets.WithLabelValues(secret.Namespace).Inc()
	name := secret.Namespace + "/" + secret.Name
	x.reportedMu.Lock()
	_, seen := x.reported.Get(name)
	if !seen {
		x.reported.Add(name, struct{}{})
	}
	allowed := !seen && x.reportLimit.Allow()
	x.reportedMu.Unlock()
	if allowed {
		x.Log.Info("Ignored a token Secret the operator did not write as it is: it validates nothing and is never deleted "+
			"or changed by the operator", "secret", klog.KObj(secret), "reason", reason)
	}
}

// bindingOf is the Binding of the TokenRequest that controls rec, nil when none is known.
func (x *Index) bindingOf(rec *token.Record) *token.Binding {
	if rec.Controller == nil {
		return nil
	}
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.bindings[types.NamespacedName{Namespace: rec.Namespace, Name: rec.Controller.Name}]
}

// Bind records what the status of the TokenRequest tr says of its token (nil: the
// TokenRequest is gone), and re-bounds the Record of its Secret: from now on that Secret's
// tokens prove only what the status records.
func (x *Index) Bind(tr types.NamespacedName, b *token.Binding) {
	x.mu.Lock()
	old := x.bindings[tr]
	if b == nil {
		delete(x.bindings, tr)
	} else {
		x.bindings[tr] = b
	}
	var names []string
	for _, o := range []*token.Binding{old, b} {
		if o != nil {
			names = append(names, o.SecretName)
		}
	}
	type change struct{ old, updated *token.Record }
	var changes []change
	for _, name := range names {
		rec := x.state.byKey[types.NamespacedName{Namespace: tr.Namespace, Name: name}]
		if rec == nil || rec.Controller == nil || rec.Controller.Name != tr.Name {
			continue
		}
		updated := *rec
		if updated.Bound = updated.BoundBy(b); !updated.Same(rec) {
			x.state.set(&updated)
			changes = append(changes, change{rec, &updated})
		}
	}
	x.mu.Unlock()
	for _, c := range changes {
		x.notify(c.old, c.updated)
	}
}

// Admit reads a Secret as the index would, without indexing, counting or reporting it: for a
// writer that read the Secret from the API server and must judge it as validation would (a
// redemption, the TokenRequest controller). err is token.ErrNotTokenSecret for a Secret that
// is not a token Secret; otherwise rec is its Record and admitted says whether the index
// would admit it.
func (x *Index) Admit(secret *corev1.Secret) (rec token.Record, admitted bool, err error) {
	rec, err = token.RecordOf(secret)
	if errors.Is(err, token.ErrNotTokenSecret) {
		return rec, false, err
	}
	admitted, _ = x.admit(secret, &rec)
	return rec, admitted, nil
}
