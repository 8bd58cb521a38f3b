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
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// The shape of a token Secret. Every token Secret, whatever issued it, carries all of these.
const (
	// SecretType is the type of every token Secret.
	SecretType corev1.SecretType = "tokens.tokenops.io/token" //nolint:gosec // a Secret type, not a credential
	// DataToken is the data key of the whole token, "<id>:<secret>": what a pod mounts. Only
	// a TokenRequest's Secret holds it; a token issued over HTTP is kept as DataTokenDigest.
	DataToken = "token"
	// DataTokenID is the data key of the token's public id.
	DataTokenID = "token-id"
	// DataTokenDigest is the data key of the SHA-256 digest of the whole token (32 bytes), in
	// place of the token itself, in the Secret of a token issued over HTTP: the token exists
	// in plaintext only in the answer to POST /app/token.
	DataTokenDigest = "token-sha256"
	// AnnotationIssuedAt is when the token was issued (RFC 3339, UTC).
	AnnotationIssuedAt = "tokens.tokenops.io/issued-at"
	// AnnotationExpiresAt is when the token stops validating and its Secret is deleted
	// (RFC 3339, UTC). A value that does not parse counts as expired.
	AnnotationExpiresAt = "tokens.tokenops.io/expires-at"
	// LabelManagedBy marks a Secret as ours; the token index lists and watches only Secrets with it.
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
	// DataSubject is whom the token is for (a user id, an e-mail address): personal data, so
	// in the Secret's data (encrypted at rest where the cluster encrypts Secrets), never in a
	// label or an annotation.
	DataSubject = "subject"
	// DataPurpose is what the token is for ("password-reset"): a token bound to a purpose
	// validates only when asked with it.
	DataPurpose = "purpose"
	// DataMetadata is the caller's string map, as JSON with sorted keys.
	DataMetadata = "metadata"
	// DataIssuer is who issued the token (see Record.Issuer): the caller over HTTP, or the
	// TokenRequest. Subjects are per issuer.
	DataIssuer = "issuer"
)

// OwnLabel reports whether the operator writes a label of this key itself: such a key in a
// TokenRequest's spec.secretTemplate is overwritten, and MetaSum leaves it out.
func OwnLabel(key string) bool {
	return key == LabelManagedBy || key == LabelTokenID || key == LabelSource
}

// OwnAnnotation reports whether the operator writes an annotation of this key itself.
func OwnAnnotation(key string) bool {
	switch key {
	case AnnotationIssuedAt, AnnotationExpiresAt, AnnotationPreviousExpiresAt, AnnotationRevision, AnnotationUsesLeft,
		AnnotationSeal:
		return true
	}
	return false
}

// MetaSum is a checksum of a Secret's labels and annotations other than the operator's own
// (OwnLabel, OwnAnnotation): those a TokenRequest's spec.secretTemplate put there, and any
// added by hand. It does not depend on map order, and allocates nothing. The TokenRequest
// controller compares a Record's Meta with the sum of its template to tell, without reading
// the Secret, that no template key was removed or changed.
func MetaSum(secretLabels, secretAnnotations map[string]string) uint32 {
	var sum uint32
	for k, v := range secretLabels {
		if !OwnLabel(k) {
			sum += entrySum('l', k, v)
		}
	}
	for k, v := range secretAnnotations {
		if !OwnAnnotation(k) {
			sum += entrySum('a', k, v)
		}
	}
	return sum
}

// entrySum is FNV-1a (32 bits) of one map entry: kind, key, a separator, value.
func entrySum(kind byte, key, value string) uint32 {
	const offset, prime = 2166136261, 16777619
	h := uint32(offset)
	add := func(b byte) { h = (h ^ uint32(b)) * prime }
	add(kind)
	for i := range len(key) {
		add(key[i])
	}
	add(0)
	for i := range len(value) {
		add(value[i])
	}
	return h
}

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
	// Subject, Purpose and Metadata say whom and what the token is for; empty for none.
	Subject, Purpose string
	Metadata         map[string]string
	// Issuer is who issued the token (DataIssuer); "" writes none.
	Issuer string
}

// Previous is a token replaced by a rotation, still valid until ExpiresAt.
type Previous struct {
	Token
	ExpiresAt time.Time
}

// ApplyTo writes the token (for a token issued over HTTP, its digest: see DataTokenDigest),
// its lifetime, its type and our labels onto secret, keeping every
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
	unsetData := func(k string) {
		if _, ok := secret.Data[k]; ok {
			delete(secret.Data, k)
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
	if i.Source == SourceHTTP {
		d := DigestOf(i.String())
		setData(DataTokenDigest, string(d[:]))
		unsetData(DataToken)
	} else {
		setData(DataToken, i.String())
		unsetData(DataTokenDigest)
	}
	setData(DataTokenID, i.ID)
	for k, v := range map[string]string{DataSubject: i.Subject, DataPurpose: i.Purpose, DataMetadata: metadataJSON(i.Metadata),
		DataIssuer: i.Issuer} {
		if v != "" {
			setData(k, v)
		} else {
			unsetData(k)
		}
	}
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
		unsetData(DataPreviousToken)
		unset(secret.Annotations, AnnotationPreviousExpiresAt)
	}
	return changed
}

// metadataJSON is m as JSON (encoding/json sorts map keys), "" for none.
func metadataJSON(m map[string]string) string {
	if len(m) == 0 {
		return ""
	}
	b, _ := json.Marshal(m) // a string map always marshals
	return string(b)
}

func formatTime(t time.Time) string {
	return t.UTC().Format(time.RFC3339)
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

// usesLeftOf reads AnnotationUsesLeft: Unlimited without it; a value that does not parse, or
// is negative, counts as no use left.
func usesLeftOf(secret *corev1.Secret) int64 {
	v, ok := secret.Annotations[AnnotationUsesLeft]
	if !ok {
		return Unlimited
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// UsesLeftOf is how many redemptions the token a Secret holds has left, and whether it has a
// use limit at all (a count that does not parse reads as none left).
func UsesLeftOf(secret *corev1.Secret) (n int64, limited bool) {
	n = usesLeftOf(secret)
	return n, n != Unlimited
}

// revisionOf reads AnnotationRevision, 0 when it is missing or does not parse.
func revisionOf(secret *corev1.Secret) int64 {
	n, err := strconv.ParseInt(secret.Annotations[AnnotationRevision], 10, 64)
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// FromSecret reads the token a Secret holds in full (DataToken): a TokenRequest's Secret as the
// API server has it. It fails when the token data is missing or malformed; the other parts are
// read as far as they parse (a previous token that does not parse is left out).
func FromSecret(secret *corev1.Secret) (Issued, error) {
	tok, err := Parse(string(secret.Data[DataToken]))
	if err != nil {
		return Issued{}, fmt.Errorf("data %q: %w", DataToken, err)
	}
	out := Issued{Token: tok, Source: Source(secret.Labels[LabelSource]), Revision: revisionOf(secret),
		Subject: string(secret.Data[DataSubject]), Purpose: string(secret.Data[DataPurpose]), Issuer: string(secret.Data[DataIssuer])}
	if m := secret.Data[DataMetadata]; len(m) > 0 {
		_ = json.Unmarshal(m, &out.Metadata) // written by metadataJSON; anything else reads as none
	}
	out.ExpiresAt, _ = annotationTime(secret, AnnotationExpiresAt)
	out.IssuedAt, _ = annotationTime(secret, AnnotationIssuedAt)
	if n := usesLeftOf(secret); n != Unlimited {
		out.UsesLeft = &n
	}
	if prev, err := Parse(string(secret.Data[DataPreviousToken])); err == nil {
		if prevExpires, err := annotationTime(secret, AnnotationPreviousExpiresAt); err == nil {
			out.Previous = &Previous{Token: prev, ExpiresAt: prevExpires}
		}
	}
	return out, nil
}
