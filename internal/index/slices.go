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
	"cmp"
	"slices"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/resourceversion"

	"github.com/tokenops/token-operator/internal/token"
)

// sliceSubject is one token of a slice with a subject, in state.sliceSubjects: 24 bytes.
type sliceSubject struct {
	about *token.About
	slice *packedSlice
	id    token.BinaryID
}

// sliceSubjectLess orders sliceSubjects by issuer, subject, namespace, slice name and id; an
// item without a slice is the first of its issuer's subject (BySubject's pivot).
func sliceSubjectLess(a, b sliceSubject) bool {
	return compareSliceSubject(a, b) < 0
}

func compareSliceSubject(a, b sliceSubject) int {
	if c := cmp.Or(cmp.Compare(a.about.Kind.Issuer, b.about.Kind.Issuer), cmp.Compare(a.about.Subject, b.about.Subject)); c != 0 {
		return c
	}
	if a.slice == nil || b.slice == nil { // the pivot first
		return cmp.Compare(bit(b.slice == nil), bit(a.slice == nil))
	}
	return cmp.Or(cmp.Compare(a.slice.rec.Namespace, b.slice.rec.Namespace), cmp.Compare(a.slice.rec.Name, b.slice.rec.Name),
		compareID(a.id, b.id))
}

func bit(b bool) int {
	if b {
		return 1
	}
	return 0
}

// newer reports whether the slice Secret at resourceVersion rv is newer than held: always for
// a slice not held, or one held under another UID (deleted and created again), or a
// resourceVersion that does not compare (a Secret built by hand, in tests).
func newer(held *packedSlice, rec *token.Record, rv string) bool {
	if held == nil || held.rec.UID != rec.UID {
		return true
	}
	c, err := resourceversion.CompareResourceVersion(rv, held.rv)
	return err != nil || c > 0
}

// setSlice indexes the slice Secret read into rec (token.SliceOf) at resourceVersion rv with
// its records, changing only the tokens that changed; admit decides on each new or changed
// record (nil: every one). rec becomes the index's own.
func (s *state) setSlice(rec *token.Record, rv string, records []token.SliceRecord, admit func(token.SliceRecord) bool) {
	rec.Namespace = s.intern(rec.Namespace)
	key := rec.Key()
	ps := s.slices[key]
	if ps != nil && ps.rec.UID != rec.UID {
		s.removeSlice(key)
		ps = nil
	}
	if ps == nil {
		ps = &packedSlice{}
		s.sliceIDs.number(ps)
		s.slices[key] = ps
		s.keys.ReplaceOrInsert(key)
	} else {
		rec.Name = ps.rec.Name // the string keys holds
		s.liveHTTP -= ps.live()
	}
	ps.rec, ps.rv = rec, rv
	s.byKey[key] = rec
	ps.update(records, s.kinds, admit, func(old, updated *packedEntry) {
		if old != nil {
			s.unlinkEntry(ps, old)
		}
		if updated != nil {
			s.sliceIDs.set(updated.id, ps)
			if updated.about != nil && updated.about.Subject != "" {
				s.linkSubject(sliceSubject{about: updated.about, slice: ps, id: updated.id})
				s.issuers[updated.about.Kind.Issuer]++
			}
		}
	})
	s.liveHTTP += ps.live()
}

// linkSubject puts it into sliceSubjects, or, while a snapshot is read, aside for
// loadSubjects.
func (s *state) linkSubject(it sliceSubject) {
	if s.bulk {
		s.laterSubjects = append(s.laterSubjects, it)
		return
	}
	s.sliceSubjects.ReplaceOrInsert(it)
}

// loadSubjects puts the subjects a snapshot set aside into sliceSubjects, in descending order,
// and ends bulk reading. A list reads slices in name order, which is issue order, so that
// subjects issued in order (user ids counted up) would arrive ascending: a B-tree's worst
// case, every split leaving a node half full for good (48 B a 24-byte item at a million).
// Descending, each split leaves a full node behind. An item whose entry a later event of the
// snapshot replaced or removed is skipped.
func (s *state) loadSubjects() {
	slices.SortFunc(s.laterSubjects, func(a, b sliceSubject) int { return compareSliceSubject(b, a) })
	for _, it := range s.laterSubjects {
		if e := it.slice.at(it.id); e != nil && e.about == it.about && s.slices[it.slice.rec.Key()] == it.slice {
			s.sliceSubjects.ReplaceOrInsert(it)
		}
	}
	s.laterSubjects, s.bulk = nil, false
}

// unlinkEntry forgets one entry of ps in sliceIDs and sliceSubjects.
func (s *state) unlinkEntry(ps *packedSlice, e *packedEntry) {
	s.sliceIDs.forget(e.id, ps)
	if e.about != nil && e.about.Subject != "" {
		s.sliceSubjects.Delete(sliceSubject{about: e.about, slice: ps, id: e.id})
		if s.issuers[e.about.Kind.Issuer]--; s.issuers[e.about.Kind.Issuer] <= 0 {
			delete(s.issuers, e.about.Kind.Issuer)
		}
	}
}

// removeSlice forgets the slice of key and every token in it.
func (s *state) removeSlice(key types.NamespacedName) {
	ps := s.slices[key]
	if ps == nil {
		return
	}
	for i := range ps.entries {
		s.unlinkEntry(ps, &ps.entries[i])
	}
	s.liveHTTP -= ps.live()
	s.sliceIDs.release(ps)
	delete(s.slices, key)
	delete(s.byKey, key)
	s.keys.Delete(key)
}

// findInSlice is the Record of the token of a slice with this id and digest, if one holds
// it and is not being deleted.
func (s *state) findInSlice(id token.BinaryID, digest token.Digest) (token.Record, bool) {
	ps := s.sliceIDs.get(id)
	if ps == nil || ps.rec.Deleting {
		return token.Record{}, false
	}
	e := ps.find(id, digest)
	if e == nil {
		return token.Record{}, false
	}
	return ps.recordOf(e), true
}

// sliceByID is the Record of the token of a slice with this id, if one holds it and is not
// being deleted.
func (s *state) sliceByID(id token.BinaryID) (token.Record, bool) {
	ps := s.sliceIDs.get(id)
	if ps == nil || ps.rec.Deleting {
		return token.Record{}, false
	}
	return ps.entry(id)
}

// Entries returns the Records of the tokens of the slice with this key (token.PackedEntry),
// built for the call; none for a key that is not a slice's.
func (x *Index) Entries(key types.NamespacedName) []*token.Record {
	x.mu.RLock()
	defer x.mu.RUnlock()
	ps := x.state.slices[key]
	if ps == nil {
		return nil
	}
	out := make([]*token.Record, len(ps.entries))
	for i := range ps.entries {
		r := ps.recordOf(&ps.entries[i])
		out[i] = &r
	}
	return out
}

// SliceLen is how many tokens the slice with this key holds; 0 for a key that is not a slice's.
func (x *Index) SliceLen(key types.NamespacedName) int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	if ps := x.state.slices[key]; ps != nil {
		return len(ps.entries)
	}
	return 0
}
