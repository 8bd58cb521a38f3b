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

package indexsync

import (
	"math"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/tokenops/token-operator/internal/metrics"
)

// TestHeartbeatAge: the view is as fresh as the newest own beat seen back, and nothing else
// (another replica's beat, a beat never sent, a Secret of the same name elsewhere) freshens it.
func TestHeartbeatAge(t *testing.T) {
	start := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	clk := clocktesting.NewFakeClock(start)
	h := &Heartbeat{Secrets: fake.NewClientset().CoreV1(), Secret: types.NamespacedName{Namespace: "op", Name: "token-operator-heartbeat-a"},
		MaxStaleness: 30 * time.Second, Clock: clk}
	beat := func(ns, name, seq string) *corev1.Secret {
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{LabelHeartbeat: "true"},
			Annotations: map[string]string{AnnotationBeat: seq}}}
	}
	if _, stale := h.Stale(); !stale {
		t.Fatal("fresh before any beat came back, want stale")
	}
	h.beat(t.Context()) // beat 1 at start
	clk.Step(2 * time.Second)
	h.Observe(beat("op", "token-operator-heartbeat-a", "1"))
	if age, stale := h.Stale(); stale || age != 2*time.Second {
		t.Fatalf("after beat 1 came back: age %s stale %v, want 2s and fresh", age, stale)
	}
	clk.Step(40 * time.Second)
	for _, s := range []*corev1.Secret{
		beat("op", "token-operator-heartbeat-b", "1"),     // another replica's
		beat("tenant", "token-operator-heartbeat-a", "1"), // same name elsewhere
		beat("op", "token-operator-heartbeat-a", "7"),     // a beat never sent
		beat("op", "token-operator-heartbeat-a", "x"),
	} {
		h.Observe(s)
	}
	if age, stale := h.Stale(); !stale || age != 42*time.Second {
		t.Fatalf("nothing of its own came back for 42s: age %s stale %v, want stale", age, stale)
	}
	h.beat(t.Context()) // beat 2, 42s after the start
	h.Observe(beat("op", "token-operator-heartbeat-a", "2"))
	if _, stale := h.Stale(); stale {
		t.Fatal("beat 2 came back, want fresh")
	}
	h.Observe(beat("op", "token-operator-heartbeat-a", "1")) // an old beat replayed
	if age, _ := h.Stale(); age != 0 {
		t.Fatalf("an older beat moved the view back: age %s, want 0", age)
	}
	h.MaxStaleness = 0
	clk.Step(time.Hour)
	if _, stale := h.Stale(); stale {
		t.Fatal("--max-staleness 0 serves the view however old")
	}
	if _, err := h.Secrets.Secrets("op").Get(t.Context(), "token-operator-heartbeat-a", metav1.GetOptions{}); err != nil {
		t.Fatalf("the beat wrote no heartbeat Secret: %v", err)
	}
}

// TestStalenessGaugeIsCurrent: tokenoperator_index_staleness_seconds is the view's age at the
// scrape, not at the last beat (a beat to a cut-off API server waits out its timeout first).
func TestStalenessGaugeIsCurrent(t *testing.T) {
	start := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	clk := clocktesting.NewFakeClock(start)
	h := &Heartbeat{Secrets: fake.NewClientset().CoreV1(), Secret: types.NamespacedName{Namespace: "op", Name: "token-operator-heartbeat-a"},
		MaxStaleness: 30 * time.Second, Clock: clk}
	metrics.MeasureStaleness(h.staleness)
	if got := testutil.ToFloat64(metrics.IndexStaleness); !math.IsInf(got, 1) {
		t.Errorf("before any beat came back: %v, want +Inf", got)
	}
	h.beat(t.Context())
	h.Observe(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "op", Name: "token-operator-heartbeat-a",
		Annotations: map[string]string{AnnotationBeat: "1"}}})
	clk.Step(31 * time.Second) // no beat since
	if got := testutil.ToFloat64(metrics.IndexStaleness); got != 31 {
		t.Errorf("31s after the last beat came back, with none written since: %v, want 31", got)
	}
}
