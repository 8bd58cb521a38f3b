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

// Package indexsource drives controllers from the token index (package index) as source.Kind
// drives them from an informer: every change of a Record is mapped to reconcile requests,
// each queued when it is due. A request due later waits in a schedule (package schedule), as
// a RequeueAfter would, and never passes through the queue before then.
package indexsource

import (
	"context"
	"errors"
	"time"

	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/tokenops/token-operator/internal/index"
	"github.com/tokenops/token-operator/internal/schedule"
	"github.com/tokenops/token-operator/internal/token"
)

// Due is a request to reconcile, and when: now for a zero At.
type Due struct {
	Request reconcile.Request
	At      time.Time
}

// Mapper turns a change of one Record into the requests to reconcile: old is nil for a
// Secret newly indexed, updated is nil for one gone. It is pure.
type Mapper func(old, updated *token.Record) []Due

// New is a source of the changes of tokens, mapped by m. With replay, a controller starting
// (on becoming leader) also gets the requests of every Record already indexed, as an
// informer replays its store to a new handler. The controller starts its workers once the
// index is complete. clk tells when a request is due (nil: the real clock).
func New(tokens *index.Index, m Mapper, replay bool, clk clock.Clock) source.SyncingSource {
	if clk == nil {
		clk = clock.RealClock{}
	}
	return &indexSource{index: tokens, mapper: m, replay: replay, clock: clk}
}

type indexSource struct {
	index  *index.Index
	mapper Mapper
	replay bool
	clock  clock.Clock
}

func (s *indexSource) String() string { return "token index" }

// Start implements source.Source: it subscribes the queue until ctx ends, without blocking.
func (s *indexSource) Start(ctx context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request]) error {
	later := schedule.New[reconcile.Request]()
	go later.Run(ctx, s.clock, q.Add)
	enqueue := func(old, updated *token.Record) {
		for _, d := range s.mapper(old, updated) {
			if !d.At.IsZero() && s.clock.Now().Before(d.At) {
				later.Add(d.At, d.Request)
			} else {
				q.Add(d.Request)
			}
		}
	}
	unsubscribe := s.index.Subscribe(enqueue)
	go func() {
		<-ctx.Done()
		unsubscribe()
	}()
	if s.replay {
		go func() {
			if !s.index.WaitForSync(ctx) {
				return
			}
			for _, rec := range s.index.Records() {
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
