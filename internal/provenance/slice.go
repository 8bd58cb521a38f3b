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
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tokenops/token-operator/internal/token"
)

// SliceSealBytes is the length of a token slice record's seal: HMAC-SHA256 cut to 128 bits,
// as much as a forger must guess, at 16 bytes per token rather than 32.
const SliceSealBytes = 16

// sliceSealVersion names the layout of sliceSealInput.
const sliceSealVersion = "tokens.tokenops.io/slice-record-seal/v1"

// SealSliceRecord is the seal of r in the slice Secret namespace/slice, under the current key,
// and that key's id (which the slice records once for all its records). It covers the whole
// record but its use count, which each redemption changes (as the seal of a token Secret
// covers whether it is limited, not the count), and the slice it is in, so that a record copied
// to another slice, or another namespace, proves nothing.
func (k *Keyring) SealSliceRecord(namespace, slice string, r token.SliceRecord) (keyID string, seal []byte) {
	return k.current, sliceSeal(k.seal[k.current], namespace, slice, r)
}

// VerifySliceRecord reports whether r.Seal is SealSliceRecord's for r in namespace/slice
// under the key named keyID.
func (k *Keyring) VerifySliceRecord(keyID, namespace, slice string, r token.SliceRecord) bool {
	key, ok := k.seal[keyID]
	return ok && len(r.Seal) == SliceSealBytes && hmac.Equal(r.Seal, sliceSeal(key, namespace, slice, r))
}

func sliceSeal(key []byte, namespace, slice string, r token.SliceRecord) []byte {
	h := hmac.New(sha256.New, key)
	h.Write(sliceSealInput(namespace, slice, r))
	return h.Sum(nil)[:SliceSealBytes]
}

// sliceSealInput is what a record's seal covers: the layout's version, the slice, the token's
// id and the record as AppendSliceRecord writes it without its seal and with any use count
// written as 0 (its presence stays covered).
func sliceSealInput(namespace, slice string, r token.SliceRecord) []byte {
	var b []byte
	for _, v := range []string{sliceSealVersion, namespace, slice, token.SliceKey(r.ID)} {
		b = binary.AppendUvarint(b, uint64(len(v)))
		b = append(b, v...)
	}
	r.Seal = nil
	if r.UsesLeft != token.Unlimited {
		r.UsesLeft = 0
	}
	return token.AppendSliceRecord(b, r)
}

// ReasonSliceRecord is why a record of a token slice is not admitted.
const ReasonSliceRecord = "a token slice record that does not parse or whose seal does not verify"

// CheckSlice decides whether the token slice s, read into rec (token.SliceOf), may hold
// tokens at all: a slice holds HTTP tokens only, in --http-namespace only, controlled by no
// one. Each of its records is then admitted only with its own seal (SliceVerifier); there is
// no slice of an earlier version to admit without one.
func (c *Checker) CheckSlice(s *corev1.Secret, rec *token.Record) Verdict {
	switch {
	case rec.Source != token.SourceHTTP:
		return Verdict{Reason: ReasonUnknownSource}
	case s.Namespace != c.HTTPNamespace || metav1.GetControllerOfNoCopy(s) != nil:
		return Verdict{Reason: ReasonOutsideHTTPNamespace}
	}
	return Verdict{Admit: true, Sealed: true}
}

// SliceVerifier reports whether a record of the slice s carries its seal (VerifySliceRecord)
// under the key the slice names and the keys in use.
func (c *Checker) SliceVerifier(s *corev1.Secret) func(token.SliceRecord) bool {
	keys, keyID := c.Keys(), token.SliceSealKey(s)
	return func(r token.SliceRecord) bool { return keys.VerifySliceRecord(keyID, s.Namespace, s.Name, r) }
}
