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

package store

import (
	"context"
	"encoding/json"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tokenops/token-operator/internal/token"
)

// The writes of token slices (issue 23). A slice is created whole by the replica that fills
// it; every later write is a JSON Patch of single data keys, guarded by the slice's UID and,
// for a change of a token, by a test of that token's record as it was read: so appends,
// revocations and redemptions of different tokens of one slice never conflict, and of two
// writers of one token's record exactly one succeeds.
//
// Every patch also resets the slice's managedFields (the Kubernetes API's documented reset, a
// list of one empty entry): the API server then tracks no field ownership on the slice, which
// it would otherwise recompute over every data key on each write and store with the slice
// (one "f:<key>" per token). Nobody applies a slice server-side; its writers are this store.

// patchOp is one JSON Patch (RFC 6902) operation. Value is a record's bytes, or a UID.
type patchOp struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value,omitempty"`
}

func dataPath(id token.BinaryID) string { return "/data/" + token.SliceKey(id) }

func testUID(uid types.UID) patchOp { return patchOp{Op: "test", Path: "/metadata/uid", Value: uid} }

// noManagedFields resets managedFields: the API server stops tracking them on the slice.
var noManagedFields = []map[string]any{{}}

// createSlice creates a new slice and indexes it as the API server answered.
func (s *Store) createSlice(ctx context.Context, secret *corev1.Secret) error {
	if err := s.Client.Create(ctx, secret); err != nil {
		return err
	}
	s.Tokens.Put(secret)
	return nil
}

// appendSlice adds records to the slice key (if it is still the one with uid) by a JSON merge
// patch of their data keys, without a resourceVersion: appends never conflict with the
// changes of other tokens. (A merge patch: about a third cheaper for the API server than the
// same change as a JSON Patch, measured by hack/patchcost; the UID in its metadata is the
// precondition, a Conflict for a newer slice of the same name.)
func (s *Store) appendSlice(ctx context.Context, key types.NamespacedName, uid types.UID, records []token.SliceRecord) error {
	data := make(map[string][]byte, len(records))
	for _, r := range records {
		data[token.SliceKey(r.ID)] = token.AppendSliceRecord(nil, r)
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"uid": uid, "managedFields": noManagedFields}, "data": data})
	if err != nil {
		return err
	}
	return s.patchSliceRaw(ctx, key, client.RawPatch(types.MergePatchType, patch))
}

// patchSlice applies ops (a JSON Patch) to the slice key and indexes the API server's answer.
func (s *Store) patchSlice(ctx context.Context, key types.NamespacedName, ops []patchOp) error {
	patch, err := json.Marshal(append(ops, patchOp{Op: "add", Path: "/metadata/managedFields", Value: noManagedFields}))
	if err != nil {
		return err
	}
	return s.patchSliceRaw(ctx, key, client.RawPatch(types.JSONPatchType, patch))
}

// patchSliceRaw applies patch to the slice key and indexes the API server's answer (the index
// keeps the newest version it has seen: an answer older than the watch's event is dropped).
// Every write of a slice but its create goes through here.
func (s *Store) patchSliceRaw(ctx context.Context, key types.NamespacedName, patch client.Patch) error {
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name}}
	if err := s.Client.Patch(ctx, secret, patch); err != nil {
		return err
	}
	s.Tokens.Put(secret)
	return nil
}

// patchFailed reads the answer to a guarded patch of a slice: a failed test (the record or
// the slice changed since it was read) or a path that is gone, which the API server answers
// 422, or a slice gone.
func patchFailed(err error) bool {
	return apierrors.IsInvalid(err) || apierrors.IsNotFound(err)
}
