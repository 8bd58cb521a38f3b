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
	"crypto/sha256"
	"encoding/binary"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// AnnotationSeal is the operator's seal over what validation trusts of a token Secret (see
// SealInput): "<key id>.<MAC>", written by the token store on every write and checked by the
// token index on every read (package provenance). A Secret without it, or whose seal does
// not verify, was not written by the operator as it is.
const AnnotationSeal = "tokens.tokenops.io/seal"

// sealVersion names the layout of SealInput; a new layout takes a new version.
const sealVersion = "tokens.tokenops.io/seal/v1"

// SealInput is what the seal of a token Secret covers, as bytes: every part of the Secret
// that decides what its tokens prove. Its namespace and name (a copy elsewhere is not sealed),
// type and source, the TokenRequest that controls it (by UID), the current token's id and
// digest, its issue and expiry times, its revision, whether it has a use limit (not the count,
// which each redemption changes: see package provenance for where the count is trusted from),
// the previous token's digest and expiry, and whom and what it is for (subject, purpose,
// metadata) and who issued it. Values are read as written (annotations as
// strings), each one length-prefixed, so no two Secrets share an input.
func SealInput(s *corev1.Secret) []byte {
	var b []byte
	add := func(v string) {
		b = binary.AppendUvarint(b, uint64(len(v)))
		b = append(b, v...)
	}
	add(sealVersion)
	add(s.Namespace)
	add(s.Name)
	add(string(s.Type))
	add(s.Labels[LabelSource])
	controller := ""
	if ref := metav1.GetControllerOfNoCopy(s); ref != nil && ref.Kind == "TokenRequest" {
		controller = ref.Name + "/" + string(ref.UID)
	}
	add(controller)
	add(string(s.Data[DataTokenID]))
	add(string(currentDigest(s)))
	add(s.Annotations[AnnotationIssuedAt])
	add(s.Annotations[AnnotationExpiresAt])
	add(s.Annotations[AnnotationRevision])
	_, limited := s.Annotations[AnnotationUsesLeft]
	add(map[bool]string{true: "limited", false: "unlimited"}[limited])
	if prev, ok := s.Data[DataPreviousToken]; ok {
		d := sha256.Sum256(prev)
		add(string(d[:]))
	} else {
		add("")
	}
	add(s.Annotations[AnnotationPreviousExpiresAt])
	add(string(s.Data[DataSubject]))
	add(string(s.Data[DataPurpose]))
	add(string(s.Data[DataMetadata]))
	add(string(s.Data[DataIssuer]))
	return b
}

// currentDigest is the digest of the current token: of DataToken when the Secret holds the
// token, else DataTokenDigest as stored.
func currentDigest(s *corev1.Secret) []byte {
	if plain, ok := s.Data[DataToken]; ok {
		d := sha256.Sum256(plain)
		return d[:]
	}
	return s.Data[DataTokenDigest]
}
