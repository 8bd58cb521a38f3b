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

package provenance

import (
	"testing"

	"github.com/tokenops/token-operator/internal/token"
)

func TestSliceRecordSeal(t *testing.T) {
	k := ring(t, "key-2", "key-1", "key-2")
	id, _ := token.ParseID("0123456789abcdef")
	r := token.SliceRecord{ID: id, Digest: token.DigestOf("0123456789abcdef:SECRET"), IssuedAt: 100, ExpiresAt: 3700, UsesLeft: 3,
		Subject: "user-42", Purpose: "password-reset"}
	keyID, seal := k.SealSliceRecord("tokens", "slice-a", r)
	if keyID != "key-2" || len(seal) != SliceSealBytes {
		t.Fatalf("SealSliceRecord = %s, %d bytes; want key-2 and %d bytes", keyID, len(seal), SliceSealBytes)
	}
	r.Seal = seal
	for _, tc := range []struct {
		name             string
		keyID, ns, name2 string
		edit             func(*token.SliceRecord)
		want             bool
	}{
		{"as sealed", "key-2", "tokens", "slice-a", nil, true},
		{"a use spent (the count is not sealed)", "key-2", "tokens", "slice-a", func(r *token.SliceRecord) { r.UsesLeft = 2 }, true},
		{"the use limit dropped", "key-2", "tokens", "slice-a", func(r *token.SliceRecord) { r.UsesLeft = token.Unlimited }, false},
		{"a later expiry", "key-2", "tokens", "slice-a", func(r *token.SliceRecord) { r.ExpiresAt++ }, false},
		{"another digest", "key-2", "tokens", "slice-a", func(r *token.SliceRecord) { r.Digest[0] ^= 1 }, false},
		{"another subject", "key-2", "tokens", "slice-a", func(r *token.SliceRecord) { r.Subject = "user-43" }, false},
		{"another id", "key-2", "tokens", "slice-a", func(r *token.SliceRecord) { r.ID[0] ^= 1 }, false},
		{"copied to another slice", "key-2", "tokens", "slice-b", nil, false},
		{"copied to another namespace", "key-2", "other", "slice-a", nil, false},
		{"named with another key", "key-1", "tokens", "slice-a", nil, false},
		{"an unknown key", "key-9", "tokens", "slice-a", nil, false},
		{"a cut seal", "key-2", "tokens", "slice-a", func(r *token.SliceRecord) { r.Seal = r.Seal[:8] }, false},
	} {
		got := r
		if tc.edit != nil {
			tc.edit(&got)
		}
		if ok := k.VerifySliceRecord(tc.keyID, tc.ns, tc.name2, got); ok != tc.want {
			t.Errorf("%s: VerifySliceRecord = %v, want %v", tc.name, ok, tc.want)
		}
	}
}
