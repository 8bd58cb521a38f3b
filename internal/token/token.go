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

// Package token generates, parses and compares the operator's tokens and builds the Secrets
// that hold them. TokenRequest issuance, HTTP issuance and validation all go through it, so
// every token has one shape whatever issued it.
package token

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

const (
	// IDBytes is the number of random bytes in a token id (64 bits, shown as 16 hex digits).
	IDBytes = 8
	// IDLength is the length of a token id: lower-case hex, so it is also a valid label value
	// and a valid part of a Secret name.
	IDLength = 2 * IDBytes
	// SecretLength is the length of a token's secret part as crypto/rand.Text makes it: 26
	// characters of the RFC 4648 base32 alphabet (A-Z, 2-7), 130 bits of randomness with no
	// modulo bias.
	SecretLength = 26
	// Length is the length of a whole token, "<id>:<secret>".
	Length = IDLength + 1 + SecretLength
	// Separator splits a token's id from its secret.
	Separator = ':'
)

// ErrMalformed is wrapped by every Parse error.
var ErrMalformed = errors.New("malformed token")

// Token is an issued token: a public id, safe to log and to index, and a secret.
type Token struct {
	// ID is the public half.
	ID string
	// Secret is the private half. Never log it.
	Secret string
}

// Generate returns a new token from crypto/rand. Both halves use only characters that travel
// unescaped in a URL path segment.
func Generate() Token {
	id := make([]byte, IDBytes)
	// crypto/rand.Read never returns an error (it crashes the program irrecoverably instead).
	_, _ = rand.Read(id)
	return Token{ID: hex.EncodeToString(id), Secret: rand.Text()}
}

// String returns the token as clients present it: "<id>:<secret>".
func (t Token) String() string {
	return t.ID + string(Separator) + t.Secret
}

// Parse checks that s has the exact shape Generate makes and splits it. It allocates nothing
// beyond the returned strings' headers, and it never puts s's secret part in an error.
func Parse(s string) (Token, error) {
	if len(s) != Length {
		return Token{}, fmt.Errorf("%w: length %d, want %d", ErrMalformed, len(s), Length)
	}
	id, secret, ok := strings.Cut(s, string(Separator))
	if !ok || len(id) != IDLength {
		return Token{}, fmt.Errorf("%w: want <id>:<secret>", ErrMalformed)
	}
	if !ValidID(id) {
		return Token{}, fmt.Errorf("%w: id must be %d lower-case hex digits", ErrMalformed, IDLength)
	}
	for i := 0; i < len(secret); i++ {
		if !isBase32(secret[i]) {
			return Token{}, fmt.Errorf("%w: secret must be %d characters of A-Z and 2-7", ErrMalformed, SecretLength)
		}
	}
	return Token{ID: id, Secret: secret}, nil
}

// ValidID reports whether id has the shape of a token id.
func ValidID(id string) bool {
	if len(id) != IDLength {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func isBase32(c byte) bool {
	return (c >= 'A' && c <= 'Z') || (c >= '2' && c <= '7')
}
