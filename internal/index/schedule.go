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
	"container/heap"
	"context"
	"sync"
	"time"

	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// schedule holds requests due later and queues them at their second, with one timer for the
// earliest second. It is what a RequeueAfter per request would do, for a fraction of the
// memory: a request waiting here costs its key in a slice (about 40 bytes), where client-go's
// delaying queue keeps an entry, a map slot and a heap slot (about 150 bytes; measured by
// `make bench` at 100 000 tokens). Tokens expire at whole seconds, so many share a second.
type schedule struct {
	mu      sync.Mutex
	buckets map[int64][]reconcile.Request
	seconds secondHeap
	// wake tells the loop that an earlier second than it waits for arrived.
	wake chan struct{}
}

func newSchedule() *schedule {
	return &schedule{buckets: map[int64][]reconcile.Request{}, wake: make(chan struct{}, 1)}
}

// add schedules req for at, rounded up to the second.
func (s *schedule) add(at time.Time, req reconcile.Request) {
	sec := at.Unix()
	if at.Nanosecond() > 0 {
		sec++
	}
	s.mu.Lock()
	bucket, ok := s.buckets[sec]
	s.buckets[sec] = append(bucket, req)
	earliest := !ok && (len(s.seconds) == 0 || sec < s.seconds[0])
	if !ok {
		heap.Push(&s.seconds, sec)
	}
	s.mu.Unlock()
	if earliest {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

// due removes and returns the requests of every second up to now, and the next second
// still ahead (ok false for none).
func (s *schedule) due(now time.Time) (reqs []reconcile.Request, next int64, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.seconds) > 0 && s.seconds[0] <= now.Unix() {
		sec := heap.Pop(&s.seconds).(int64)
		reqs = append(reqs, s.buckets[sec]...)
		delete(s.buckets, sec)
	}
	if len(s.seconds) == 0 {
		return reqs, 0, false
	}
	return reqs, s.seconds[0], true
}

// run queues every request at its second until ctx ends.
func (s *schedule) run(ctx context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		reqs, next, ok := s.due(time.Now())
		for _, r := range reqs {
			q.Add(r)
		}
		wait := time.Hour
		if ok {
			wait = time.Until(time.Unix(next, 0))
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		case <-timer.C:
		}
	}
}

// secondHeap is a min-heap of Unix seconds (container/heap).
type secondHeap []int64

func (h secondHeap) Len() int           { return len(h) }
func (h secondHeap) Less(i, j int) bool { return h[i] < h[j] }
func (h secondHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *secondHeap) Push(x any)        { *h = append(*h, x.(int64)) }
func (h *secondHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
