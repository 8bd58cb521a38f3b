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
	"encoding/binary"
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

// The HKDF info strings: each separates one use's subkey from every other key derived from
// the same master key, so that a MAC made for one use never verifies for another.
const (
	sealInfo  = "tokens.tokenops.io/seal"
	codesInfo = "tokens.tokenops.io/codes"
	auditInfo = "tokens.tokenops.io/audit"
)

// Keyring is the operator's keys: every master key by id, the one new seals use, and since
// when the operator seals. It is never changed once built: a new key means a new Keyring.
type Keyring struct {
	current string
	seal    map[string][]byte
	codes   map[string][]byte
	// auditID names the master key of the audit subkey, which never rotates (see AuditMAC).
	auditID string
	audit   []byte
	// Since is when the operator first sealed (the key Secret's creation): a token Secret
	// created before it may be an unsealed one of an earlier version (see Checker).
	Since time.Time
}

// NewKeyring derives the subkeys of masters (HKDF-SHA256, one subkey per use: seal, codes,
// audit) and seals with the one named current. The audit subkey comes from FirstKeyID when
// it is among masters, else from current (see WithAuditKey).
func NewKeyring(masters map[string][]byte, current string, since time.Time) (*Keyring, error) {
	if _, ok := masters[current]; !ok {
		return nil, fmt.Errorf("the current key %q is not among the keys (%s)", current, strings.Join(ids(masters), ", "))
	}
	k := &Keyring{current: current, seal: map[string][]byte{}, codes: map[string][]byte{}, Since: since}
	for id, master := range masters {
		if len(master) < MasterKeyBytes {
			return nil, fmt.Errorf("key %q has %d bytes, want at least %d", id, len(master), MasterKeyBytes)
		}
		if !validKeyID(id) {
			return nil, fmt.Errorf("key id %q: want 1 to 63 letters, digits and '-'", id)
		}
		var err error
		if k.seal[id], err = subkey(master, sealInfo); err != nil {
			return nil, err
		}
		if k.codes[id], err = subkey(master, codesInfo); err != nil {
			return nil, err
		}
	}
	auditID := current
	if _, ok := masters[FirstKeyID]; ok {
		auditID = FirstKeyID
	}
	return k.WithAuditKey(masters, auditID)
}

// WithAuditKey derives the audit subkey from the master key named id instead.
func (k *Keyring) WithAuditKey(masters map[string][]byte, id string) (*Keyring, error) {
	master, ok := masters[id]
	if !ok {
		return nil, fmt.Errorf("the audit key %q is not among the keys (%s)", id, strings.Join(ids(masters), ", "))
	}
	sub, err := subkey(master, auditInfo)
	if err != nil {
		return nil, err
	}
	k.auditID, k.audit = id, sub
	return k, nil
}

func subkey(master []byte, info string) ([]byte, error) {
	return hkdf.Key(sha256.New, master, nil, info, sha256.Size)
}

// AuditMAC is the audit trail's stand-in for a personal value (a token's subject):
// "hmac-sha256:" and base64url of HMAC-SHA256 under the audit subkey, as Vault's audit
// devices hash what they log. The audit subkey never rotates (it stays with one master key,
// AnnotationAuditKey), so the same subject has the same MAC in every line, before and after
// a key rotation.
func (k *Keyring) AuditMAC(v string) string {
	h := hmac.New(sha256.New, k.audit)
	h.Write([]byte(v))
	return "hmac-sha256:" + base64.RawURLEncoding.EncodeToString(h.Sum(nil))
}

// CodeMAC is the MAC a one-time code is stored as, under the codes subkey of the current key,
// and that key's id; VerifyCode checks a code against it. The parts name what the code is
// for as well as the code, so that a MAC copied to another subject's code proves nothing.
func (k *Keyring) CodeMAC(parts ...string) (id string, sum []byte) {
	return k.current, codeMAC(k.codes[k.current], append([]string{"code"}, parts...))
}

// VerifyCode reports whether sum is CodeMAC's answer for parts under the key named id.
func (k *Keyring) VerifyCode(id string, sum []byte, parts ...string) bool {
	key, ok := k.codes[id]
	return ok && hmac.Equal(sum, codeMAC(key, append([]string{"code"}, parts...)))
}

// CodeName is a stable, key-bound name for what parts identify (a code's issuer, subject and
// purpose): the first 20 bytes of an HMAC under the codes subkey of the audit key, which
// never rotates, so that every replica finds one code object by it before and after a key
// rotation, and the name reveals no subject.
func (k *Keyring) CodeName(parts ...string) []byte {
	return codeMAC(k.codes[k.auditID], append([]string{"name"}, parts...))[:20]
}

// codeMAC is HMAC-SHA256 under key of parts, each one length-prefixed, so that no two lists
// of parts share an input.
func codeMAC(key []byte, parts []string) []byte {
	h := hmac.New(sha256.New, key)
	for _, p := range parts {
		var n [binary.MaxVarintLen64]byte
		h.Write(n[:binary.PutUvarint(n[:], uint64(len(p)))])
		h.Write([]byte(p))
	}
	return h.Sum(nil)
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
