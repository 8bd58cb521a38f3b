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

// Package provenance decides whether a token Secret is one the operator wrote, as it wrote
// it: the seal the token store puts on every token Secret (an HMAC over token.SealInput with a
// key kept in the operator's own namespace), where an HTTP token may live (--http-namespace),
// and what a TokenRequest's status lets its Secret prove (token.Binding). The token index
// admits only what passes; the decisions here are pure, the key Secret's reading and creation
// (keys.go) are the package's only API calls.
package provenance

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/tokenops/token-operator/internal/token"
)

// MasterKeyBytes is the size of one master key.
const MasterKeyBytes = 32

// sealInfo separates the seal's subkey from every other key derived from the same master key.
const sealInfo = "tokens.tokenops.io/seal"

// Keyring is the operator's keys: every master key by id, the one new seals use, and since
// when the operator seals. It is never changed once built: a new key means a new Keyring.
type Keyring struct {
	current string
	seal    map[string][]byte
	// Since is when the operator first sealed (the key Secret's creation): a token Secret
	// created before it may be an unsealed one of an earlier version (see Checker).
	Since time.Time
}

// NewKeyring derives the seal subkeys of masters (HKDF-SHA256, one subkey per use) and
// seals with the one named current.
func NewKeyring(masters map[string][]byte, current string, since time.Time) (*Keyring, error) {
	if _, ok := masters[current]; !ok {
		return nil, fmt.Errorf("the current key %q is not among the keys (%s)", current, strings.Join(ids(masters), ", "))
	}
	k := &Keyring{current: current, seal: map[string][]byte{}, Since: since}
	for id, master := range masters {
		if len(master) < MasterKeyBytes {
			return nil, fmt.Errorf("key %q has %d bytes, want at least %d", id, len(master), MasterKeyBytes)
		}
		if !validKeyID(id) {
			return nil, fmt.Errorf("key id %q: want 1 to 63 letters, digits and '-'", id)
		}
		sub, err := hkdf.Key(sha256.New, master, nil, sealInfo, sha256.Size)
		if err != nil {
			return nil, err
		}
		k.seal[id] = sub
	}
	return k, nil
}

func ids(m map[string][]byte) []string {
	out := make([]string, 0, len(m))
	for id := range m {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

func validKeyID(id string) bool {
	if id == "" || len(id) > 63 {
		return false
	}
	for _, c := range id {
		if (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && (c < '0' || c > '9') && c != '-' {
			return false
		}
	}
	return true
}

// Current is the id of the key new seals use.
func (k *Keyring) Current() string { return k.current }

// Seal writes the seal of s (token.AnnotationSeal) with the current key, replacing any.
func (k *Keyring) Seal(s *corev1.Secret) {
	if s.Annotations == nil {
		s.Annotations = map[string]string{}
	}
	s.Annotations[token.AnnotationSeal] = k.current + "." + base64.RawURLEncoding.EncodeToString(mac(k.seal[k.current], s))
}

// Seal's answers.
var (
	// ErrUnsealed: the Secret carries no seal.
	ErrUnsealed = errors.New("no " + token.AnnotationSeal + " annotation")
	// ErrBadSeal: the seal does not verify: the Secret was changed, copied, or forged.
	ErrBadSeal = errors.New("the seal does not verify: the Secret was changed, copied or forged")
)

// Verify checks the seal of s: nil when it verifies with one of the keys.
func (k *Keyring) Verify(s *corev1.Secret) error {
	v, ok := s.Annotations[token.AnnotationSeal]
	if !ok {
		return ErrUnsealed
	}
	id, sum, ok := strings.Cut(v, ".")
	key, known := k.seal[id]
	got, err := base64.RawURLEncoding.DecodeString(sum)
	if !ok || !known || err != nil || !hmac.Equal(got, mac(key, s)) {
		return ErrBadSeal
	}
	return nil
}

// KeyOf is the id of the key that sealed s ("" without a seal); it does not verify.
func KeyOf(s *corev1.Secret) string {
	id, _, _ := strings.Cut(s.Annotations[token.AnnotationSeal], ".")
	return id
}

func mac(key []byte, s *corev1.Secret) []byte {
	h := hmac.New(sha256.New, key)
	h.Write(token.SealInput(s))
	return h.Sum(nil)
}
