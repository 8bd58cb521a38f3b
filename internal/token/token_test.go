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
	"errors"
	"strings"
	"testing"
)

const sample = "0123456789abcdef:ABCDEFGHIJKLMNOPQRSTUVWXYZ"

func TestGenerateShape(t *testing.T) {
	seen := map[string]bool{}
	for range 2000 {
		tok := Generate()
		s := tok.String()
		parsed, err := Parse(s)
		if err != nil {
			t.Fatalf("Parse(Generate()) = %v", err)
		}
		if parsed != tok {
			t.Fatalf("Parse of token %s = %+v, want %+v", tok.ID, parsed, tok)
		}
		if seen[tok.ID] || seen[tok.Secret] {
			t.Fatalf("Generate repeated a value after %d tokens", len(seen)/2)
		}
		seen[tok.ID], seen[tok.Secret] = true, true
	}
}

func TestGenerateUsesWholeAlphabet(t *testing.T) {
	// 2000 secrets of 26 characters each draw every base32 character many times; a
	// generator with a narrowed or biased alphabet shows up as a missing character.
	counts := map[rune]int{}
	ids := map[rune]int{}
	for range 2000 {
		tok := Generate()
		for _, c := range tok.Secret {
			counts[c]++
		}
		for _, c := range tok.ID {
			ids[c]++
		}
	}
	if len(counts) != 32 {
		t.Errorf("secrets used %d distinct characters, want 32", len(counts))
	}
	if len(ids) != 16 {
		t.Errorf("ids used %d distinct characters, want 16", len(ids))
	}
	for c, n := range counts {
		// Expected 2000*26/32 = 1625 per character; 1300 is more than 8 standard deviations away.
		if n < 1300 || n > 1950 {
			t.Errorf("character %q drawn %d times, want about 1625", c, n)
		}
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		name  string
		input string
		ok    bool
	}{
		{"valid", sample, true},
		{"valid digits in secret", "ffffffffffffffff:AAAAAAAAAAAAAAAAAAAAAA2345", true},
		{"empty", "", false},
		{"colon only", ":", false},
		{"no separator", strings.Repeat("a", Length), false},
		{"separator too early", "0123456789abcde::ABCDEFGHIJKLMNOPQRSTUVWXYZ", false},
		{"upper-case id", "0123456789ABCDEF:ABCDEFGHIJKLMNOPQRSTUVWXYZ", false},
		{"non-hex id", "0123456789abcdeg:ABCDEFGHIJKLMNOPQRSTUVWXYZ", false},
		{"lower-case secret", "0123456789abcdef:abcdefghijklmnopqrstuvwxyz", false},
		{"digit 1 in secret", "0123456789abcdef:1BCDEFGHIJKLMNOPQRSTUVWXYZ", false},
		{"digit 8 in secret", "0123456789abcdef:ABCDEFGHIJKLMNOPQRSTUVWXY8", false},
		{"second colon", "0123456789abcdef:ABCDEFGHIJKLMNOPQRSTUVWXY:", false},
		{"too short", sample[:len(sample)-1], false},
		{"too long", sample + "A", false},
		{"10 KB", strings.Repeat("a", 10<<10), false},
		{"NUL byte", "0123456789abcdef:ABCDEFGHIJKLMNOPQRSTUVWXY\x00", false},
		{"invalid UTF-8", "0123456789abcdef:ABCDEFGHIJKLMNOPQRSTUVWXY\xff", false},
		{"path traversal", "../../etc/passwd", false},
		{"percent-encoded", "0123456789abcdef%3AABCDEFGHIJKLMNOPQRSTUVW", false},
		{"original service shape", "754321:xyz9AbC2DeF3GhI4JkL", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.input)
			if tt.ok != (err == nil) {
				t.Fatalf("Parse(%q) error = %v, want ok=%v", tt.input, err, tt.ok)
			}
			if err != nil {
				if !errors.Is(err, ErrMalformed) {
					t.Errorf("error %v does not wrap ErrMalformed", err)
				}
				return
			}
			if got.String() != tt.input {
				t.Errorf("String() = %q, want %q", got.String(), tt.input)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	for _, seed := range []string{sample, "", ":", "../../etc/passwd", "%00", "\xff\xfe", Generate().String(),
		"0123456789abcdef:", ":ABCDEFGHIJKLMNOPQRSTUVWXYZ", strings.Repeat(":", Length)} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := Parse(s)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			if len(s) >= 8 && strings.Contains(err.Error(), s) {
				t.Fatalf("error %q repeats the input", err)
			}
			return
		}
		if tok.String() != s {
			t.Fatalf("String() = %q, want %q", tok.String(), s)
		}
		if !ValidID(tok.ID) || len(tok.Secret) != SecretLength {
			t.Fatalf("Parse accepted %q", s)
		}
		if again, err := Parse(tok.String()); err != nil || again != tok {
			t.Fatalf("round trip of %q failed: %v", s, err)
		}
	})
}
