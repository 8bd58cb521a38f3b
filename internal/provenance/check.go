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
	"sync/atomic"

	corev1 "k8s.io/api/core/v1"

	"github.com/tokenops/token-operator/internal/token"
)

// Checker admits the token Secrets the operator wrote, as it wrote them. Its verdicts are
// pure functions of the Secret, the keys and the TokenRequest's Binding.
type Checker struct {
	// HTTPNamespace is --http-namespace: the only namespace an HTTP token may live in.
	HTTPNamespace string

	keys atomic.Pointer[Keyring]
}

// NewChecker checks with keys, for HTTP tokens in httpNamespace.
func NewChecker(keys *Keyring, httpNamespace string) *Checker {
	c := &Checker{HTTPNamespace: httpNamespace}
	c.keys.Store(keys)
	return c
}

// Keys is the keyring in use.
func (c *Checker) Keys() *Keyring { return c.keys.Load() }

// SetKeys swaps in a new keyring (a key added for rotation).
func (c *Checker) SetKeys(k *Keyring) { c.keys.Store(k) }

// Verdict is what the Checker makes of one token Secret.
type Verdict struct {
	// Admit is true when the Secret's tokens may validate (within their Bound, for a
	// TokenRequest's).
	Admit bool
	// Sealed is true when its seal verified; an admitted Secret without is one of an earlier
	// version (legacy).
	Sealed bool
	// Reason says why a Secret is not admitted, naming no token.
	Reason string
}

// Reasons a Secret is not admitted.
const (
	ReasonOutsideHTTPNamespace = "an HTTP token outside --http-namespace"
	ReasonNoController         = "a TokenRequest-sourced token Secret without a controlling TokenRequest"
	ReasonUnknownSource        = "a token Secret of no known source"
	ReasonNoToken              = "holds no token that parses" //nolint:gosec // a reason, not a credential
	ReasonUnsealed             = "no seal, and not a Secret of an earlier version"
)

// Check decides whether the Secret s, read into rec, is admitted. binding is the status of
// the TokenRequest that controls it (nil: none known); it matters only for an unsealed
// TokenRequest Secret, which is admitted as one of an earlier version only when the status
// records its token and that token was issued before the operator first sealed: evidence a
// Secret writer cannot produce.
func (c *Checker) Check(s *corev1.Secret, rec *token.Record, binding *token.Binding) Verdict {
	switch {
	case !rec.HasToken:
		return Verdict{Reason: ReasonNoToken}
	case rec.Source == token.SourceHTTP && (s.Namespace != c.HTTPNamespace || rec.Controller != nil):
		return Verdict{Reason: ReasonOutsideHTTPNamespace}
	case rec.Source == token.SourceTokenRequest && rec.Controller == nil:
		return Verdict{Reason: ReasonNoController}
	case rec.Source != token.SourceHTTP && rec.Source != token.SourceTokenRequest:
		return Verdict{Reason: ReasonUnknownSource}
	}
	keys := c.keys.Load()
	switch err := keys.Verify(s); err {
	case nil:
		return Verdict{Admit: true, Sealed: true}
	case ErrBadSeal:
		return Verdict{Reason: err.Error()}
	}
	since := keys.Since.Unix()
	if rec.Source == token.SourceHTTP && s.CreationTimestamp.Unix() < since && !s.CreationTimestamp.IsZero() {
		return Verdict{Admit: true}
	}
	if rec.Source == token.SourceTokenRequest && binding != nil && binding.IssuedAt != 0 && binding.IssuedAt < since {
		if b := rec.BoundBy(binding); b.Current || b.Previous {
			return Verdict{Admit: true}
		}
	}
	return Verdict{Reason: ReasonUnsealed}
}

// AuditSubject is what the audit trail records of a token's subject: its AuditMAC, "" for
// none or without keys (a nil Checker, in tests). The plaintext subject never reaches the
// audit trail through it.
func (c *Checker) AuditSubject(subject string) string {
	if c == nil || subject == "" {
		return ""
	}
	if k := c.Keys(); k != nil {
		return k.AuditMAC(subject)
	}
	return ""
}
