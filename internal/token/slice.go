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

package token

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// A token slice (issue 23) packs many tokens issued over HTTP into one Secret, one data entry
// per token: the key is the token's id (SliceKey), the value its SliceRecord in a compact
// binary form (AppendSliceRecord, ParseSliceRecord), never the token. The store writes slices,
// the index reads them.

// The first byte of a record names its layout; a new layout takes a new one. Layout 1 held
// the whole SHA-256 digest of the token; layout 2, written since, holds its first
// SliceDigestBytes, as much as the index compares: 16 bytes less per token in every copy of a
// slice the API server and each watcher keep (a typical record falls from 97 bytes to 81, a
// 96-byte allocation where it took 112). Both are read.
const (
	sliceRecordV1 = 1
	sliceRecordV2 = 2
)

// SliceDigestBytes is how much of a token's digest a record of the current layout holds: 128
// bits, as much as a forger must find a preimage of.
const SliceDigestBytes = 16

// sliceFlagLimited marks a record with a use count.
const sliceFlagLimited = 1

// maxSliceString bounds each string of a record (subject, purpose, issuer, metadata, seal), so
// that a forged record cannot make a reader allocate much: above every bound of the HTTP API.
const maxSliceString = 4096

// SliceRecord is one token of a token slice: what validation, redemption and lookup need of
// it. Times are Unix seconds.
type SliceRecord struct {
	ID BinaryID
	// Digest is the token's digest; a record of the current layout holds its first
	// SliceDigestBytes (the rest reads as zero).
	Digest              Digest
	IssuedAt, ExpiresAt int64
	// UsesLeft is the token's use count; Unlimited for a token without one.
	UsesLeft int64
	// Subject, Purpose and Issuer say whom and what the token is for and who issued it
	// ("" for none; the store may write "" for the anonymous issuer). Metadata is its
	// metadata as canonical JSON, "" for none.
	Subject, Purpose, Issuer, Metadata string
	// Seal is the operator's MAC over the record (package provenance): opaque here.
	Seal []byte
	// layout is sliceRecordV1 for a record read in that layout (so that it is written back,
	// and sealed, as it was read); zero for the current one.
	layout byte
}

// version is the first byte of r's layout.
func (r *SliceRecord) version() byte {
	if r.layout == sliceRecordV1 {
		return sliceRecordV1
	}
	return sliceRecordV2
}

// digestBytes is how many bytes of its digest r's layout holds.
func (r *SliceRecord) digestBytes() int {
	if r.version() == sliceRecordV1 {
		return len(r.Digest)
	}
	return SliceDigestBytes
}

// SliceKey is the data key of a token's record in its slice: its id as clients see it.
func SliceKey(id BinaryID) string { return id.String() }

// AppendSliceRecord appends r's value (everything but its id, which is the key) to dst, in
// the layout it was read in (the current one for a new record): version, flags, the digest
// (SliceDigestBytes of it in the current layout), issue time, lifetime, the use count when limited, then the strings,
// each length-prefixed. Integers are unsigned varints; a record that expires before it was
// issued, or a negative use count, is written as its issue time and 0.
func AppendSliceRecord(dst []byte, r SliceRecord) []byte {
	flags := byte(0)
	if r.UsesLeft != Unlimited {
		flags |= sliceFlagLimited
	}
	dst = append(dst, r.version(), flags)
	dst = append(dst, r.Digest[:r.digestBytes()]...)
	dst = binary.AppendUvarint(dst, uint64(max(r.IssuedAt, 0)))
	dst = binary.AppendUvarint(dst, uint64(max(r.ExpiresAt-max(r.IssuedAt, 0), 0)))
	if flags&sliceFlagLimited != 0 {
		dst = binary.AppendUvarint(dst, uint64(max(r.UsesLeft, 0)))
	}
	for _, s := range [][]byte{[]byte(r.Subject), []byte(r.Purpose), []byte(r.Issuer), []byte(r.Metadata), r.Seal} {
		dst = binary.AppendUvarint(dst, uint64(len(s)))
		dst = append(dst, s...)
	}
	return dst
}

// errSliceRecord: a record that is not one AppendSliceRecord writes.
var errSliceRecord = errors.New("not a token slice record")

// ParseSliceRecord reads the record of the token whose data key is key. It accepts only what
// AppendSliceRecord writes, byte for byte (one encoding per record, so that a record's bytes
// can be compared and patched as a whole), within maxSliceString per string.
func ParseSliceRecord(key string, value []byte) (SliceRecord, error) {
	id, ok := ParseID(key)
	if !ok {
		return SliceRecord{}, fmt.Errorf("data key %q: %w", truncateKey(key), errSliceRecord)
	}
	r := SliceRecord{ID: id, UsesLeft: Unlimited}
	if len(value) > 0 && value[0] == sliceRecordV1 {
		r.layout = sliceRecordV1
	}
	if len(value) < 2+r.digestBytes() || value[0] != sliceRecordV1 && value[0] != sliceRecordV2 ||
		value[1]&^sliceFlagLimited != 0 {
		return SliceRecord{}, errSliceRecord
	}
	flags := value[1]
	copy(r.Digest[:], value[2:2+r.digestBytes()])
	rest := value[2+r.digestBytes():]
	next := func() (uint64, bool) {
		v, n := binary.Uvarint(rest)
		if n <= 0 {
			return 0, false
		}
		rest = rest[n:]
		return v, true
	}
	issued, ok1 := next()
	lifetime, ok2 := next()
	if !ok1 || !ok2 || issued > 1<<62 || lifetime > 1<<62 {
		return SliceRecord{}, errSliceRecord
	}
	r.IssuedAt, r.ExpiresAt = int64(issued), int64(issued+lifetime) //nolint:gosec // both below 1<<62: the sum fits
	if flags&sliceFlagLimited != 0 {
		uses, ok := next()
		if !ok || uses > 1<<62 {
			return SliceRecord{}, errSliceRecord
		}
		r.UsesLeft = int64(uses)
	}
	var strs [5][]byte
	for i := range strs {
		n, ok := next()
		if !ok || n > maxSliceString || n > uint64(len(rest)) {
			return SliceRecord{}, errSliceRecord
		}
		strs[i], rest = rest[:n], rest[n:]
	}
	if len(rest) != 0 {
		return SliceRecord{}, errSliceRecord
	}
	r.Subject, r.Purpose, r.Issuer, r.Metadata = string(strs[0]), string(strs[1]), string(strs[2]), string(strs[3])
	if len(strs[4]) > 0 {
		r.Seal = bytes.Clone(strs[4])
	}
	if !bytes.Equal(AppendSliceRecord(nil, r), value) {
		return SliceRecord{}, errSliceRecord // a varint written longer than needed
	}
	return r, nil
}

// truncateKey is a data key cut short for an error message.
func truncateKey(k string) string {
	if len(k) > 32 {
		return k[:32] + "..."
	}
	return k
}

// SliceRecordOf is the record of a token issued over HTTP, before its seal: its digest (the
// part the current layout holds), never the token.
func SliceRecordOf(i Issued) SliceRecord {
	id, _ := ParseID(i.ID)
	var digest Digest
	full := DigestOf(i.String())
	copy(digest[:SliceDigestBytes], full[:])
	r := SliceRecord{ID: id, Digest: digest, IssuedAt: i.IssuedAt.Unix(), ExpiresAt: i.ExpiresAt.Unix(),
		UsesLeft: Unlimited, Subject: i.Subject, Purpose: i.Purpose, Metadata: metadataJSON(i.Metadata)}
	if i.UsesLeft != nil {
		r.UsesLeft = *i.UsesLeft
	}
	if i.Issuer != IssuerAnonymous {
		r.Issuer = i.Issuer
	}
	return r
}

// About is whom and what the record's token is for, as a Record holds it; nil for none.
func (r SliceRecord) About() *About {
	if r.Subject == "" && r.Purpose == "" && r.Issuer == "" && r.Metadata == "" {
		return nil
	}
	return &About{Subject: r.Subject, Kind: &Kind{Issuer: r.Issuer, Purpose: r.Purpose, Metadata: r.Metadata}}
}
