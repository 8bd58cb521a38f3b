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
	"reflect"
	"strings"
	"testing"
)

var sliceTestDigest = DigestOf("0123456789abcdef:SECRET")

// sliceRecordV1Of is r as a record of layout 1 holds it: the whole digest.
func sliceRecordV1Of(r SliceRecord) SliceRecord {
	r.layout, r.Digest = sliceRecordV1, sliceTestDigest
	return r
}

func sliceRecord(edit func(*SliceRecord)) SliceRecord {
	id, _ := ParseID("0123456789abcdef")
	var digest Digest
	copy(digest[:SliceDigestBytes], sliceTestDigest[:])
	r := SliceRecord{ID: id, Digest: digest, IssuedAt: 1796000000, ExpiresAt: 1796003600, UsesLeft: Unlimited}
	if edit != nil {
		edit(&r)
	}
	return r
}

func TestSliceRecordRoundTrip(t *testing.T) {
	for name, r := range map[string]SliceRecord{
		"plain":        sliceRecord(nil),
		"one use left": sliceRecord(func(r *SliceRecord) { r.UsesLeft = 1 }),
		"spent":        sliceRecord(func(r *SliceRecord) { r.UsesLeft = 0 }),
		"subject, purpose": sliceRecord(func(r *SliceRecord) {
			r.Subject, r.Purpose, r.Issuer = "user-42", "password-reset", "system:serviceaccount:apps:web"
		}),
		"metadata, seal": sliceRecord(func(r *SliceRecord) { r.Metadata, r.Seal = `{"ip":"203.0.113.7"}`, bytes.Repeat([]byte{7}, 16) }),
		"zero lifetime":  sliceRecord(func(r *SliceRecord) { r.ExpiresAt = r.IssuedAt }),
		// A record an earlier build wrote (layout 1, the whole digest) reads as written.
		"layout 1": sliceRecordV1Of(sliceRecord(func(r *SliceRecord) { r.UsesLeft, r.Subject = 2, "user-42" })),
	} {
		value := AppendSliceRecord(nil, r)
		got, err := ParseSliceRecord(SliceKey(r.ID), value)
		if err != nil || !reflect.DeepEqual(got, r) {
			t.Errorf("%s: ParseSliceRecord(AppendSliceRecord(%+v)) = %+v, %v", name, r, got, err)
		}
	}
}

// TestSliceRecordSize pins what a typical record costs in its slice: the figure issue 23's
// sizing starts from.
func TestSliceRecordSize(t *testing.T) {
	for _, tc := range []struct {
		name string
		r    SliceRecord
		want int
	}{
		{"no subject, anonymous, sealed with 16 bytes", sliceRecord(func(r *SliceRecord) { r.Seal = make([]byte, 16) }), 46},
		{"20-byte subject, a purpose, one use", sliceRecord(func(r *SliceRecord) {
			r.Subject, r.Purpose, r.UsesLeft, r.Seal = strings.Repeat("s", 20), "password-reset", 1, make([]byte, 16)
		}), 81},
		{"the same in layout 1", sliceRecordV1Of(sliceRecord(func(r *SliceRecord) {
			r.Subject, r.Purpose, r.UsesLeft, r.Seal = strings.Repeat("s", 20), "password-reset", 1, make([]byte, 16)
		})), 97},
	} {
		if got := len(AppendSliceRecord(nil, tc.r)); got != tc.want {
			t.Errorf("%s: %d bytes, want %d", tc.name, got, tc.want)
		}
	}
}

func TestParseSliceRecordRefuses(t *testing.T) {
	good := AppendSliceRecord(nil, sliceRecord(func(r *SliceRecord) { r.Subject = "user-42" }))
	for name, tc := range map[string]struct {
		key   string
		value []byte
	}{
		"a key that is no id":           {"not-an-id", good},
		"an upper-case key":             {"0123456789ABCDEF", good},
		"another version":               {"0123456789abcdef", append([]byte{3}, good[1:]...)},
		"an unknown flag":               {"0123456789abcdef", append([]byte{2, 2}, good[2:]...)},
		"layout 1 with half the digest": {"0123456789abcdef", append([]byte{1}, good[1:]...)},
		"truncated":                     {"0123456789abcdef", good[:len(good)-3]},
		"trailing bytes":                {"0123456789abcdef", append(bytes.Clone(good), 0)},
		"empty":                         {"0123456789abcdef", nil},
		// The issue time's 5-byte varint ends at good[22]; written 6 bytes long, it reads the same.
		"a long varint":        {"0123456789abcdef", append(append(bytes.Clone(good[:22]), 0x80|good[22], 0), good[23:]...)},
		"a string over bounds": {"0123456789abcdef", append(bytes.Clone(good[:len(good)-1]), 0xff, 0xff, 0x03)},
	} {
		if r, err := ParseSliceRecord(tc.key, tc.value); err == nil {
			t.Errorf("%s: accepted as %+v", name, r)
		}
	}
}

func FuzzParseSliceRecord(f *testing.F) {
	f.Add("0123456789abcdef", AppendSliceRecord(nil, sliceRecord(nil)))
	f.Add("0123456789abcdef", AppendSliceRecord(nil, sliceRecord(func(r *SliceRecord) { r.UsesLeft, r.Subject, r.Seal = 3, "u", []byte{1} })))
	f.Add("0123456789abcdef", AppendSliceRecord(nil, sliceRecordV1Of(sliceRecord(nil))))
	f.Add("x", []byte{1, 0})
	f.Fuzz(func(t *testing.T, key string, value []byte) {
		r, err := ParseSliceRecord(key, value)
		if err != nil {
			return
		}
		if SliceKey(r.ID) != key {
			t.Fatalf("key %q read as id %s", key, r.ID)
		}
		if !bytes.Equal(AppendSliceRecord(nil, r), value) {
			t.Fatalf("%x is not the canonical encoding of %+v", value, r)
		}
		if r.ExpiresAt < r.IssuedAt || r.UsesLeft < 0 && r.UsesLeft != Unlimited {
			t.Fatalf("out of range: %+v", r)
		}
	})
}

// A token of a slice is matched on the part of its digest its record holds; a token Secret's
// on the whole digest.
func TestMatchSliceEntry(t *testing.T) {
	slice := &Record{Packing: PackedSlice}
	r := sliceRecord(nil)
	entry := EntryOf(slice, r.ID, r.Digest, r.IssuedAt, r.ExpiresAt, r.UsesLeft, nil)
	other := sliceTestDigest
	other[SliceDigestBytes-1] ^= 1
	beyond := sliceTestDigest
	beyond[SliceDigestBytes] ^= 1
	own := Record{HasToken: true, Current: Held{ID: r.ID, Digest: sliceTestDigest}}
	for _, tc := range []struct {
		name string
		rec  *Record
		d    Digest
		want Slot
	}{
		{"a slice token, its digest", &entry, sliceTestDigest, SlotCurrent},
		{"a slice token, a digest differing within what the record holds", &entry, other, SlotNone},
		{"a slice token, a digest differing beyond it", &entry, beyond, SlotCurrent},
		{"a token Secret, its digest", &own, sliceTestDigest, SlotCurrent},
		{"a token Secret, a digest differing beyond a slice's part", &own, beyond, SlotNone},
	} {
		if got := tc.rec.Match(tc.d); got != tc.want {
			t.Errorf("%s: Match = %v, want %v", tc.name, got, tc.want)
		}
	}
}
