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
	"github.com/google/btree"
	"k8s.io/apimachinery/pkg/types"

	"github.com/tokenops/token-operator/internal/token"
)

// state is the index's maps. A relist builds a new state and swaps it in.
type state struct {
	byKey map[types.NamespacedName]*token.Record
	// byID maps a token id to the Record that holds it; moreByID holds any further Records
	// with the same id (a Secret copied by hand), which is rare.
	byID     map[token.BinaryID]*token.Record
	moreByID map[token.BinaryID][]*token.Record
	// namespaces interns namespace names: every Record of a namespace shares one string.
	namespaces map[string]string
	// kinds interns the Kinds of tokens issued over HTTP without metadata (internKind).
	kinds kinds
	// keys holds the key of every Record, in order of namespace and name, for Page. A key is
	// added or removed only when a Secret appears or goes: a change to an indexed Secret (most
	// watch events) leaves it alone.
	keys *btree.BTreeG[types.NamespacedName]
	// subjects holds every Record with a subject, in order of issuer, subject, namespace and
	// name: the Records of one issuer's subject are a range of it (BySubject), found in
	// O(log N) and walked in O(their number), for a pointer per Record.
	subjects *btree.BTreeG[*token.Record]
	// issuers counts the Records in subjects and the tokens in sliceSubjects of each issuer,
	// for a lookup across issuers.
	issuers map[string]int
	// liveHTTP counts the Records of live (not deleting) tokens issued over HTTP, kept by set
	// and remove so that the HTTP API's cap on them costs no scan.
	liveHTTP int
	// slices are the index's form of the token slices (packed.go, slices.go): one per slice
	// Secret, whose own Record byKey holds.
	slices map[types.NamespacedName]*packedSlice
	// sliceIDs finds the slice holding a token by its id.
	sliceIDs packedIDs
	// sliceSubjects holds every token of a slice with a subject, in the order of subjects,
	// then by slice and id: what subjects is for Records.
	sliceSubjects *btree.BTreeG[sliceSubject]
	// laterSubjects, while a snapshot is read (bulk), collects what sliceSubjects is to hold,
	// for loadSubjects.
	laterSubjects []sliceSubject
	bulk          bool
}

// keysDegree is the degree of the keys' B-tree: nodes of up to 63 keys, the library's usual.
const keysDegree = 32

func newState() state {
	return state{
		byKey:      map[types.NamespacedName]*token.Record{},
		byID:       map[token.BinaryID]*token.Record{},
		moreByID:   map[token.BinaryID][]*token.Record{},
		namespaces: map[string]string{},
		kinds:      kinds{},
		keys:       btree.NewG(keysDegree, keyLess),
		subjects:   btree.NewG(keysDegree, subjectLess),
		issuers:    map[string]int{},

		slices:        map[types.NamespacedName]*packedSlice{},
		sliceIDs:      newPackedIDs(),
		sliceSubjects: btree.NewG(keysDegree, sliceSubjectLess),
	}
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
	if rec.About != nil {
		rec.About.Kind = s.internKind(rec)
	}
	if old, ok := s.byKey[rec.Key()]; ok {
		rec.Name = old.Name // the string keys holds: one copy of each name
		s.unlinkAll(old)
		s.liveHTTP -= liveHTTP(old)
		s.unsubject(old)
	} else {
		s.keys.ReplaceOrInsert(rec.Key())
	}
	s.byKey[rec.Key()] = rec
	s.liveHTTP += liveHTTP(rec)
	if rec.Subject() != "" {
		s.subjects.ReplaceOrInsert(rec)
		s.issuers[rec.About.Kind.Issuer]++
	}
	for _, id := range ids(rec) {
		if _, taken := s.byID[id]; taken {
			s.moreByID[id] = append(s.moreByID[id], rec)
		} else {
			s.byID[id] = rec
		}
	}
}

func (s *state) remove(key types.NamespacedName) {
	if old, ok := s.byKey[key]; ok && old.Packing == token.PackedSlice {
		s.removeSlice(key)
	} else if ok {
		s.unlinkAll(old)
		s.liveHTTP -= liveHTTP(old)
		s.unsubject(old)
		delete(s.byKey, key)
		s.keys.Delete(key)
	}
}

// unsubject removes rec from subjects.
func (s *state) unsubject(rec *token.Record) {
	if rec.Subject() == "" {
		return
	}
	s.subjects.Delete(rec)
	issuer := rec.About.Kind.Issuer
	if s.issuers[issuer]--; s.issuers[issuer] <= 0 {
		delete(s.issuers, issuer)
	}
}

// subjectLess orders Records with a subject by issuer (Kind.Issuer, "" for anonymous),
// subject, namespace and name; a Record without a namespace and name is the first of its
// issuer's subject (BySubject's pivot).
func subjectLess(a, b *token.Record) bool {
	if a.About.Kind.Issuer != b.About.Kind.Issuer {
		return a.About.Kind.Issuer < b.About.Kind.Issuer
	}
	if a.About.Subject != b.About.Subject {
		return a.About.Subject < b.About.Subject
	}
	return keyLess(a.Key(), b.Key())
}

// liveHTTP is 1 for the Record of a live token issued over HTTP, as Census counts them (a
// slice's tokens count as packedSlice.live).
func liveHTTP(rec *token.Record) int {
	if rec.Source == token.SourceHTTP && !rec.Deleting && rec.Packing == token.PackedNone {
		return 1
	}
	return 0
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

// internKind is the index's one Kind for rec's issuer and purpose, for a token issued over
// HTTP without metadata: the few issuers and purposes are shared by many tokens. A
// TokenRequest's Kind (its issuer is its own) and one with metadata stay the Record's.
func (s *state) internKind(rec *token.Record) *token.Kind {
	if rec.Controller != nil {
		return rec.About.Kind
	}
	return s.kinds.intern(rec.About.Kind)
}

// kinds interns Kinds: one per issuer and purpose without metadata.
type kinds map[token.Kind]*token.Kind

// intern is the one Kind equal to k when k has no metadata (k itself the first time), else k.
func (m kinds) intern(k *token.Kind) *token.Kind {
	if k.Metadata != "" {
		return k
	}
	if shared, ok := m[*k]; ok {
		return shared
	}
	m[*k] = k
	return k
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
	if rec.HasPrevious() && (!rec.HasToken || rec.Previous().ID != rec.Current.ID) {
		out = append(out, rec.Previous().ID)
	}
	return out
}
