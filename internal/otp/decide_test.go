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

package otp

import (
	"slices"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)

func TestIssue(t *testing.T) {
	limit := Limit{Count: 3, Window: 15 * time.Minute}
	mac, exp := []byte("new-mac"), t0.Add(5*time.Minute)
	live := State{KeyID: "k1", MAC: []byte("old-mac"), ExpiresAt: t0.Add(time.Minute), MaxAttempts: 5, Attempts: 2, Issued: 1,
		WindowEnds: t0.Add(10 * time.Minute)}
	full := live
	full.Issued = 3
	over := full
	over.WindowEnds = t0
	for _, tc := range []struct {
		name       string
		prev       *State
		wantIssued int
		wantEnds   time.Time
		wantWait   time.Duration
	}{
		{"no Secret: a new window", nil, 1, t0.Add(15 * time.Minute), 0},
		{"a live code is replaced, the window goes on", &live, 2, t0.Add(10 * time.Minute), 0},
		{"the window has issued its limit", &full, 3, t0.Add(10 * time.Minute), 10 * time.Minute},
		{"the full window is over: a new one", &over, 1, t0.Add(15 * time.Minute), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, wait := Issue(tc.prev, t0, limit, "k2", mac, exp, 4)
			if wait != tc.wantWait || got.Issued != tc.wantIssued || !got.WindowEnds.Equal(tc.wantEnds) {
				t.Fatalf("Issue = %+v, wait %v; want issued %d, window ends %v, wait %v", got, wait, tc.wantIssued, tc.wantEnds, tc.wantWait)
			}
			if wait > 0 {
				if string(got.MAC) != "old-mac" {
					t.Errorf("a refused issue changed the live code: %+v", got)
				}
				return
			}
			if string(got.MAC) != "new-mac" || got.KeyID != "k2" || got.Attempts != 0 || got.MaxAttempts != 4 || !got.ExpiresAt.Equal(exp) {
				t.Errorf("Issue = %+v, want the new code with no attempt spent", got)
			}
		})
	}
}

func TestVerify(t *testing.T) {
	live := State{KeyID: "k1", MAC: []byte("mac"), ExpiresAt: t0.Add(time.Minute), MaxAttempts: 3, Attempts: 1, WindowEnds: t0.Add(time.Hour)}
	lastAttempt := live
	lastAttempt.Attempts = 2
	exhausted := live
	exhausted.Attempts = 3
	spent := live
	spent.MAC = nil
	expired := live
	expired.ExpiresAt = t0
	for _, tc := range []struct {
		name         string
		s            State
		matches      bool
		want         Verdict
		wantWrite    bool
		wantAttempts int
		wantLive     bool
	}{
		{"right code", live, true, Valid, true, 1, false},
		{"wrong code spends one attempt", live, false, Wrong, true, 2, true},
		{"wrong code on the last attempt kills the code", lastAttempt, false, Wrong, true, 3, false},
		{"right code after the last attempt", exhausted, true, Dead, false, 3, false},
		{"right code once spent", spent, true, Dead, false, 1, false},
		{"right code at its expiry", expired, true, Dead, false, 1, false},
		{"wrong code on a dead code spends nothing", expired, false, Dead, false, 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, next, write := Verify(tc.s, t0, tc.matches)
			if v != tc.want || write != tc.wantWrite || next.Attempts != tc.wantAttempts || next.Live(t0) != tc.wantLive {
				t.Errorf("Verify = %s, %+v, write %v; want %s, write %v, attempts %d, live %v", v, next, write, tc.want, tc.wantWrite,
					tc.wantAttempts, tc.wantLive)
			}
			if write && !tc.wantLive && next.MAC != nil {
				t.Errorf("Verify kept the MAC of a dead code: %+v", next)
			}
		})
	}
}

func TestRemovable(t *testing.T) {
	s := State{ExpiresAt: t0.Add(time.Minute), WindowEnds: t0.Add(15 * time.Minute)}
	for _, tc := range []struct {
		at   time.Time
		want bool
	}{
		{t0, false},                      // live
		{t0.Add(5 * time.Minute), false}, // expired, but the window still counts its issues
		{t0.Add(15 * time.Minute), true}, // both over
	} {
		if got := s.Removable(tc.at); got != tc.want {
			t.Errorf("Removable(%v) = %v, want %v", tc.at, got, tc.want)
		}
	}
}

func TestSecretRoundTrip(t *testing.T) {
	for _, s := range []State{
		{KeyID: "k1", MAC: []byte{1, 2, 3}, ExpiresAt: t0, MaxAttempts: 5, Attempts: 2, Issued: 3, WindowEnds: t0.Add(time.Hour)},
		{ExpiresAt: t0, MaxAttempts: 5, Attempts: 5, Issued: 1, WindowEnds: t0},
	} {
		secret := NewSecret("ns", SecretName([]byte("0123456789abcdefghij")), s)
		got, err := Read(secret)
		if err != nil || got.KeyID != s.KeyID || !slices.Equal(got.MAC, s.MAC) || !got.ExpiresAt.Equal(s.ExpiresAt) || got.MaxAttempts != s.MaxAttempts ||
			got.Attempts != s.Attempts || got.Issued != s.Issued || !got.WindowEnds.Equal(s.WindowEnds) {
			t.Errorf("Read(NewSecret(%+v)) = %+v, %v", s, got, err)
		}
		if !Selector().Matches(labelSet(secret.Labels)) {
			t.Errorf("Selector does not select %v", secret.Labels)
		}
	}
	if name := SecretName(make([]byte, 20)); len(name) != 37 || strings.ToLower(name) != name {
		t.Errorf("SecretName = %q, want code- and 32 lower-case characters", name)
	}
}

func TestReadRefuses(t *testing.T) {
	good := NewSecret("ns", "code-x", State{ExpiresAt: t0, MaxAttempts: 5, WindowEnds: t0})
	for name, edit := range map[string]func(d map[string][]byte){
		"expiry":       func(d map[string][]byte) { d[DataExpiresAt] = []byte("soon") },
		"window":       func(d map[string][]byte) { delete(d, DataWindowEnds) },
		"max attempts": func(d map[string][]byte) { d[DataMaxAttempts] = []byte("-1") },
		"attempts":     func(d map[string][]byte) { d[DataAttempts] = []byte("x") },
	} {
		s := good.DeepCopy()
		edit(s.Data)
		if _, err := Read(s); err == nil {
			t.Errorf("%s: Read accepted %q", name, s.Data)
		}
	}
	s := good.DeepCopy()
	s.Type = "Opaque"
	if _, err := Read(s); err == nil {
		t.Error("Read accepted a Secret of another type")
	}
}

func TestGenerate(t *testing.T) {
	seen := map[string]bool{}
	for digits := MinDigits; digits <= MaxDigits; digits++ {
		for range 50 {
			c := Generate(digits)
			if len(c) != digits || strings.Trim(c, "0123456789") != "" {
				t.Fatalf("Generate(%d) = %q", digits, c)
			}
			seen[c] = true
		}
	}
	if want := 50 * (MaxDigits - MinDigits + 1); len(seen) < want-2 {
		t.Errorf("Generate repeated itself: %d distinct codes of %d", len(seen), want)
	}
}

type labelSet map[string]string

func (l labelSet) Has(k string) bool              { _, ok := l[k]; return ok }
func (l labelSet) Get(k string) string            { return l[k] }
func (l labelSet) Lookup(k string) (string, bool) { v, ok := l[k]; return v, ok }
