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

package index

import (
	"fmt"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/tokenops/token-operator/internal/token"
)

// filled is an index of n HTTP token Secrets spread over 100 namespaces.
func filled(n int) *Index {
	x := New(logr.Discard())
	for i := range n {
		issued := httpToken(time.Hour)
		s := secret(token.HTTPSecretName(issued.ID), fmt.Sprintf("%08x-1111-2222-3333-444444444444", i), issued)
		s.Namespace = fmt.Sprintf("ns-%d", i%100)
		x.Apply(s, false)
	}
	return x
}

// BenchmarkIndexUpdate is the cost of one change to an index of a million token Secrets, as
// every watch event and every local write makes one: a changed Secret (Apply of a new token
// under the same key), a new Secret indexed and then forgotten (Put, Forget), and a watch's
// add then delete (Apply, Apply deleted).
func BenchmarkIndexUpdate(b *testing.B) {
	x := filled(1_000_000)
	pair := [2]*corev1.Secret{secret("changed", "uid-changed", httpToken(time.Hour)), secret("changed", "uid-changed", httpToken(time.Hour))}
	fresh := secret("fresh", "uid-fresh", httpToken(time.Hour))
	key := types.NamespacedName{Namespace: fresh.Namespace, Name: fresh.Name}
	b.Run("apply-change", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			x.Apply(pair[i&1], false)
			i++
		}
	})
	b.Run("put-forget", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			x.Put(fresh)
			x.Forget(key, fresh.UID)
		}
	})
	b.Run("apply-add-delete", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			x.Apply(fresh, false)
			x.Apply(fresh, true)
		}
	})
}
