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

package groupcommit

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// gate is a Write that records each batch and holds it until released.
type gate struct {
	mu      sync.Mutex
	batches [][]int
	started chan []int
	release chan struct{}
}

func newGate() *gate {
	return &gate{started: make(chan []int, 100), release: make(chan struct{}, 100)}
}

func (g *gate) write(_ context.Context, batch []int) []error {
	g.mu.Lock()
	g.batches = append(g.batches, slices.Clone(batch))
	g.mu.Unlock()
	g.started <- batch
	<-g.release
	errs := make([]error, len(batch))
	for i, v := range batch {
		if v%7 == 0 {
			errs[i] = fmt.Errorf("item %d refused", v)
		}
	}
	return errs
}

func (g *gate) sizes() []int {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []int
	for _, b := range g.batches {
		out = append(out, len(b))
	}
	return out
}

// do runs c.Do(item) in the background and answers its result on the channel.
func do(c *Committer[int], ctx context.Context, item int) chan error {
	ch := make(chan error, 1)
	go func() { ch <- c.Do(ctx, item) }()
	return ch
}

// queued waits until n items wait in c's queue.
func queued(t *testing.T, c *Committer[int], n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c.mu.Lock()
		got := len(c.queue)
		c.mu.Unlock()
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d items queued, want %d", got, n)
		}
		runtime.Gosched() // the queue has no event to wait on
	}
}

func TestAloneIsWrittenAtOnce(t *testing.T) {
	g := newGate()
	c := &Committer[int]{Write: g.write}
	res := do(c, context.Background(), 1)
	if b := <-g.started; !slices.Equal(b, []int{1}) {
		t.Fatalf("first write %v, want [1]", b)
	}
	g.release <- struct{}{}
	if err := <-res; err != nil {
		t.Fatal(err)
	}
}

func TestArrivalsDuringAWriteGoTogether(t *testing.T) {
	for _, tc := range []struct {
		name           string
		maxBatch, wait int
		want           []int
	}{
		{"one batch", 100, 10, []int{1, 10}},
		{"bounded by MaxBatch", 4, 10, []int{1, 4, 4, 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newGate()
			c := &Committer[int]{Write: g.write, MaxBatch: tc.maxBatch}
			results := map[int]chan error{1: do(c, context.Background(), 1)}
			<-g.started
			for i := 2; i < 2+tc.wait; i++ {
				results[i] = do(c, context.Background(), i)
			}
			queued(t, c, tc.wait)
			for range tc.want {
				g.release <- struct{}{}
			}
			for i, ch := range results {
				err := <-ch
				if (i%7 == 0) != (err != nil) {
					t.Errorf("item %d: %v", i, err)
				}
			}
			if got := g.sizes(); !slices.Equal(got, tc.want) {
				t.Errorf("batches of %v, want %v", got, tc.want)
			}
		})
	}
}

func TestWritesInFlightUpToMaxInFlight(t *testing.T) {
	g := newGate()
	c := &Committer[int]{Write: g.write, MaxInFlight: 2}
	a, b := do(c, context.Background(), 1), do(c, context.Background(), 2)
	<-g.started
	<-g.started // both in flight, neither released
	third := do(c, context.Background(), 3)
	queued(t, c, 1)
	for range 3 {
		g.release <- struct{}{}
	}
	for _, ch := range []chan error{a, b, third} {
		if err := <-ch; err != nil {
			t.Error(err)
		}
	}
	if got := g.sizes(); !slices.Equal(got, []int{1, 1, 1}) {
		t.Errorf("batches of %v", got)
	}
}

func TestAWaiterThatGivesUpIsNotWritten(t *testing.T) {
	g := newGate()
	c := &Committer[int]{Write: g.write}
	first := do(c, context.Background(), 1)
	<-g.started
	ctx, cancel := context.WithCancel(context.Background())
	gone := do(c, ctx, 2)
	kept := do(c, context.Background(), 3)
	queued(t, c, 2)
	cancel()
	if err := <-gone; !errors.Is(err, context.Canceled) {
		t.Fatalf("the cancelled caller got %v", err)
	}
	g.release <- struct{}{}
	g.release <- struct{}{}
	for _, ch := range []chan error{first, kept} {
		if err := <-ch; err != nil {
			t.Error(err)
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if !slices.Equal(g.batches[1], []int{3}) {
		t.Errorf("second write %v, want [3] (item 2's caller had gone)", g.batches[1])
	}
}

func TestWrongAnswerCount(t *testing.T) {
	c := &Committer[int]{Write: func(context.Context, []int) []error { return nil }}
	if err := c.Do(context.Background(), 1); !errors.Is(err, ErrAnswers) {
		t.Fatalf("got %v, want ErrAnswers", err)
	}
}

func TestManyCallers(t *testing.T) {
	var mu sync.Mutex
	writes, items := 0, 0
	var c *Committer[int]
	var handed atomic.Int64 // items given to a write so far
	c = &Committer[int]{MaxInFlight: 4, Write: func(_ context.Context, batch []int) []error {
		handed.Add(int64(len(batch)))
		mu.Lock()
		writes, items = writes+1, items+len(batch)
		first := writes <= 4
		mu.Unlock()
		// The first writes in flight last until every caller has arrived (an API write's
		// latency, under load): whatever queued meanwhile goes into the next writes.
		for first {
			c.mu.Lock()
			arrived := int64(len(c.queue)) + handed.Load()
			c.mu.Unlock()
			if arrived >= 2000 {
				break
			}
			runtime.Gosched()
		}
		return make([]error, len(batch))
	}}
	var wg sync.WaitGroup
	for i := range 2000 {
		wg.Go(func() {
			if err := c.Do(context.Background(), i); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if items != 2000 || writes >= 2000/4 {
		t.Errorf("%d items in %d writes: want all 2000 items, in far fewer writes", items, writes)
	}
	t.Logf("2000 items from 2000 goroutines in %d writes", writes)
}

// A Do that finds a slot free writes in its own goroutine: no goroutine is started and
// nothing is handed back at low load.
func TestALeaderWritesInItsOwnGoroutine(t *testing.T) {
	var stack string
	c := &Committer[int]{Write: func(_ context.Context, batch []int) []error {
		buf := make([]byte, 64<<10)
		stack = string(buf[:runtime.Stack(buf, false)])
		return make([]error, len(batch))
	}}
	if err := c.Do(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stack, ".TestALeaderWritesInItsOwnGoroutine(") { // the test's own frame, not its closure's
		t.Errorf("the write ran on another goroutine:\n%s", stack)
	}
}

// A write of one item ends when its caller stops waiting, and the caller gets its own ctx's
// error: a client's deadline bounds its answer even while the server answers nothing.
func TestALoneWriteEndsWithItsCaller(t *testing.T) {
	canceled := make(chan bool, 1)
	c := &Committer[int]{Timeout: time.Hour, Write: func(ctx context.Context, batch []int) []error {
		select {
		case <-ctx.Done():
			canceled <- true
		case <-time.After(5 * time.Second): // a server that answers nothing, and a write not ended
			canceled <- false
		}
		return []error{ctx.Err()}
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := c.Do(ctx, 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Do = %v, want the caller's deadline", err)
	}
	if !<-canceled {
		t.Error("the write ran on after its only caller had gone")
	}
}
