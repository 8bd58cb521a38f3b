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
	"context"
	"slices"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

func req(name string) reconcile.Request {
	return reconcile.Request{NamespacedName: types.NamespacedName{Namespace: "ns", Name: name}}
}

func TestScheduleDue(t *testing.T) {
	base := time.Unix(1_800_000_000, 0)
	s := newSchedule()
	s.add(base.Add(2*time.Second), req("b"))
	s.add(base.Add(time.Second), req("a"))
	s.add(base.Add(2*time.Second), req("c"))
	s.add(base.Add(2*time.Second+time.Millisecond), req("d")) // rounds up to +3s
	tests := []struct {
		at   time.Duration
		want []string
		next time.Duration
		more bool
	}{
		{0, nil, time.Second, true},
		{999 * time.Millisecond, nil, time.Second, true},
		{time.Second, []string{"a"}, 2 * time.Second, true},
		{2500 * time.Millisecond, []string{"b", "c"}, 3 * time.Second, true},
		{3 * time.Second, []string{"d"}, 0, false},
		{10 * time.Second, nil, 0, false},
	}
	for _, tt := range tests {
		reqs, next, ok := s.due(base.Add(tt.at))
		var got []string
		for _, r := range reqs {
			got = append(got, r.Name)
		}
		if !slices.Equal(got, tt.want) || ok != tt.more || (ok && next != base.Add(tt.next).Unix()) {
			t.Errorf("due at +%s = %v, next %d (%v); want %v, next +%s (%v)", tt.at, got, next, ok, tt.want, tt.next, tt.more)
		}
	}
}

// TestScheduleRun: a request added for a second earlier than the one the loop waits for is
// queued at its own second, not at the later one.
func TestScheduleRun(t *testing.T) {
	q := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[reconcile.Request]())
	defer q.ShutDown()
	s := newSchedule()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.run(ctx, q)
	s.add(time.Now().Add(time.Hour), req("later"))
	s.add(time.Now().Add(time.Second), req("soon"))
	start := time.Now()
	got, _ := q.Get()
	if got.Name != "soon" || time.Since(start) > 3*time.Second {
		t.Fatalf("got %v after %s, want soon within 2s", got, time.Since(start))
	}
}
