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
	"encoding/hex"
	"slices"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
)

// The token slice Secret (issue 23): up to SliceCapacity tokens issued over HTTP, of one expiry
// window, written by one replica.
const (
	// SliceSecretType is the type of a token slice: not a token Secret's, so that no reader
	// of today's layout mistakes one for a token.
	SliceSecretType corev1.SecretType = "tokens.tokenops.io/token-slice" //nolint:gosec // a Secret type, not a credential
	// LabelSliceWindow is the start of the slice's expiry window (Unix seconds): every token
	// in it expires within SliceWindow of it, and the slice expires whole at its end.
	LabelSliceWindow = "tokens.tokenops.io/expiry-window"
	// LabelSliceWriter names the replica that appends to the slice (a hash of its name): each
	// replica writes its own slices, so that issues never conflict across replicas.
	LabelSliceWriter = "tokens.tokenops.io/writer"
	// LabelSliceSealKey names the key the slice's records are sealed with: a label, not an
	// annotation, so that a slice carries no annotations map (about 380 bytes in every
	// decoded copy the API server and each watcher keep). A key id that is no label value
	// goes into the annotation of the same name, which slices written before 2026-12-04 carry.
	LabelSliceSealKey      = "tokens.tokenops.io/seal-key"
	AnnotationSliceSealKey = LabelSliceSealKey
	// SliceCapacity is how many tokens a slice holds at most: the EndpointSlice default, and
	// what hack/slicecost's measurement supports (README, Packing tokens into slices).
	SliceCapacity = 100
	// SliceWindow is the width of an expiry window: shorter than the minute after which the
	// lingering-tokens alert counts an expired token.
	SliceWindow = 30 * time.Second
)

// WindowOf is the start of the expiry window of a token expiring at expiresAt (Unix seconds).
func WindowOf(expiresAt int64) int64 {
	w := int64(SliceWindow / time.Second)
	return expiresAt - ((expiresAt%w)+w)%w
}

// SliceExpiresAt is when a slice of the window starting at window expires whole: the window's
// end, by which every token in it has expired.
func SliceExpiresAt(window int64) int64 {
	return window + int64(SliceWindow/time.Second)
}

// SliceWriter is the writer label of a replica: the first 8 bytes of its name's SHA-256 in
// hex, whatever the name's length and characters.
func SliceWriter(replica string) string {
	sum := sha256.Sum256([]byte(replica))
	return hex.EncodeToString(sum[:8])
}

// SliceName names the seq-th slice of writer for window: "slice-<writer>-<window>-<seq>".
func SliceName(writer string, window int64, seq int) string {
	return "slice-" + writer + "-" + strconv.FormatInt(window, 10) + "-" + strconv.Itoa(seq)
}

// NewSliceSecret is a slice in namespace holding records, sealed with keyID.
func NewSliceSecret(namespace, name, writer string, window int64, keyID string, records []SliceRecord) *corev1.Secret {
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name,
			Labels: map[string]string{LabelManagedBy: ManagedBy, LabelSource: string(SourceHTTP),
				LabelSliceWindow: strconv.FormatInt(window, 10), LabelSliceWriter: writer}},
		Type: SliceSecretType,
		Data: make(map[string][]byte, len(records)),
	}
	if len(validation.IsValidLabelValue(keyID)) == 0 {
		s.Labels[LabelSliceSealKey] = keyID
	} else {
		s.Annotations = map[string]string{AnnotationSliceSealKey: keyID}
	}
	for _, r := range records {
		s.Data[SliceKey(r.ID)] = AppendSliceRecord(nil, r)
	}
	return s
}

// SliceSealKey is the id of the key the records of slice s are sealed with: its label, or
// its annotation.
func SliceSealKey(s *corev1.Secret) string {
	if id, ok := s.Labels[LabelSliceSealKey]; ok {
		return id
	}
	return s.Annotations[AnnotationSliceSealKey]
}

// IsSliceSecret reports whether a Secret is a token slice: our type and label.
func IsSliceSecret(s *corev1.Secret) bool {
	return s.Type == SliceSecretType && s.Labels[LabelManagedBy] == ManagedBy
}

// SliceRecords reads every record of a slice, in the order of their ids, and the data keys
// that hold none (a record that does not parse validates nothing).
func SliceRecords(s *corev1.Secret) (records []SliceRecord, bad []string) {
	keys := make([]string, 0, len(s.Data))
	for k := range s.Data {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	records = make([]SliceRecord, 0, len(keys))
	for _, k := range keys {
		r, err := ParseSliceRecord(k, s.Data[k])
		if err != nil {
			bad = append(bad, k)
			continue
		}
		records = append(records, r)
	}
	return records, bad
}

// Packing says how a Record's token is stored.
type Packing uint8

const (
	// PackedNone: the token has a Secret of its own.
	PackedNone Packing = iota
	// PackedSlice: the Record of a token slice Secret itself. It holds no token of its own
	// (HasToken is false) and expires whole at Current.ExpiresAt: its window's end, or its
	// last token's expiry if that is later.
	PackedSlice
	// PackedEntry: one token of a token slice; the Record's Key, UID and Deleting are the
	// slice's, its data key is SliceKey(Current.ID).
	PackedEntry
)

// SliceOf reads a token slice into the Record of the slice itself (PackedSlice) and its
// records, in the order of their ids; bad are the data keys that hold none. It fails only
// for a Secret that is not a slice (IsSliceSecret).
func SliceOf(s *corev1.Secret) (rec Record, records []SliceRecord, bad []string, err error) {
	if !IsSliceSecret(s) {
		return Record{}, nil, nil, ErrNotTokenSecret
	}
	rec = Record{Namespace: s.Namespace, Name: s.Name, UID: s.UID, Source: Source(s.Labels[LabelSource]),
		UsesLeft: Unlimited, Deleting: s.DeletionTimestamp != nil, Intact: true, Packing: PackedSlice}
	if w, perr := strconv.ParseInt(s.Labels[LabelSliceWindow], 10, 64); perr == nil {
		rec.Current.ExpiresAt = SliceExpiresAt(w)
	}
	records, bad = SliceRecords(s)
	for _, r := range records {
		rec.Current.ExpiresAt = max(rec.Current.ExpiresAt, r.ExpiresAt)
	}
	return rec, records, bad, nil
}

// EntryOf is the Record of one token of the slice whose Record is slice (SliceOf): what
// validation, redemption, revocation and the listing read of it. about is nil for a token
// issued without subject, purpose, issuer or metadata.
func EntryOf(slice *Record, id BinaryID, digest Digest, issuedAt, expiresAt, usesLeft int64, about *About) Record {
	return Record{Namespace: slice.Namespace, Name: slice.Name, UID: slice.UID, Source: slice.Source,
		Current: Held{ID: id, Digest: digest, ExpiresAt: expiresAt}, IssuedAt: issuedAt, UsesLeft: usesLeft,
		HasToken: true, Deleting: slice.Deleting, Intact: true, About: about, Sealed: slice.Sealed, Packing: PackedEntry}
}
