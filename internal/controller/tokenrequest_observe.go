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

package controller

import (
	"context"
	"errors"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/tokenops/token-operator/api/v1alpha1"
	"github.com/tokenops/token-operator/internal/token"
)

// observe gathers what decide needs from the token index and the clock: no API call.
func (r *TokenRequestReconciler) observe(tr *tokensv1alpha1.TokenRequest, ttl time.Duration) observed {
	o := observed{TR: tr, TTL: ttl, Now: r.Clock.Now(), Fresh: token.Generate()}
	if rec, ok := r.Tokens.Get(secretKey(tr)); ok {
		o.Cached = rec
	}
	return o
}

// inspect reads the Secret and, when a token is recorded, the TokenRequest from the API
// server, for a decision that the index alone cannot take (it keeps no token) or that a stale
// cache would make wrong.
func (r *TokenRequestReconciler) inspect(ctx context.Context, o observed) (observed, error) {
	o.Inspected, o.Live, o.Cached = true, nil, nil
	live := &corev1.Secret{}
	switch err := r.APIReader.Get(ctx, secretKey(o.TR), live); {
	case apierrors.IsNotFound(err):
	case err != nil:
		return o, err
	default:
		o.Live = live
		if rec, admitted, err := r.Tokens.Admit(live); !errors.Is(err, token.ErrNotTokenSecret) {
			o.Cached, o.LiveTrusted = &rec, admitted
		}
	}
	if _, ok := recordedIssued(o.TR); ok {
		tr := &tokensv1alpha1.TokenRequest{}
		if err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(o.TR), tr); err != nil {
			return o, err
		}
		o.StatusCurrent = tr.UID == o.TR.UID && tr.Status.TokenID == o.TR.Status.TokenID
	}
	return o, nil
}

// secretKey is the TokenRequest's Secret.
func secretKey(tr *tokensv1alpha1.TokenRequest) client.ObjectKey {
	return client.ObjectKey{Namespace: tr.Namespace, Name: tr.Status.SecretName}
}
