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

package server

import (
	"fmt"
	"regexp"
	"unicode"
	"unicode/utf8"
)

// Bounds of what a token says about whom and what it is for.
const (
	// MaxTextBytes bounds a free-text value: a subject (a user id, an e-mail address) and
	// each metadata value.
	MaxTextBytes = 256
	// MaxMetadataKeys and MaxMetadataBytes bound metadata: a few keys, a small total.
	MaxMetadataKeys  = 8
	MaxMetadataBytes = 1024
)

var (
	// purposeSyntax: lower-case letters, digits and . _ -, 1 to 63, starting and ending with a
	// letter or digit ("password-reset", "email.verify").
	purposeSyntax = regexp.MustCompile(`^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$`)
	// metadataKeySyntax: letters, digits and . _ -, 1 to 63, starting and ending with a letter
	// or digit.
	metadataKeySyntax = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$`)
)

// checkText reports what is wrong with a free-text value (a subject, a metadata value):
// empty, too long, not UTF-8, or holding a control character.
func checkText(field, v string) error {
	switch {
	case v == "":
		return badRequest("%s: must not be empty", field)
	case len(v) > MaxTextBytes:
		return badRequest("%s: at most %d bytes, got %d", field, MaxTextBytes, len(v))
	case !utf8.ValidString(v):
		return badRequest("%s: must be UTF-8", field)
	}
	for _, r := range v {
		if unicode.IsControl(r) {
			return badRequest("%s: must not hold control characters", field)
		}
	}
	return nil
}

// checkPurpose reports what is wrong with a purpose.
func checkPurpose(v string) error {
	if !purposeSyntax.MatchString(v) {
		return badRequest("purpose: want 1 to 63 lower-case letters, digits, '.', '_' or '-', starting and ending with a letter or digit")
	}
	return nil
}

// checkMetadata reports what is wrong with metadata: too many keys, a key out of syntax, a
// value checkText refuses, or too many bytes in all.
func checkMetadata(m map[string]string) error {
	if len(m) > MaxMetadataKeys {
		return badRequest("metadata: at most %d keys, got %d", MaxMetadataKeys, len(m))
	}
	total := 0
	for k, v := range m {
		if !metadataKeySyntax.MatchString(k) {
			return badRequest("metadata: key %q: want 1 to 63 letters, digits, '.', '_' or '-'", truncate(k, 64))
		}
		if err := checkText(fmt.Sprintf("metadata.%s", k), v); err != nil {
			return err
		}
		total += len(k) + len(v)
	}
	if total > MaxMetadataBytes {
		return badRequest("metadata: at most %d bytes of keys and values, got %d", MaxMetadataBytes, total)
	}
	return nil
}

// truncate is s cut to n bytes at most, for an error message.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// purposeMatches is the purpose check of validation, redemption and introspection: a token
// bound to a purpose validates only when asked with that purpose, and a token without one
// only when asked with none (Django's and Rails' reset tokens).
func purposeMatches(tokenPurpose, asked string) bool {
	return tokenPurpose == asked
}
