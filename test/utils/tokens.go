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

// Package utils holds helpers that the envtest and end-to-end suites share.
package utils

import (
	"context"
	"maps"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tokenops/token-operator/internal/token"
)

// TokenHistory records, from a watch, every token value each Secret of a namespace ever held:
// how specs prove that a token was written once, or rotated once.
type TokenHistory struct {
	w    watch.Interface
	mu   sync.Mutex
	seen map[string]map[string]bool
}

// WatchTokens starts recording the Secrets of ns until Stop.
func WatchTokens(ctx context.Context, c client.WithWatch, ns string) (*TokenHistory, error) {
	w, err := c.Watch(ctx, &corev1.SecretList{}, client.InNamespace(ns))
	if err != nil {
		return nil, err
	}
	h := &TokenHistory{w: w, seen: map[string]map[string]bool{}}
	go func() {
		for ev := range w.ResultChan() {
			if s, ok := ev.Object.(*corev1.Secret); ok && ev.Type != watch.Deleted {
				h.mu.Lock()
				if h.seen[s.Name] == nil {
					h.seen[s.Name] = map[string]bool{}
				}
				h.seen[s.Name][string(s.Data[token.DataToken])] = true
				h.mu.Unlock()
			}
		}
	}()
	return h, nil
}

// Seen returns, per Secret name, the set of token values it held so far.
func (h *TokenHistory) Seen() map[string]map[string]bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make(map[string]map[string]bool, len(h.seen))
	for name, tokens := range h.seen {
		out[name] = maps.Clone(tokens)
	}
	return out
}

// Stop ends the recording.
func (h *TokenHistory) Stop() { h.w.Stop() }
