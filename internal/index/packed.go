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
	"bytes"
	"crypto/subtle"
	"slices"

	"github.com/tokenops/token-operator/internal/token"
)

// The index's form of a token slice (issue 23), measured but not yet used: one packedSlice
// per slice Secret, its tokens in fixed-size entries in id order, and one map from every
// token id to its slice (packedIDs). What a slice event changes is applied entry by entry
// (packedSlice.update): the tokens it did not change keep their entries.

// packedEntry is one token of a slice: 72 bytes, plus what About points to (a subject of its
// own, a Kind shared by every token of one issuer and purpose without metadata).
type packedEntry struct {
	id                  token.BinaryID
	digest              token.Digest
	issuedAt, expiresAt int64
	// usesLeft is the token's use count, token.Unlimited for none.
	usesLeft int64
	about    *token.About
}

// packedSlice is the index's form of one slice Secret.
type packedSlice struct {
	namespace, name string
	entries         []packedEntry
}

// packedIDs maps every token id to the slice that holds it.
type packedIDs map[token.BinaryID]*packedSlice

func entryOf(r token.SliceRecord, k kinds) packedEntry {
	e := packedEntry{id: r.ID, digest: r.Digest, issuedAt: r.IssuedAt, expiresAt: r.ExpiresAt, usesLeft: r.UsesLeft}
	if r.Subject != "" || r.Purpose != "" || r.Issuer != "" || r.Metadata != "" {
		e.about = &token.About{Subject: r.Subject, Kind: k.intern(&token.Kind{Issuer: r.Issuer, Purpose: r.Purpose, Metadata: r.Metadata})}
	}
	return e
}

// same reports whether an entry already says what r says.
func (e *packedEntry) same(r token.SliceRecord) bool {
	var subject, issuer, purpose, metadata string
	if e.about != nil {
		subject, issuer, purpose, metadata = e.about.Subject, e.about.Kind.Issuer, e.about.Kind.Purpose, e.about.Kind.Metadata
	}
	return e.digest == r.Digest && e.issuedAt == r.IssuedAt && e.expiresAt == r.ExpiresAt && e.usesLeft == r.UsesLeft &&
		subject == r.Subject && issuer == r.Issuer && purpose == r.Purpose && metadata == r.Metadata
}

// update makes s hold records (in id order, as token.SliceRecords reads them), changing only
// the entries that differ, and keeps ids in step; it answers the ids it added, changed and
// removed.
func (s *packedSlice) update(records []token.SliceRecord, ids packedIDs, k kinds) (added, changed, removed []token.BinaryID) {
	next := make([]packedEntry, 0, len(records))
	old := s.entries
	i := 0
	for _, r := range records {
		for i < len(old) && lessID(old[i].id, r.ID) {
			removed = append(removed, old[i].id)
			i++
		}
		switch {
		case i < len(old) && old[i].id == r.ID && old[i].same(r):
			next = append(next, old[i]) // unchanged: its About and all
			i++
		case i < len(old) && old[i].id == r.ID:
			next = append(next, entryOf(r, k))
			changed = append(changed, r.ID)
			i++
		default:
			next = append(next, entryOf(r, k))
			added = append(added, r.ID)
		}
	}
	for ; i < len(old); i++ {
		removed = append(removed, old[i].id)
	}
	s.entries = slices.Clip(next)
	for _, id := range removed {
		if ids[id] == s {
			delete(ids, id)
		}
	}
	for _, id := range added {
		ids[id] = s
	}
	return added, changed, removed
}

// find is the entry of the token with this id and digest in s, nil for none (the digest
// compared in constant time).
func (s *packedSlice) find(id token.BinaryID, digest token.Digest) *packedEntry {
	i, ok := slices.BinarySearchFunc(s.entries, id, func(e packedEntry, id token.BinaryID) int { return compareID(e.id, id) })
	if !ok || subtle.ConstantTimeCompare(s.entries[i].digest[:], digest[:]) != 1 {
		return nil
	}
	return &s.entries[i]
}

func lessID(a, b token.BinaryID) bool { return compareID(a, b) < 0 }

func compareID(a, b token.BinaryID) int { return bytes.Compare(a[:], b[:]) }
