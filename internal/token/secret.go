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
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// The shape of a token Secret. Every token Secret, whatever issued it, carries all of these.
const (
	// SecretType is the type of every token Secret.
	SecretType corev1.SecretType = "tokens.tokenops.io/token" //nolint:gosec // a Secret type, not a credential
	// DataToken is the data key of the whole token, "<id>:<secret>": what a pod mounts.
	DataToken = "token"
	// DataTokenID is the data key of the token's public id.
	DataTokenID = "token-id"
	// AnnotationIssuedAt is when the token was issued (RFC 3339, UTC).
	AnnotationIssuedAt = "tokens.tokenops.io/issued-at"
	// AnnotationExpiresAt is when the token stops validating and its Secret is deleted
	// (RFC 3339, UTC). A value that does not parse counts as expired.
	AnnotationExpiresAt = "tokens.tokenops.io/expires-at"
	// LabelManagedBy marks a Secret as ours; the manager's cache holds only Secrets with it.
	LabelManagedBy = "app.kubernetes.io/managed-by"
	// ManagedBy is LabelManagedBy's value on our Secrets.
	ManagedBy = "token-operator"
	// LabelTokenID carries the token's public id, so a token can be found by it.
	LabelTokenID = "tokens.tokenops.io/token-id" //nolint:gosec // a label key, not a credential
	// LabelSource tells what issued the token.
	LabelSource = "tokens.tokenops.io/source"
)

// Keys that only some token Secrets carry.
const (
	// DataPreviousToken is the data key of the token a rotation replaced, "<id>:<secret>",
	// which keeps validating until AnnotationPreviousExpiresAt.
	DataPreviousToken = "previous-token"
	// AnnotationPreviousExpiresAt is when the previous token stops validating (RFC 3339, UTC).
	AnnotationPreviousExpiresAt = "tokens.tokenops.io/previous-expires-at"
	// AnnotationRevision counts the tokens a TokenRequest has had: 1 for its first, one more
	// for each rotation or re-issue. HTTP tokens have none.
	AnnotationRevision = "tokens.tokenops.io/revision"
	// AnnotationUsesLeft is how many redemptions a limited-use token has left (a decimal
	// integer). A token without it has no use limit; "0" or a value that does not parse
	// means spent.
	AnnotationUsesLeft = "tokens.tokenops.io/uses-left"
)

// Source is what issued a token: the LabelSource value.
type Source string

const (
	// SourceTokenRequest marks a token issued for a TokenRequest.
	SourceTokenRequest Source = "tokenrequest"
	// SourceHTTP marks a token issued over the HTTP API.
	SourceHTTP Source = "http"
)

// Selector selects every token Secret, and only those.
func Selector() labels.Selector {
	return labels.SelectorFromSet(labels.Set{LabelManagedBy: ManagedBy})
}

// IsTokenSecret reports whether a Secret is a token Secret: our label and our type.
func IsTokenSecret(s *corev1.Secret) bool {
	return s.Type == SecretType && s.Labels[LabelManagedBy] == ManagedBy
}

// HTTPSecretName is the name of the Secret of a token issued over HTTP.
func HTTPSecretName(id string) string {
	return "token-" + id
}

// Lifetime is when a token was issued and when it expires, both whole seconds in UTC, as
// they are written in RFC 3339 annotations.
type Lifetime struct {
	IssuedAt  time.Time
	ExpiresAt time.Time
}

// NewLifetime starts a lifetime of ttl at now. Times are truncated to the second, so a token
// never lives longer than ttl.
func NewLifetime(now time.Time, ttl time.Duration) Lifetime {
	issued := now.UTC().Truncate(time.Second)
	return Lifetime{IssuedAt: issued, ExpiresAt: issued.Add(ttl).Truncate(time.Second)}
}

// Expired reports whether the lifetime is over at now.
func (l Lifetime) Expired(now time.Time) bool {
	return !now.Before(l.ExpiresAt)
}

// Remaining is how long the lifetime still runs at now, or zero when it is over.
func (l Lifetime) Remaining(now time.Time) time.Duration {
	return max(l.ExpiresAt.Sub(now), 0)
}

// Issued is everything a token Secret records.
type Issued struct {
	Token
	Lifetime
	Source Source
	// Revision is the AnnotationRevision value; 0 writes none.
	Revision int64
	// UsesLeft is how many redemptions remain; nil for a token without a use limit.
	UsesLeft *int64
	// Previous is the token a rotation replaced, valid until its own expiry; nil for none.
	Previous *Previous
}

// Previous is a token replaced by a rotation, still valid until ExpiresAt.
type Previous struct {
	Token
	ExpiresAt time.Time
}

// ApplyTo writes the token, its lifetime, its type and our labels onto secret, keeping every
// other key the Secret carries. Callers put their own labels and annotations on first, so ours
// win. Keys of the optional parts (revision, uses left, previous token) are removed when the
// part is unset. It reports whether it changed anything.
func (i Issued) ApplyTo(secret *corev1.Secret) bool {
	changed := false
	set := func(m *map[string]string, k, v string) {
		if *m == nil {
			*m = map[string]string{}
		}
		if cur, ok := (*m)[k]; !ok || cur != v {
			(*m)[k] = v
			changed = true
		}
	}
	unset := func(m map[string]string, k string) {
		if _, ok := m[k]; ok {
			delete(m, k)
			changed = true
		}
	}
	setData := func(k, v string) {
		if secret.Data == nil {
			secret.Data = map[string][]byte{}
		}
		if cur, ok := secret.Data[k]; !ok || string(cur) != v {
			secret.Data[k] = []byte(v)
			changed = true
		}
	}
	if secret.Type != SecretType {
		secret.Type = SecretType
		changed = true
	}
	set(&secret.Labels, LabelManagedBy, ManagedBy)
	set(&secret.Labels, LabelTokenID, i.ID)
	set(&secret.Labels, LabelSource, string(i.Source))
	set(&secret.Annotations, AnnotationIssuedAt, formatTime(i.IssuedAt))
	set(&secret.Annotations, AnnotationExpiresAt, formatTime(i.ExpiresAt))
	setData(DataToken, i.String())
	setData(DataTokenID, i.ID)
	if i.Revision > 0 {
		set(&secret.Annotations, AnnotationRevision, strconv.FormatInt(i.Revision, 10))
	} else {
		unset(secret.Annotations, AnnotationRevision)
	}
	if i.UsesLeft != nil {
		set(&secret.Annotations, AnnotationUsesLeft, strconv.FormatInt(*i.UsesLeft, 10))
	} else {
		unset(secret.Annotations, AnnotationUsesLeft)
	}
	if i.Previous != nil {
		setData(DataPreviousToken, i.Previous.String())
		set(&secret.Annotations, AnnotationPreviousExpiresAt, formatTime(i.Previous.ExpiresAt))
	} else {
		if _, ok := secret.Data[DataPreviousToken]; ok {
			delete(secret.Data, DataPreviousToken)
			changed = true
		}
		unset(secret.Annotations, AnnotationPreviousExpiresAt)
	}
	return changed
}

func formatTime(t time.Time) string {
	return t.UTC().Format(time.RFC3339)
}

// ExpiresAt reads a token Secret's expiry. An error means the annotation is missing or does
// not parse, and the Secret counts as expired.
func ExpiresAt(secret *corev1.Secret) (time.Time, error) {
	return annotationTime(secret, AnnotationExpiresAt)
}

// PreviousExpiresAt reads when a rotated Secret's previous token stops validating. An error
// means there is no previous token's expiry, or it does not parse.
func PreviousExpiresAt(secret *corev1.Secret) (time.Time, error) {
	return annotationTime(secret, AnnotationPreviousExpiresAt)
}

func annotationTime(secret *corev1.Secret, key string) (time.Time, error) {
	v, ok := secret.Annotations[key]
	if !ok {
		return time.Time{}, errors.New("no " + key + " annotation")
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("annotation %s: %w", key, err)
	}
	return t, nil
}

// UsesLeft reads a token Secret's remaining uses. limited is false for a token without a use
// limit; a value that does not parse counts as no use left.
func UsesLeft(secret *corev1.Secret) (n int64, limited bool) {
	v, ok := secret.Annotations[AnnotationUsesLeft]
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, true
	}
	return n, true
}

// Spent reports whether a limited-use token has no use left.
func Spent(secret *corev1.Secret) bool {
	n, limited := UsesLeft(secret)
	return limited && n == 0
}

// Revision reads a token Secret's revision, 0 when it has none or it does not parse.
func Revision(secret *corev1.Secret) int64 {
	n, err := strconv.ParseInt(secret.Annotations[AnnotationRevision], 10, 64)
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// Cache-only data keys: the operator's cache keeps each token's id and the SHA-256 digest of
// the whole token instead of the token itself (Conceal). They are never written to the API.
const (
	cachedID             = "cached.token-id"
	cachedDigest         = "cached.token-sha256"
	cachedPreviousID     = "cached.previous-token-id"
	cachedPreviousDigest = "cached.previous-token-sha256"
)

// Digest is the SHA-256 digest of a whole token as presented, "<id>:<secret>".
func Digest(presented string) []byte {
	sum := sha256.Sum256([]byte(presented))
	return sum[:]
}

// Conceal replaces a token Secret's tokens (current and previous) with their ids and digests,
// so that what the operator keeps in memory cannot be presented as a token. The cache applies
// it to every Secret it stores; a Secret without token data is left alone.
func Conceal(secret *corev1.Secret) {
	raw, ok := secret.Data[DataToken]
	if !ok {
		return
	}
	conceal(secret, DataToken, cachedID, cachedDigest, raw)
	if prev, ok := secret.Data[DataPreviousToken]; ok {
		conceal(secret, DataPreviousToken, cachedPreviousID, cachedPreviousDigest, prev)
	}
}

func conceal(secret *corev1.Secret, key, idKey, digestKey string, raw []byte) {
	if id := idOf(raw); id != "" {
		secret.Data[idKey] = []byte(id)
	}
	secret.Data[digestKey] = Digest(string(raw))
	delete(secret.Data, key)
}

// idOf is the id of a whole token, or "" when it is malformed.
func idOf(raw []byte) string {
	id, _, found := strings.Cut(string(raw), string(Separator))
	if !found || !ValidID(id) {
		return ""
	}
	return id
}

// Concealed returns what Conceal kept of a cached Secret's token: its id (empty when the
// token was malformed) and its digest; ok is false for a Secret that is not concealed.
func Concealed(secret *corev1.Secret) (id string, digest []byte, ok bool) {
	digest, ok = secret.Data[cachedDigest]
	return string(secret.Data[cachedID]), digest, ok
}

// Slot says which of a Secret's tokens a presented token is.
type Slot int

const (
	// SlotNone means the Secret does not hold the presented token.
	SlotNone Slot = iota
	// SlotCurrent means the presented token is the Secret's current token.
	SlotCurrent
	// SlotPrevious means the presented token is the one a rotation replaced.
	SlotPrevious
)

// Match says which of a Secret's tokens, concealed or not, is exactly the presented one,
// comparing in constant time.
func Match(secret *corev1.Secret, presented string) Slot {
	if _, digest, ok := Concealed(secret); ok {
		d := Digest(presented)
		current := subtle.ConstantTimeCompare(digest, d)
		previous := subtle.ConstantTimeCompare(secret.Data[cachedPreviousDigest], d)
		return slot(current, previous)
	}
	p := []byte(presented)
	current := subtle.ConstantTimeCompare(secret.Data[DataToken], p)
	previous := 0
	if prev, ok := secret.Data[DataPreviousToken]; ok {
		previous = subtle.ConstantTimeCompare(prev, p)
	}
	return slot(current, previous)
}

func slot(current, previous int) Slot {
	switch {
	case current == 1:
		return SlotCurrent
	case previous == 1:
		return SlotPrevious
	}
	return SlotNone
}

// Verdict is what a token Secret makes of a presented token at a given time.
type Verdict string

const (
	// VerdictValid: the token is the Secret's current token, or the previous token of a
	// rotation, and has neither expired nor been spent.
	VerdictValid Verdict = "valid"
	// VerdictUnknown: the Secret does not hold the token.
	VerdictUnknown Verdict = "unknown"
	// VerdictExpired: the token's expiry has passed (or does not parse).
	VerdictExpired Verdict = "expired"
	// VerdictSpent: a limited-use token with no use left.
	VerdictSpent Verdict = "spent"
)

// Verify says what a token Secret, concealed or not, makes of presented at now. A previous
// token counts until its own expiry, never beyond the Secret's.
func Verify(secret *corev1.Secret, presented string, now time.Time) Verdict {
	return Judge(secret, Match(secret, presented), now)
}

// Judge is Verify for a caller that has already matched the presented token (Match), so that
// it is hashed once.
func Judge(secret *corev1.Secret, which Slot, now time.Time) Verdict {
	if which == SlotNone {
		return VerdictUnknown
	}
	expiresAt, err := ExpiresAt(secret)
	if err != nil || !now.Before(expiresAt) {
		return VerdictExpired
	}
	if which == SlotPrevious {
		prevExpiresAt, err := PreviousExpiresAt(secret)
		if err != nil || !now.Before(prevExpiresAt) {
			return VerdictExpired
		}
	}
	if Spent(secret) {
		return VerdictSpent
	}
	return VerdictValid
}

// TokenID is the id of the token a Secret holds, concealed or not, or "" when the token is
// missing or malformed.
func TokenID(secret *corev1.Secret) string {
	if id, _, ok := Concealed(secret); ok {
		return id
	}
	return idOf(secret.Data[DataToken])
}

// PreviousTokenID is the id of the previous token a Secret holds, concealed or not, or ""
// when there is none or it is malformed.
func PreviousTokenID(secret *corev1.Secret) string {
	if _, _, ok := Concealed(secret); ok {
		return string(secret.Data[cachedPreviousID])
	}
	return idOf(secret.Data[DataPreviousToken])
}

// InStatus reports whether a Secret, concealed or not, already is what ApplyTo would make of
// want, judged by want's public parts (token ids, lifetimes, source and revision; not the
// secrets and not the uses left, which redemptions change): nothing to heal.
func InStatus(secret *corev1.Secret, want Issued) bool {
	prevID, prevExpires := "", ""
	if want.Previous != nil {
		prevID, prevExpires = want.Previous.ID, formatTime(want.Previous.ExpiresAt)
	}
	revision := ""
	if want.Revision > 0 {
		revision = strconv.FormatInt(want.Revision, 10)
	}
	return secret.Type == SecretType &&
		TokenID(secret) == want.ID &&
		string(secret.Data[DataTokenID]) == want.ID &&
		secret.Labels[LabelManagedBy] == ManagedBy &&
		secret.Labels[LabelTokenID] == want.ID &&
		secret.Labels[LabelSource] == string(want.Source) &&
		secret.Annotations[AnnotationIssuedAt] == formatTime(want.IssuedAt) &&
		secret.Annotations[AnnotationExpiresAt] == formatTime(want.ExpiresAt) &&
		secret.Annotations[AnnotationRevision] == revision &&
		PreviousTokenID(secret) == prevID &&
		secret.Annotations[AnnotationPreviousExpiresAt] == prevExpires
}

// FromSecret reads the token a Secret holds. It fails when the token data is missing or
// malformed; the other parts are read as far as they parse (a previous token that does not
// parse is left out).
func FromSecret(secret *corev1.Secret) (Issued, error) {
	tok, err := Parse(string(secret.Data[DataToken]))
	if err != nil {
		return Issued{}, fmt.Errorf("data %q: %w", DataToken, err)
	}
	out := Issued{Token: tok, Source: Source(secret.Labels[LabelSource]), Revision: Revision(secret)}
	out.ExpiresAt, _ = ExpiresAt(secret)
	out.IssuedAt, _ = time.Parse(time.RFC3339, secret.Annotations[AnnotationIssuedAt])
	if n, limited := UsesLeft(secret); limited {
		out.UsesLeft = &n
	}
	if prev, err := Parse(string(secret.Data[DataPreviousToken])); err == nil {
		if prevExpires, err := PreviousExpiresAt(secret); err == nil {
			out.Previous = &Previous{Token: prev, ExpiresAt: prevExpires}
		}
	}
	return out, nil
}
