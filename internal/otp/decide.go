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

import "time"

// Limit is the issuing limit per issuer, subject and purpose: at most Count codes in each
// Window (the window opens with its first code).
type Limit struct {
	Count  int
	Window time.Duration
}

// Issue is the State after issuing a new code (mac under keyID, live until expiresAt, with
// maxAttempts) over prev, the State of the Secret already there (nil: none). The new code
// replaces any live one. It answers how long to wait instead, and prev unchanged, when prev's
// window has issued limit.Count codes already.
func Issue(prev *State, now time.Time, limit Limit, keyID string, mac []byte, expiresAt time.Time, maxAttempts int) (State, time.Duration) {
	next := State{KeyID: keyID, MAC: mac, ExpiresAt: expiresAt, MaxAttempts: maxAttempts, Issued: 1, WindowEnds: now.Add(limit.Window)}
	if prev == nil || !now.Before(prev.WindowEnds) {
		return next, 0 // a new window
	}
	if prev.Issued >= limit.Count {
		return *prev, prev.WindowEnds.Sub(now)
	}
	next.Issued, next.WindowEnds = prev.Issued+1, prev.WindowEnds
	return next, 0
}

// Verdict is what a verification found.
type Verdict string

// Verdicts, as tokenoperator_code_verifications_total counts them.
const (
	// Valid: the code was right; it is spent.
	Valid Verdict = "valid"
	// Wrong: the code was wrong; one attempt is spent.
	Wrong Verdict = "wrong"
	// Dead: no code is live (none issued, spent, expired, or its attempts used up); nothing
	// is spent, whatever was sent.
	Dead Verdict = "dead"
)

// Verify is what verifying a code does to s at now, matches telling whether the code sent
// is the one s holds the MAC of: the verdict, the State to write and whether to write it (a
// dead code writes nothing). A right code is spent (its MAC dropped); a wrong one spends an
// attempt, and the last attempt drops the MAC too.
func Verify(s State, now time.Time, matches bool) (Verdict, State, bool) {
	if !s.Live(now) {
		return Dead, s, false
	}
	next := s
	if matches {
		next.MAC, next.KeyID = nil, ""
		return Valid, next, true
	}
	next.Attempts++
	if next.Attempts >= next.MaxAttempts {
		next.MAC, next.KeyID = nil, ""
	}
	return Wrong, next, true
}
