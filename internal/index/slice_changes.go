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
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/tokenops/token-operator/internal/provenance"
	"github.com/tokenops/token-operator/internal/token"
)

// readSlice reads a token slice as the index admits it: the slice's own Record, its records,
// and what admits each new or changed one (its seal). ok is false for a slice refused whole
// (counted and reported); isSlice is false for a Secret that is not a slice.
func (x *Index) readSlice(secret *corev1.Secret) (rec token.Record, records []token.SliceRecord,
	admit func(token.SliceRecord) bool, ok, isSlice bool) {
	rec, records, bad, err := token.SliceOf(secret)
	if err != nil {
		return rec, nil, nil, false, false
	}
	if len(bad) > 0 {
		x.refuse(secret, provenance.ReasonSliceRecord)
	}
	if x.Trust == nil {
		rec.Sealed = true
		return rec, records, nil, true, true
	}
	if v := x.Trust.CheckSlice(secret, &rec); !v.Admit {
		x.refuse(secret, v.Reason)
		return rec, nil, nil, false, true
	}
	rec.Sealed = true
	verify := x.Trust.SliceVerifier(secret)
	reported := false
	admit = func(r token.SliceRecord) bool {
		if verify(r) {
			return true
		}
		if !reported {
			reported = true
			x.refuse(secret, provenance.ReasonSliceRecord)
		}
		return false
	}
	return rec, records, admit, true, true
}

// applySlice indexes what a token slice says (a write's answer, a watch's event), changing
// only the tokens that changed, unless the index holds that version of it or a newer one: an
// answer that arrives after the watch's newer event changes nothing. It reports false for a
// Secret that is not a slice.
func (x *Index) applySlice(secret *corev1.Secret) bool {
	if !token.IsSliceSecret(secret) {
		return false
	}
	if x.holds(secret) {
		return true // the watch's event of this replica's own write: read already
	}
	rec, records, admit, ok, isSlice := x.readSlice(secret)
	switch {
	case !isSlice:
		return false
	case !ok:
		x.Forget(rec.Key(), secret.UID)
		return true
	}
	x.mu.Lock()
	if !newer(x.state.slices[rec.Key()], &rec, secret.ResourceVersion) {
		x.mu.Unlock()
		return true
	}
	old := x.state.byKey[rec.Key()]
	x.state.setSlice(&rec, secret.ResourceVersion, records, admit)
	x.mu.Unlock()
	if old == nil || !old.Same(&rec) {
		x.notify(old, &rec)
	}
	return true
}

// holds reports whether the index holds this version of the slice Secret or a newer one,
// before anything of it is read.
func (x *Index) holds(secret *corev1.Secret) bool {
	x.mu.RLock()
	defer x.mu.RUnlock()
	held := x.state.slices[types.NamespacedName{Namespace: secret.Namespace, Name: secret.Name}]
	return !newer(held, &token.Record{UID: secret.UID}, secret.ResourceVersion)
}
