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
	"errors"
	"fmt"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tokenops/token-operator/internal/index"
	"github.com/tokenops/token-operator/internal/token"
)

// ErrNoSuchToken: no Secret of namespace holds a token with the id asked for.
var ErrNoSuchToken = errors.New("no token with this id")

// slicePage is how many Secrets RevokeByID reads per list request.
const slicePage = 100

// RevokeByID revokes, as a person at kubectl would (kubectl tokenops revoke), the token issued
// over HTTP with this id in namespace, through c with the caller's own credentials: the
// Secret of its own (the layout before token slices) is deleted, or its record is removed from
// the slice that holds it, with the same preconditions as the operator's own revocations. It
// answers the Secret that held it. Finding the slice reads the namespace's slices page by page
// (a slice's name does not follow from its tokens' ids), so it costs a read of up to every
// slice: the HTTP API's DELETE /app/token/{token}, given the token, finds it in the index at once.
func RevokeByID(ctx context.Context, c client.Client, namespace string, id token.BinaryID) (string, error) {
	s := New(c, c, index.New(logr.Discard()), nil) // an index of its own: these writes' answers go nowhere
	own := &corev1.Secret{}
	err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: token.HTTPSecretName(id.String())}, own)
	switch {
	case err == nil && token.IsTokenSecret(own):
		rec, _ := token.RecordOf(own)
		return own.Name, revoked(s.Delete(ctx, &rec))
	case err != nil && !apierrors.IsNotFound(err):
		return "", err
	}
	holder, err := findSlice(ctx, c, namespace, id)
	if err != nil {
		return "", err
	}
	slice, _, _, _ := token.SliceOf(holder)
	rec := token.EntryOf(&slice, id, token.Digest{}, 0, 0, token.Unlimited, nil)
	return holder.Name, revoked(s.Delete(ctx, &rec))
}

// revoked reads a guarded delete's answer: a token already gone is ErrNoSuchToken.
func revoked(done bool, err error) error {
	if err == nil && !done {
		return ErrNoSuchToken
	}
	return err
}

// findSlice is the slice of namespace that holds the token with this id.
func findSlice(ctx context.Context, c client.Reader, namespace string, id token.BinaryID) (*corev1.Secret, error) {
	key := token.SliceKey(id)
	opts := []client.ListOption{client.InNamespace(namespace), client.Limit(slicePage),
		client.MatchingLabels{token.LabelManagedBy: token.ManagedBy, token.LabelSource: string(token.SourceHTTP)}}
	for cont := ""; ; {
		list := &corev1.SecretList{}
		if err := c.List(ctx, list, append(opts, client.Continue(cont))...); err != nil {
			return nil, err
		}
		for i := range list.Items {
			if s := &list.Items[i]; token.IsSliceSecret(s) && s.Data[key] != nil {
				return s, nil
			}
		}
		if cont = list.Continue; cont == "" {
			return nil, fmt.Errorf("%w in namespace %s: %s", ErrNoSuchToken, namespace, id)
		}
	}
}
