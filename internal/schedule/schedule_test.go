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

package schedule

import (
	"slices"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/utils/clock"
	clocktesting "k8s.io/utils/clock/testing"
)

func TestDue(t *testing.T) {
	base := time.Unix(1_800_000_000, 0)
	s := New[string]()
	s.Add(base.Add(2*time.Second), "b")
	s.Add(base.Add(time.Second), "a")
	s.Add(base.Add(2*time.Second), "c")
	s.Add(base.Add(2*time.Second+time.Millisecond), "d") // rounds up to +3s
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
		got, next, ok := s.Due(base.Add(tt.at))
		if !slices.Equal(got, tt.want) || ok != tt.more || (ok && !next.Equal(base.Add(tt.next))) {
			t.Errorf("due at +%s = %v, next %s (%v); want %v, next +%s (%v)", tt.at, got, next, ok, tt.want, tt.next, tt.more)
		}
	}
}

// TestRunEarlierSecond: an item added for a second earlier than the one the loop waits for
// is handed over at its own second, not at the later one (real clock).
func TestRunEarlierSecond(t *testing.T) {
	s := New[string]()
	ctx := t.Context()
	got := make(chan string, 2)
	go s.Run(ctx, clock.RealClock{}, func(item string) { got <- item })
	s.Add(time.Now().Add(time.Hour), "later")
	s.Add(time.Now().Add(time.Second), "soon")
	start := time.Now()
	if item := <-got; item != "soon" || time.Since(start) > 3*time.Second {
		t.Fatalf("got %v after %s, want soon within 2s", item, time.Since(start))
	}
}

// TestRunAtItsSecond: on a fake clock, nothing is handed over before its second, everything
// due is handed over once the clock reaches it, each item once.
func TestRunAtItsSecond(t *testing.T) {
	g := NewWithT(t)
	base := time.Unix(1_800_000_000, 0)
	fake := clocktesting.NewFakeClock(base)
	s := New[string]()
	s.Add(base.Add(5*time.Second), "five")
	s.Add(base.Add(10*time.Second), "ten")
	s.Add(base.Add(-time.Second), "overdue")
	ctx := t.Context()
	got := make(chan string, 10)
	go s.Run(ctx, fake, func(item string) { got <- item })

	g.Eventually(got).Should(Receive(Equal("overdue")))
	g.Eventually(fake.HasWaiters).Should(BeTrue())
	fake.Step(4 * time.Second)
	g.Consistently(got, 100*time.Millisecond).ShouldNot(Receive())
	g.Eventually(fake.HasWaiters).Should(BeTrue())
	fake.Step(time.Second)
	g.Eventually(got).Should(Receive(Equal("five")))
	g.Eventually(fake.HasWaiters).Should(BeTrue())
	fake.Step(time.Hour)
	g.Eventually(got).Should(Receive(Equal("ten")))
	g.Consistently(got, 100*time.Millisecond).ShouldNot(Receive(), "each item once")
}
