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
	"math"
	"slices"

	"github.com/tokenops/token-operator/internal/token"
)

// The index's form of a token slice (issue 23): one packedSlice per slice Secret, its tokens
// in fixed-size entries in id order, and one map from every token id to its slice
// (packedIDs). What a slice event changes is applied entry by entry (packedSlice.update): the
// tokens it did not change keep their entries.

// packedEntry is one token of a slice: 48 bytes, plus what About points to (a subject of its
// own, a Kind shared by every token of one issuer and purpose without metadata).
type packedEntry struct {
	id        token.BinaryID
	digest    digestPrefix
	expiresAt int64
	// lifetime is expiresAt less the issue time, in seconds (at most --http-max-ttl).
	lifetime uint32
	// usesLeft is the token's use count (at most MaxUses), token.Unlimited for none.
	usesLeft int32
	about    *token.About
}

// digestPrefix is the first bytes of a token's SHA-256 digest, what an entry keeps of it and
// what a slice record of the current layout holds (token.SliceDigestBytes): 128 bits, as many
// as the token's secret holds (rand.Text), so a guess matches a live token's with probability
// 2^-128 either way.
type digestPrefix [token.SliceDigestBytes]byte

func prefixOf(d token.Digest) (p digestPrefix) {
	copy(p[:], d[:])
	return p
}

// narrow fits a record's lifetime and use count into an entry's fields; a value beyond them
// (a record edited by hand: the use count is not sealed) reads as the largest one.
func narrow(r token.SliceRecord) (lifetime uint32, usesLeft int32) {
	return uint32(min(max(r.ExpiresAt-r.IssuedAt, 0), math.MaxUint32)), int32(min(r.UsesLeft, math.MaxInt32)) //nolint:gosec // both bounded just before
}

// packedSlice is the index's form of one slice Secret.
type packedSlice struct {
	// rec is the Record of the slice Secret itself (token.PackedSlice), the one byKey holds.
	rec *token.Record
	// rv is the resourceVersion of the Secret entries were read from: an older one (a write's
	// answer that arrives after the watch's newer event) changes nothing.
	rv      string
	entries []packedEntry
	// num is its number in packedIDs, 0 for none.
	num uint32
}

// packedIDs maps every token id to the slice that holds it, by the slice's number in a table:
// 4 bytes a token where a pointer takes 8 (the map of a million ids is the index's largest
// part after the entries).
type packedIDs struct {
	ids map[token.BinaryID]uint32
	// table holds the slices by number; 0 is no slice. free are numbers to use again.
	table []*packedSlice
	free  []uint32
}

func newPackedIDs() packedIDs {
	return packedIDs{ids: map[token.BinaryID]uint32{}, table: []*packedSlice{nil}}
}

// number gives ps a number, once.
func (p *packedIDs) number(ps *packedSlice) {
	if ps.num != 0 {
		return
	}
	if n := len(p.free); n > 0 {
		ps.num, p.free = p.free[n-1], p.free[:n-1]
		p.table[ps.num] = ps
		return
	}
	ps.num = uint32(len(p.table)) //nolint:gosec // fewer slices than 2^32
	p.table = append(p.table, ps)
}

// release frees ps's number: its ids must be gone.
func (p *packedIDs) release(ps *packedSlice) {
	if ps.num != 0 {
		p.table[ps.num], p.free, ps.num = nil, append(p.free, ps.num), 0
	}
}

func (p *packedIDs) set(id token.BinaryID, ps *packedSlice) { p.ids[id] = ps.num }

// get is the slice holding id, nil for none.
func (p *packedIDs) get(id token.BinaryID) *packedSlice { return p.table[p.ids[id]] }

// forget forgets id if ps holds it.
func (p *packedIDs) forget(id token.BinaryID, ps *packedSlice) {
	if n, ok := p.ids[id]; ok && n == ps.num {
		delete(p.ids, id)
	}
}

func (p *packedIDs) len() int { return len(p.ids) }

// entryOf is r's entry; it keeps prev's About when r says the same of whom and what for.
func entryOf(r token.SliceRecord, k kinds, prev *packedEntry) packedEntry {
	e := packedEntry{id: r.ID, digest: prefixOf(r.Digest), expiresAt: r.ExpiresAt}
	e.lifetime, e.usesLeft = narrow(r)
	switch {
	case prev != nil && prev.sameAbout(r):
		e.about = prev.about
	case r.Subject != "" || r.Purpose != "" || r.Issuer != "" || r.Metadata != "":
		e.about = &token.About{Subject: r.Subject, Kind: k.intern(&token.Kind{Issuer: r.Issuer, Purpose: r.Purpose, Metadata: r.Metadata})}
	}
	return e
}

// same reports whether an entry already says what r says.
func (e *packedEntry) same(r token.SliceRecord) bool {
	lifetime, usesLeft := narrow(r)
	return e.digest == prefixOf(r.Digest) && e.expiresAt == r.ExpiresAt && e.lifetime == lifetime && e.usesLeft == usesLeft && e.sameAbout(r)
}

// sameAbout reports whether an entry says what r says of whom and what the token is for.
func (e *packedEntry) sameAbout(r token.SliceRecord) bool {
	var subject, issuer, purpose, metadata string
	if e.about != nil {
		subject, issuer, purpose, metadata = e.about.Subject, e.about.Kind.Issuer, e.about.Kind.Purpose, e.about.Kind.Metadata
	}
	return subject == r.Subject && issuer == r.Issuer && purpose == r.Purpose && metadata == r.Metadata
}

// update makes s hold records (in id order, as token.SliceRecords reads them), changing only
// the entries that differ. A record new or changed is held only if admit says so (nil:
// every one); one refused is as absent. changed is told of every entry added (old nil),
// changed or removed (updated nil), with copies that are valid during the call only.
func (s *packedSlice) update(records []token.SliceRecord, k kinds, admit func(token.SliceRecord) bool,
	changed func(old, updated *packedEntry)) {
	next := make([]packedEntry, 0, len(records))
	old := s.entries
	i := 0
	for _, r := range records {
		for i < len(old) && lessID(old[i].id, r.ID) {
			changed(&old[i], nil)
			i++
		}
		var prev *packedEntry
		if i < len(old) && old[i].id == r.ID {
			prev = &old[i]
			i++
		}
		switch {
		case prev != nil && prev.same(r):
			next = append(next, *prev) // unchanged: its About and all
		case admit == nil || admit(r):
			next = append(next, entryOf(r, k, prev))
			changed(prev, &next[len(next)-1])
		case prev != nil:
			changed(prev, nil)
		}
	}
	for ; i < len(old); i++ {
		changed(&old[i], nil)
	}
	s.entries = slices.Clip(next)
}

// entry is the Record of the token with this id in s, if s holds it.
func (s *packedSlice) entry(id token.BinaryID) (token.Record, bool) {
	e := s.at(id)
	if e == nil {
		return token.Record{}, false
	}
	return s.recordOf(e), true
}

// at is the entry of the token with this id in s, nil for none.
func (s *packedSlice) at(id token.BinaryID) *packedEntry {
	i, ok := slices.BinarySearchFunc(s.entries, id, func(e packedEntry, id token.BinaryID) int { return compareID(e.id, id) })
	if !ok {
		return nil
	}
	return &s.entries[i]
}

// recordOf is the Record of one of s's entries; its digest holds the entry's prefix (the rest
// zero).
func (s *packedSlice) recordOf(e *packedEntry) token.Record {
	var digest token.Digest
	copy(digest[:], e.digest[:])
	return token.EntryOf(s.rec, e.id, digest, e.expiresAt-int64(e.lifetime), e.expiresAt, int64(e.usesLeft), e.about)
}

// live is how many tokens s holds that count as live HTTP tokens (Census.HTTP).
func (s *packedSlice) live() int {
	if s.rec.Source != token.SourceHTTP || s.rec.Deleting {
		return 0
	}
	return len(s.entries)
}

// find is the entry of the token with this id and digest in s, nil for none (the digest
// compared in constant time).
func (s *packedSlice) find(id token.BinaryID, digest token.Digest) *packedEntry {
	e := s.at(id)
	if e == nil || subtle.ConstantTimeCompare(e.digest[:], digest[:len(digestPrefix{})]) != 1 {
		return nil
	}
	return e
}

func lessID(a, b token.BinaryID) bool { return compareID(a, b) < 0 }

func compareID(a, b token.BinaryID) int { return bytes.Compare(a[:], b[:]) }
