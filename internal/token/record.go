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
	"encoding/hex"
	"errors"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// BinaryID is a token id as its 8 bytes: how a Record keeps it and the index finds it.
type BinaryID [IDBytes]byte

// ParseID reads a token id ("<16 lower-case hex digits>"); ok is false for anything else.
func ParseID(id string) (b BinaryID, ok bool) {
	if !ValidID(id) {
		return b, false
	}
	_, err := hex.Decode(b[:], []byte(id))
	return b, err == nil
}

// String is the id as clients see it.
func (b BinaryID) String() string { return hex.EncodeToString(b[:]) }

// Digest is the SHA-256 digest of a whole token as presented, "<id>:<secret>".
type Digest [sha256.Size]byte

// DigestOf hashes a presented token.
func DigestOf(presented string) Digest { return sha256.Sum256([]byte(presented)) }

// Held is one token a Secret holds, as the operator keeps it: its id, the digest of the
// whole token (never the token) and its expiry in Unix seconds.
type Held struct {
	ID        BinaryID
	Digest    Digest
	ExpiresAt int64
}

// ExpiresAtTime is ExpiresAt as a time in UTC.
func (h Held) ExpiresAtTime() time.Time { return time.Unix(h.ExpiresAt, 0).UTC() }

// Record is what the operator keeps in memory of one token Secret, whatever issued it, and
// the only shape every reader of a cached token understands: what validation, revocation,
// redemption, lookup, expiry and the TokenRequest controller need, and no token. Times are
// Unix seconds, as the annotations are written; an annotation that does not parse reads as
// 0, which has expired. A Record is never changed once it is in the index: read it, replace
// it whole.
type Record struct {
	Namespace, Name string
	UID             types.UID
	// Controller is the TokenRequest that controls the Secret; nil for a token issued over
	// HTTP.
	Controller *Controller
	// Source is what issued the token (LabelSource).
	Source Source
	// Current is the Secret's token, if HasToken.
	Current Held
	// previous is the token a rotation replaced, during the overlap; nil otherwise (every
	// token issued over HTTP), so that those pay a pointer for it, not the whole Held.
	previous *Held
	// IssuedAt is the current token's issue time (AnnotationIssuedAt).
	IssuedAt int64
	// Revision is AnnotationRevision, 0 when missing or malformed.
	Revision int64
	// UsesLeft is AnnotationUsesLeft, Unlimited for a token without a use limit; a value
	// that does not parse counts as 0 (spent).
	UsesLeft int64
	// Meta is MetaSum of the labels and annotations of a TokenRequest's Secret (0 for a token
	// issued over HTTP, which has no template): it changes when a key the operator does not
	// write is added, removed or edited.
	Meta uint32
	// HasToken is false when the Secret holds no token that parses: it then validates
	// nothing, but still expires.
	HasToken bool
	// Deleting is true once the Secret has a deletion timestamp.
	Deleting bool
	// Intact is true when the Secret's labels and token-id data agree with its token: false
	// means edited by hand (the TokenRequest controller heals it).
	Intact bool
	// Plaintext is true when the Secret holds the token itself (DataToken), false when it
	// holds only its digest (tokens issued over HTTP).
	Plaintext bool
	// About says whom and what the token is for; nil for a token issued without any, so that
	// those pay a pointer, not three strings (see Subject, Purpose, Metadata).
	About *About
	// Sealed is true when the Secret's seal verified (package provenance); false for a Secret
	// of an earlier version admitted without one, which the operator seals on its next write.
	Sealed bool
	// Packing says how the token is stored: a Secret of its own (PackedNone), or as one entry
	// of a token slice (PackedEntry, whose Key names the slice); PackedSlice is the Record of a
	// slice Secret itself.
	Packing Packing
	// Bound is what the TokenRequest's status lets the Secret's tokens prove; the index sets it
	// (see Binding). Nil for a token issued over HTTP (nothing further bounds it), so that the
	// many HTTP tokens pay a pointer for it, not the whole struct.
	Bound *Bound
}

// HasPrevious is true during a rotation's overlap.
func (r *Record) HasPrevious() bool { return r.previous != nil }

// Previous is the token a rotation replaced, during the overlap (HasPrevious); the zero Held
// otherwise.
func (r *Record) Previous() Held {
	if r.previous == nil {
		return Held{}
	}
	return *r.previous
}

// WithPrevious sets the token a rotation replaced (tests and RecordOf).
func (r *Record) WithPrevious(h Held) { r.previous = &h }

// Controller names the TokenRequest that controls a token Secret.
type Controller struct {
	Name string
	UID  types.UID
}

// Same reports whether two Records say the same of their Secrets.
func (r *Record) Same(o *Record) bool {
	a, b := *r, *o
	a.Controller, b.Controller, a.Bound, b.Bound, a.About, b.About, a.previous, b.previous = nil, nil, nil, nil, nil, nil, nil, nil
	return a == b && r.HasPrevious() == o.HasPrevious() && r.Previous() == o.Previous() && (r.Controller == nil) == (o.Controller == nil) && (r.Controller == nil || *r.Controller == *o.Controller) &&
		r.Bound.same(o.Bound) && r.Subject() == o.Subject() && r.kind() == o.kind() && (r.About == nil) == (o.About == nil)
}

// Unlimited is Record.UsesLeft of a token without a use limit.
const Unlimited int64 = -1

// ErrNotTokenSecret is RecordOf's answer for a Secret that is not ours.
var ErrNotTokenSecret = errors.New("not a token Secret: want type " + string(SecretType) + " and label " +
	LabelManagedBy + "=" + ManagedBy)

// RecordOf reads a token Secret into its Record. It fails only for a Secret that is not a
// token Secret (our type and label); a token that does not parse, or a digest of the wrong
// size, gives a Record without HasToken, and err reports why (never with the
// token's value), so that the caller can say so while the Secret still expires.
func RecordOf(s *corev1.Secret) (Record, error) {
	if !IsTokenSecret(s) {
		return Record{}, ErrNotTokenSecret
	}
	r := Record{
		Namespace: s.Namespace,
		Name:      s.Name,
		UID:       s.UID,
		Source:    Source(s.Labels[LabelSource]),
		IssuedAt:  unixAnnotation(s, AnnotationIssuedAt),
		Revision:  revisionOf(s),
		UsesLeft:  usesLeftOf(s),
		Deleting:  s.DeletionTimestamp != nil,
	}
	k := Kind{Purpose: string(s.Data[DataPurpose]), Metadata: string(s.Data[DataMetadata])}
	if ref := metav1.GetControllerOfNoCopy(s); ref != nil && ref.Kind == "TokenRequest" {
		r.Controller = &Controller{Name: ref.Name, UID: ref.UID}
		r.Meta = MetaSum(s.Labels, s.Annotations)
	} else if issuer := string(s.Data[DataIssuer]); issuer != IssuerAnonymous {
		k.Issuer = issuer
	}
	if subject := string(s.Data[DataSubject]); subject != "" || k != (Kind{}) {
		if r.Controller != nil {
			// A TokenRequest's issuer is its controller's, never the Secret's word.
			k.Issuer = TokenRequestIssuer(r.Namespace, r.Controller.Name)
		}
		r.About = &About{Subject: subject, Kind: &k}
	}
	raw, plaintext := s.Data[DataToken]
	r.Plaintext = plaintext
	var err error
	r.Current, err = heldOf(raw, r.Plaintext, s.Data[DataTokenID], s.Data[DataTokenDigest])
	r.HasToken = err == nil
	if err == nil {
		r.Current.ExpiresAt = unixAnnotation(s, AnnotationExpiresAt)
		id := r.Current.ID.String()
		r.Intact = s.Labels[LabelTokenID] == id && string(s.Data[DataTokenID]) == id
	}
	if prev, ok := s.Data[DataPreviousToken]; ok {
		if p, perr := heldOf(prev, true, nil, nil); perr == nil {
			p.ExpiresAt = unixAnnotation(s, AnnotationPreviousExpiresAt)
			r.previous = &p
		}
	}
	return r, err
}

// heldOf reads one token from its plaintext, or, without one, from its id and digest.
func heldOf(plain []byte, hasPlain bool, id, digest []byte) (Held, error) {
	if hasPlain {
		tok, err := Parse(string(plain))
		if err != nil {
			return Held{}, errors.New("data " + DataToken + ": " + err.Error())
		}
		b, _ := ParseID(tok.ID)
		return Held{ID: b, Digest: sha256.Sum256(plain)}, nil
	}
	b, ok := ParseID(string(id))
	switch {
	case digest == nil && id == nil:
		return Held{}, errors.New("no data " + DataToken + " nor " + DataTokenDigest)
	case !ok:
		return Held{}, errors.New("data " + DataTokenID + ": not a token id")
	case len(digest) != sha256.Size:
		return Held{}, errors.New("data " + DataTokenDigest + ": want " + strconv.Itoa(sha256.Size) + " bytes, got " +
			strconv.Itoa(len(digest)))
	}
	return Held{ID: b, Digest: Digest(digest)}, nil
}

func unixAnnotation(s *corev1.Secret, key string) int64 {
	t, err := annotationTime(s, key)
	if err != nil {
		return 0
	}
	return t.Unix()
}

// Key is the Secret's namespace and name.
func (r *Record) Key() types.NamespacedName {
	return types.NamespacedName{Namespace: r.Namespace, Name: r.Name}
}

// ExpiresAt is when the current token expires and the Secret with it.
func (r *Record) ExpiresAt() time.Time { return r.Current.ExpiresAtTime() }

// Expired reports whether the Secret's token has expired at now.
func (r *Record) Expired(now time.Time) bool { return now.Unix() >= r.Current.ExpiresAt }

// Limited reports whether the token has a use limit.
func (r *Record) Limited() bool { return r.UsesLeft != Unlimited }

// Spent reports whether the Secret's count says a limited-use token has no use left (Judge
// also asks the TokenRequest's status: see Left).
func (r *Record) Spent() bool { return r.UsesLeft == 0 }

// ControlledBy reports whether the TokenRequest with this UID controls the Secret.
func (r *Record) ControlledBy(uid types.UID) bool {
	return r.Controller != nil && r.Controller.UID == uid
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

// Match says which of the Secret's tokens has the digest d, comparing in constant time. A
// token of a slice (PackedEntry) is matched on the SliceDigestBytes its record holds.
func (r *Record) Match(d Digest) Slot {
	n := len(d)
	if r.Packing == PackedEntry {
		n = SliceDigestBytes
	}
	current := subtle.ConstantTimeCompare(r.Current.Digest[:n], d[:n]) & bit(r.HasToken)
	prev := r.Previous()
	previous := subtle.ConstantTimeCompare(prev.Digest[:], d[:]) & bit(r.HasPrevious())
	switch {
	case current == 1:
		return SlotCurrent
	case previous == 1:
		return SlotPrevious
	}
	return SlotNone
}

func bit(b bool) int {
	if b {
		return 1
	}
	return 0
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

// Verify says what the Secret makes of presented at now.
func (r *Record) Verify(presented string, now time.Time) Verdict {
	return r.Judge(r.Match(DigestOf(presented)), now)
}

// Judge is Verify for a caller that has already matched the presented token, so that it is
// hashed once. A previous token counts until its own expiry, never beyond the Secret's; a
// TokenRequest's token only as far as its status records it (Bound).
func (r *Record) Judge(which Slot, now time.Time) Verdict {
	switch {
	case !r.Proves(which):
		return VerdictUnknown
	case now.Unix() >= r.expiresAt(which):
		return VerdictExpired
	case r.Left() == 0:
		return VerdictSpent
	}
	return VerdictValid
}

// InStatus reports whether the Secret already is what ApplyTo would make of want, judged by
// want's public parts (token ids, lifetimes, source, revision, subject, purpose and metadata;
// not the secrets and not the uses left, which redemptions change): nothing to heal.
func (r *Record) InStatus(want Issued) bool {
	prev, hasPrev := Held{}, want.Previous != nil
	if hasPrev {
		prev.ID, _ = ParseID(want.Previous.ID)
		prev.ExpiresAt = want.Previous.ExpiresAt.Unix()
	}
	id, _ := ParseID(want.ID)
	return r.Intact && r.HasToken && r.Current.ID == id &&
		r.Source == want.Source &&
		r.IssuedAt == want.IssuedAt.Unix() &&
		r.Current.ExpiresAt == want.ExpiresAt.Unix() &&
		r.Revision == want.Revision &&
		r.HasPrevious() == hasPrev && r.Previous() == Held{ID: prev.ID, Digest: r.Previous().Digest, ExpiresAt: prev.ExpiresAt} &&
		r.Subject() == want.Subject && r.Purpose() == want.Purpose && r.Metadata() == metadataJSON(want.Metadata)
}
