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
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/tokenops/token-operator/internal/token"
)

// TestLiveHTTP follows the count of live HTTP tokens through every kind of change: after
// each step it is what a scan (CensusByNamespace) counts, and the number the step expects.
func TestLiveHTTP(t *testing.T) {
	x := New(logr.Discard())
	a, b := httpToken(time.Hour), httpToken(time.Hour)
	fromTR := httpToken(time.Hour)
	fromTR.Source = token.SourceTokenRequest
	aSecret, bSecret, trSecret := secret("a", "uid-a", a), secret("b", "uid-b", b), secret("tr", "uid-tr", fromTR)
	aDeleting := aSecret.DeepCopy()
	aDeleting.DeletionTimestamp = &metav1.Time{Time: now}
	aRenewed := secret("a", "uid-a", httpToken(time.Hour))
	snapshot := func(secrets ...*corev1.Secret) func() {
		return func() {
			s := x.NewSnapshot()
			for _, v := range secrets {
				s.Add(v)
			}
			x.Replace(s)
		}
	}
	steps := []struct {
		name string
		do   func()
		want int
	}{
		{"a watch add", func() { x.Apply(aSecret, false) }, 1},
		{"the same Secret again", func() { x.Apply(aSecret, false) }, 1},
		{"a put of another", func() { x.Put(bSecret) }, 2},
		{"a TokenRequest's token does not count", func() { x.Apply(trSecret, false) }, 2},
		{"a new token in the same Secret", func() { x.Apply(aRenewed, false) }, 2},
		{"a Secret being deleted no longer counts", func() { x.Apply(aDeleting, false) }, 1},
		{"its deletion", func() { x.Apply(aDeleting, true) }, 1},
		{"a forget", func() { x.Forget(types.NamespacedName{Namespace: "ns", Name: "b"}, "uid-b") }, 0},
		{"a relist", snapshot(aSecret, bSecret, trSecret), 2},
		{"a relist without them", snapshot(trSecret), 0},
	}
	for _, st := range steps {
		st.do()
		scanned := 0
		for _, c := range x.CensusByNamespace(now) {
			scanned += c.HTTP
		}
		if got := x.LiveHTTP(); got != st.want || got != scanned {
			t.Fatalf("after %s: LiveHTTP = %d, want %d (a scan counts %d)", st.name, got, st.want, scanned)
		}
	}
}
