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
	"errors"
	"time"

	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/tokenops/token-operator/internal/token"
)

// Due is a request to reconcile, and when: now for a zero At.
type Due struct {
	Request reconcile.Request
	At      time.Time
}

// Mapper turns a change of one Record into the requests to reconcile: old is nil for a
// Secret newly indexed, updated is nil for one gone.
type Mapper func(old, updated *token.Record) []Due

// Source is a controller-runtime source of the index's changes, as source.Kind is of an
// informer's: every change is mapped to requests, each queued when it is due (a request due
// later waits in a schedule of its own, as a RequeueAfter would, and never passes through
// the queue before then; see schedule). With replay, a controller starting (on becoming
// leader) also gets the requests of every Record already indexed, as an informer replays its
// store to a new handler. The controller starts its workers once the index is complete.
func (x *Index) Source(m Mapper, replay bool) source.SyncingSource {
	return &indexSource{index: x, mapper: m, replay: replay}
}

type indexSource struct {
	index  *Index
	mapper Mapper
	replay bool
}

func (s *indexSource) String() string { return "token index" }

// Start implements source.Source: it subscribes the queue until ctx ends, without blocking.
func (s *indexSource) Start(ctx context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request]) error {
	later := newSchedule()
	go later.run(ctx, q)
	enqueue := func(old, updated *token.Record) {
		for _, d := range s.mapper(old, updated) {
			if !d.At.IsZero() && time.Now().Before(d.At) {
				later.add(d.At, d.Request)
			} else {
				q.Add(d.Request)
			}
		}
	}
	id := s.index.subscribe(enqueue)
	go func() {
		<-ctx.Done()
		s.index.unsubscribe(id)
	}()
	if s.replay {
		go func() {
			if !s.index.WaitForSync(ctx) {
				return
			}
			for _, rec := range s.index.all() {
				enqueue(nil, rec)
			}
		}()
	}
	return nil
}

// WaitForSync implements source.SyncingSource.
func (s *indexSource) WaitForSync(ctx context.Context) error {
	if !s.index.WaitForSync(ctx) {
		return errors.New("the token index did not finish its first list")
	}
	return nil
}

func (x *Index) subscribe(fn func(old, updated *token.Record)) int {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.listeners == nil {
		x.listeners = map[int]func(old, updated *token.Record){}
	}
	x.nextID++
	x.listeners[x.nextID] = fn
	return x.nextID
}

func (x *Index) unsubscribe(id int) {
	x.mu.Lock()
	defer x.mu.Unlock()
	delete(x.listeners, id)
}

// notify tells every listener of one change. Listeners only queue requests: they never block.
func (x *Index) notify(old, updated *token.Record) {
	x.mu.RLock()
	fns := make([]func(old, updated *token.Record), 0, len(x.listeners))
	for _, fn := range x.listeners {
		fns = append(fns, fn)
	}
	x.mu.RUnlock()
	for _, fn := range fns {
		fn(old, updated)
	}
}

// all returns every Record.
func (x *Index) all() []*token.Record {
	x.mu.RLock()
	defer x.mu.RUnlock()
	out := make([]*token.Record, 0, len(x.state.byKey))
	for _, r := range x.state.byKey {
		out = append(out, r)
	}
	return out
}
