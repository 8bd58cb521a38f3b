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

// Package otp is the format of a one-time code's object and the decisions about it, as pure
// functions: what issuing a code over an earlier one does (the per subject and purpose issuing
// limit, the replacement of a live code), and what a verification does (true once, one attempt
// spent per wrong code, dead after the last). One Secret holds the one live code of an issuer,
// subject and purpose, named by an HMAC of them (provenance.Keyring.CodeName), and holds the
// code only as an HMAC (Keyring.CodeMAC), never in plaintext. The token store (package store)
// writes these Secrets; nothing here calls the API server.
package otp

import (
	"crypto/rand"
	"encoding/base32"
	"fmt"
	"math/big"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// SecretType is the type of a code's Secret: not a token Secret's, so the token index never
// admits one, and not watched by it (LabelComponent, not the token Secrets' managed-by label).
const SecretType corev1.SecretType = "tokens.tokenops.io/one-time-code" //nolint:gosec // a Secret type, not a credential

// The labels of a code's Secret: what the sweep of expired codes lists by. Neither names the
// subject or the purpose.
const (
	LabelComponent = "app.kubernetes.io/component"
	Component      = "one-time-code"
	LabelPartOf    = "app.kubernetes.io/part-of"
	PartOf         = "token-operator"
)

// The data keys of a code's Secret.
const (
	// DataMAC is the code's HMAC (Keyring.CodeMAC over Parts); absent once the code is spent
	// or dead.
	DataMAC = "mac"
	// DataKeyID names the key DataMAC was made with.
	DataKeyID = "key-id"
	// DataExpiresAt is when the code stops verifying (RFC 3339, UTC).
	DataExpiresAt = "expires-at"
	// DataMaxAttempts and DataAttempts are the verifications the code allows and the failed
	// ones spent.
	DataMaxAttempts = "max-attempts"
	DataAttempts    = "attempts"
	// DataIssued counts the codes issued in the window ending at DataWindowEnds: the issuing
	// limit, kept on the object so that every replica counts the same issues.
	DataIssued     = "issued"
	DataWindowEnds = "window-ends"
)

// Bounds of a code, as POST /app/code takes them.
const (
	MinDigits, MaxDigits, DefaultDigits               = 6, 10, 6
	MinAttempts, MaxAttemptsLimit, DefaultMaxAttempts = 1, 10, 5
	DefaultTTL                                        = 5 * time.Minute
	MaxTTL                                            = time.Hour
)

// State is what a code's Secret holds.
type State struct {
	// KeyID and MAC are the live code's HMAC and its key; MAC is nil when no code is live.
	KeyID string
	MAC   []byte
	// ExpiresAt is when the code stops verifying.
	ExpiresAt time.Time
	// MaxAttempts are the verifications the code allows; Attempts the failed ones spent.
	MaxAttempts, Attempts int
	// Issued codes in the issuing window that ends at WindowEnds.
	Issued     int
	WindowEnds time.Time
}

// Live reports whether a code can still verify at now: it has a MAC, has not expired and has
// attempts left.
func (s State) Live(now time.Time) bool {
	return s.MAC != nil && now.Before(s.ExpiresAt) && s.Attempts < s.MaxAttempts
}

// AttemptsLeft is how many verifications the code still allows (0 when it is not live).
func (s State) AttemptsLeft(now time.Time) int {
	if !s.Live(now) {
		return 0
	}
	return s.MaxAttempts - s.Attempts
}

// Removable reports whether the Secret holding s may be deleted at now: no code verifies any
// more and the issuing window is over, so deleting it forgets nothing the limit counts.
func (s State) Removable(now time.Time) bool {
	return !now.Before(s.ExpiresAt) && !now.Before(s.WindowEnds)
}

// Parts are what a code's MAC covers besides the code: who issued it, for whom and what, and
// what its Secret says of it that verification trusts (its expiry and attempts), so that a MAC
// copied to another subject's object, or an object whose expiry was pushed back, proves
// nothing.
func Parts(issuer, subject, purpose string, expiresAt time.Time, maxAttempts int, code string) []string {
	return []string{issuer, subject, purpose, expiresAt.UTC().Format(time.RFC3339), strconv.Itoa(maxAttempts), code}
}

// nameEncoding spells a name's HMAC in the lower-case letters and digits object names allow.
var nameEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// SecretName is the name of the Secret holding the code that id names (Keyring.CodeName of
// its issuer, subject and purpose).
func SecretName(id []byte) string {
	return "code-" + nameEncoding.EncodeToString(id)
}

// Selector selects the Secrets of codes.
func Selector() labels.Selector {
	return labels.SelectorFromSet(labels.Set{LabelComponent: Component, LabelPartOf: PartOf})
}

// NewSecret is the Secret holding s, named name in namespace.
func NewSecret(namespace, name string, s State) *corev1.Secret {
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name,
			Labels: map[string]string{LabelComponent: Component, LabelPartOf: PartOf}},
		Type: SecretType,
	}
	Write(secret, s)
	return secret
}

// Write puts s into secret's data, replacing what it held.
func Write(secret *corev1.Secret, s State) {
	secret.Data = map[string][]byte{
		DataExpiresAt:   []byte(s.ExpiresAt.UTC().Format(time.RFC3339)),
		DataMaxAttempts: []byte(strconv.Itoa(s.MaxAttempts)),
		DataAttempts:    []byte(strconv.Itoa(s.Attempts)),
		DataIssued:      []byte(strconv.Itoa(s.Issued)),
		DataWindowEnds:  []byte(s.WindowEnds.UTC().Format(time.RFC3339)),
	}
	if s.MAC != nil {
		secret.Data[DataMAC], secret.Data[DataKeyID] = s.MAC, []byte(s.KeyID)
	}
}

// Read is the State a code's Secret holds; an error for a Secret that is not one, or whose
// data does not parse (such a Secret verifies nothing).
func Read(secret *corev1.Secret) (State, error) {
	if secret.Type != SecretType {
		return State{}, fmt.Errorf("type %q, want %q", secret.Type, SecretType)
	}
	d := secret.Data
	var s State
	var err error
	if s.ExpiresAt, err = time.Parse(time.RFC3339, string(d[DataExpiresAt])); err != nil {
		return State{}, fmt.Errorf("%s: %w", DataExpiresAt, err)
	}
	if s.WindowEnds, err = time.Parse(time.RFC3339, string(d[DataWindowEnds])); err != nil {
		return State{}, fmt.Errorf("%s: %w", DataWindowEnds, err)
	}
	for key, dst := range map[string]*int{DataMaxAttempts: &s.MaxAttempts, DataAttempts: &s.Attempts, DataIssued: &s.Issued} {
		if *dst, err = strconv.Atoi(string(d[key])); err != nil || *dst < 0 {
			return State{}, fmt.Errorf("%s: want a count, got %q", key, d[key])
		}
	}
	if mac, ok := d[DataMAC]; ok {
		s.MAC, s.KeyID = mac, string(d[DataKeyID])
	}
	return s, nil
}

// Generate is a random code of digits decimal digits, uniform over all of them (leading
// zeros kept), from crypto/rand.
func Generate(digits int) string {
	n, err := rand.Int(rand.Reader, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(digits)), nil))
	if err != nil {
		panic(err) // crypto/rand does not fail (Go 1.24 and later crash instead)
	}
	return fmt.Sprintf("%0*d", digits, n)
}
