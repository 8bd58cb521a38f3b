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
}

// ApplyTo writes the token, its lifetime, its type and our labels onto secret, keeping every
// other key the Secret carries. Callers put their own labels and annotations on first, so ours
// win. It reports whether it changed anything.
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
	set(&secret.Annotations, AnnotationIssuedAt, i.IssuedAt.UTC().Format(time.RFC3339))
	set(&secret.Annotations, AnnotationExpiresAt, i.ExpiresAt.UTC().Format(time.RFC3339))
	setData(DataToken, i.String())
	setData(DataTokenID, i.ID)
	return changed
}

// ExpiresAt reads a token Secret's expiry. An error means the annotation is missing or does
// not parse, and the Secret counts as expired.
func ExpiresAt(secret *corev1.Secret) (time.Time, error) {
	v, ok := secret.Annotations[AnnotationExpiresAt]
	if !ok {
		return time.Time{}, errors.New("no " + AnnotationExpiresAt + " annotation")
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("annotation %s: %w", AnnotationExpiresAt, err)
	}
	return t, nil
}

// Cache-only data keys: the operator's cache keeps a token's id and the SHA-256 digest of
// the whole token instead of the token itself (Conceal). They are never written to the API.
const (
	cachedID     = "cached.token-id"
	cachedDigest = "cached.token-sha256"
)

// Digest is the SHA-256 digest of a whole token as presented, "<id>:<secret>".
func Digest(presented string) []byte {
	sum := sha256.Sum256([]byte(presented))
	return sum[:]
}

// Conceal replaces a token Secret's token with its id and digest, so that what the
// operator keeps in memory cannot be presented as a token. The cache applies it to every
// Secret it stores; a Secret without token data is left alone.
func Conceal(secret *corev1.Secret) {
	raw, ok := secret.Data[DataToken]
	if !ok {
		return
	}
	if id, _, found := strings.Cut(string(raw), string(Separator)); found && ValidID(id) {
		secret.Data[cachedID] = []byte(id)
	}
	secret.Data[cachedDigest] = Digest(string(raw))
	delete(secret.Data, DataToken)
}

// Concealed returns what Conceal kept of a cached Secret's token: its id (empty when the
// token was malformed) and its digest; ok is false for a Secret that is not concealed.
func Concealed(secret *corev1.Secret) (id string, digest []byte, ok bool) {
	digest, ok = secret.Data[cachedDigest]
	return string(secret.Data[cachedID]), digest, ok
}

// Holds reports whether a Secret, concealed or not, holds exactly the presented token,
// comparing in constant time.
func Holds(secret *corev1.Secret, presented string) bool {
	if _, digest, ok := Concealed(secret); ok {
		return subtle.ConstantTimeCompare(digest, Digest(presented)) == 1
	}
	return subtle.ConstantTimeCompare(secret.Data[DataToken], []byte(presented)) == 1
}

// TokenID is the id of the token a Secret holds, concealed or not, or "" when the token is
// missing or malformed.
func TokenID(secret *corev1.Secret) string {
	if id, _, ok := Concealed(secret); ok {
		return id
	}
	id, _, found := strings.Cut(string(secret.Data[DataToken]), string(Separator))
	if !found || !ValidID(id) {
		return ""
	}
	return id
}

// InStatus reports whether a Secret, concealed or not, already is what ApplyTo would make
// of it for a token with the given id, lifetime and source: nothing to heal.
func InStatus(secret *corev1.Secret, id string, l Lifetime, source Source) bool {
	return secret.Type == SecretType &&
		TokenID(secret) == id &&
		string(secret.Data[DataTokenID]) == id &&
		secret.Labels[LabelManagedBy] == ManagedBy &&
		secret.Labels[LabelTokenID] == id &&
		secret.Labels[LabelSource] == string(source) &&
		secret.Annotations[AnnotationIssuedAt] == l.IssuedAt.UTC().Format(time.RFC3339) &&
		secret.Annotations[AnnotationExpiresAt] == l.ExpiresAt.UTC().Format(time.RFC3339)
}

// FromSecret reads the token a Secret holds. It fails when the token data is missing or
// malformed; the Secret's lifetime annotations are read as far as they parse.
func FromSecret(secret *corev1.Secret) (Issued, error) {
	tok, err := Parse(string(secret.Data[DataToken]))
	if err != nil {
		return Issued{}, fmt.Errorf("data %q: %w", DataToken, err)
	}
	out := Issued{Token: tok, Source: Source(secret.Labels[LabelSource])}
	out.ExpiresAt, _ = ExpiresAt(secret)
	out.IssuedAt, _ = time.Parse(time.RFC3339, secret.Annotations[AnnotationIssuedAt])
	return out, nil
}
