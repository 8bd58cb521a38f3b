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
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tokenops/token-operator/internal/token"
)

// CacheOptions restricts the manager's Secret informer to token Secrets, so the operator
// neither holds nor watches any other Secret in the cluster, keeps only the SHA-256 digest of
// each token in memory (token.Conceal), and strips managedFields from everything it caches.
// A Secret without our label is invisible to the cached client: every token Secret carries
// the label from its first write. Code that needs a token itself reads the API server.
func CacheOptions() cache.Options {
	strip := cache.TransformStripManagedFields()
	return cache.Options{
		ByObject: map[client.Object]cache.ByObject{
			&corev1.Secret{}: {Label: token.Selector(), Transform: func(obj any) (any, error) {
				obj, err := strip(obj)
				if s, ok := obj.(*corev1.Secret); ok {
					token.Conceal(s)
				}
				return obj, err
			}},
		},
		DefaultTransform: strip,
	}
}
