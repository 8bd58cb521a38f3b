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

// Package audit writes the operator's audit trail: one JSON line per state-changing operation
// (a token issued, rotated, re-issued, replaced, revoked, redeemed, spent, cleared or expired),
// saying who did it, from where, to which token, and how it ended; never a token or any part
// of its secret, only its public id. Its model is a Kubernetes audit event at the Metadata
// level, and Vault's audit devices (one line per operation).
package audit

import (
	"encoding/json"
	"io"
	"os"
	"sync"
	"time"

	"github.com/tokenops/token-operator/internal/token"
)

// Version marks every audit line, so that a reader can tell them from log lines when they
// share a stream.
const Version = "audit.tokens.tokenops.io/v1"

// Operations.
const (
	OpIssue   = "issue"   // a token issued over HTTP, or a TokenRequest's first token
	OpReissue = "reissue" // a TokenRequest's Secret re-created after a deletion by hand
	OpReplace = "replace" // a TokenRequest's token replaced after an edit by hand
	OpRotate  = "rotate"  // a TokenRequest's token rotated
	// OpAdopt: a TokenRequest's token found in its Secret but not in its status (written by a
	// replica that stopped before it recorded it, or whose status patch was lost) and recorded
	// now. Such a token may lack its issue line (the replica stopped between the two), so an
	// adopt line keeps the trail complete: every token has an issue, reissue, replace or
	// rotate line, or an adopt line, or both.
	OpAdopt    = "adopt"
	OpRevoke   = "revoke"   // a token issued over HTTP revoked
	OpRedeem   = "redeem"   // one use of a limited-use token spent
	OpSpend    = "spend"    // a spent TokenRequest's Secret deleted
	OpClear    = "clear"    // DELETE /app/clear/all/tokens
	OpExpire   = "expire"   // an expired token's Secret deleted by the expiry controller
	OpValidate = "validate" // a failed validation (only with --audit-failed-validations)
	// OpCodeIssue, OpCodeVerify and OpCodeSweep: a one-time code issued, verified (a right or
	// a wrong code; one finding no live code only with --audit-failed-validations), and the
	// Secrets of dead codes deleted.
	OpCodeIssue  = "code-issue"
	OpCodeVerify = "code-verify"
	OpCodeSweep  = "code-sweep"
)

// Outcomes.
const (
	Success = "success"
	Failure = "failure"
)

// Actor is the user of the operator's own controllers in the audit trail.
const Actor = "system:token-operator"

// Event is one audit line.
type Event struct {
	Audit string    `json:"audit"`
	Time  time.Time `json:"time"`
	// RequestID is the HTTP request's id (X-Request-Id); empty for a controller's operation.
	RequestID string `json:"request_id,omitempty"`
	Operation string `json:"operation"`
	Outcome   string `json:"outcome"`
	// Reason says why an operation failed, or what a failed validation found.
	Reason string `json:"reason,omitempty"`
	// TokenID is the public id of the token operated on.
	TokenID string `json:"token_id,omitempty"`
	Source  string `json:"source,omitempty"`
	// Namespace and Name are the token's Secret.
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name,omitempty"`
	// TokenRequest names the TokenRequest that controls the Secret, if one does.
	TokenRequest string `json:"token_request,omitempty"`
	// Subject is the token's subject as an HMAC under the operator's audit subkey
	// (provenance.Keyring.AuditMAC), never in plaintext: the same subject has the same value
	// in every line, so lines correlate without naming the person.
	Subject string `json:"subject,omitempty"`
	// Purpose is the token's purpose (not personal data).
	Purpose string `json:"purpose,omitempty"`
	// UsesLeft is a limited-use token's count after the operation.
	UsesLeft *int64 `json:"uses_left,omitempty"`
	// AttemptsLeft is a one-time code's verifications left after a wrong one.
	AttemptsLeft *int64 `json:"attempts_left,omitempty"`
	// Deleted is how many Secrets a clear (or a sweep of codes) deleted.
	Deleted *int64 `json:"deleted,omitempty"`
	// User and Groups are the caller: the user --http-auth=kubernetes admitted, else
	// system:anonymous; Actor for the operator's own controllers.
	User   string   `json:"user"`
	Groups []string `json:"groups,omitempty"`
	// ClientAddress is the client's address, after trusted proxies; UserAgent what it says it
	// is (at most 256 bytes).
	ClientAddress string `json:"client_address,omitempty"`
	UserAgent     string `json:"user_agent,omitempty"`
}

// Log writes audit lines to one writer. A nil Log writes nothing.
type Log struct {
	mu  sync.Mutex
	enc *json.Encoder
	// now stamps each line.
	now func() time.Time
}

// New writes audit lines to w.
func New(w io.Writer) *Log {
	return &Log{enc: json.NewEncoder(w), now: time.Now}
}

// Write writes e as one line, stamped with the time and the audit version. An error writing
// it is returned; the operation it records has already happened.
func (l *Log) Write(e Event) error {
	if l == nil {
		return nil
	}
	e.Audit, e.Time = Version, l.now().UTC()
	if len(e.UserAgent) > 256 {
		e.UserAgent = e.UserAgent[:256]
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.enc.Encode(e)
}

// Open opens the audit log that --audit-log-path names: nil for "" (no audit log), standard
// output for "-", else the file, appended to (created with mode 0600).
func Open(path string) (*Log, error) {
	switch path {
	case "":
		return nil, nil
	case "-":
		return New(os.Stdout), nil
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600) //nolint:gosec // the path the operator was given
	if err != nil {
		return nil, err
	}
	return New(f), nil
}

// Of is an event about the token a Record holds: its current token's id, its source, its
// Secret and the TokenRequest that controls it.
func Of(op, outcome string, rec *token.Record) Event {
	e := Event{Operation: op, Outcome: outcome, Source: string(rec.Source), Namespace: rec.Namespace, Name: rec.Name}
	if rec.HasToken {
		e.TokenID = rec.Current.ID.String()
	}
	if rec.Controller != nil {
		e.TokenRequest = rec.Controller.Name
	}
	e.Purpose = rec.Purpose()
	return e
}
