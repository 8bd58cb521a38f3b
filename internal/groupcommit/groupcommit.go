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

// Package groupcommit writes work that arrives together in one write, as databases commit the
// transactions waiting on a log flush together: a Do that finds a write slot free starts a
// write at once with what is queued (so at low load every item is written alone, as soon as it
// comes), and the Dos that arrive while every slot is busy wait and go together into the next
// write. It is the building block of issue 23's token slices (many tokens issued over HTTP per
// API write); it knows nothing of Kubernetes.
package groupcommit

import (
	"context"
	"errors"
	"sync"
	"time"
)

// Committer batches items into writes. Its zero value is not usable: set Write.
type Committer[T any] struct {
	// Write writes a batch of items and answers one error per item (nil: written), in order;
	// an answer of another length fails every item of the batch with ErrAnswers.
	Write func(ctx context.Context, batch []T) []error
	// MaxBatch bounds the items of one write (default 100).
	MaxBatch int
	// MaxInFlight bounds the writes in flight at once (default 1), so that throughput grows
	// with concurrency up to it.
	MaxInFlight int
	// Timeout bounds one write (default 10s). A write is not tied to any one caller's
	// context: a caller that stops waiting does not cancel the others' write.
	Timeout time.Duration

	mu       sync.Mutex
	queue    []*pending[T]
	inFlight int
}

// ErrAnswers: Write answered a number of errors other than the batch's length.
var ErrAnswers = errors.New("groupcommit: the write answered a wrong number of results")

type pending[T any] struct {
	ctx  context.Context
	item T
	done chan error
}

// Do writes item, alone or with others that arrive with it, and answers its own result. A Do
// that finds a write slot free makes that write itself, in its own goroutine (at low load an
// item costs its write and nothing more: no goroutine started, no hand-off back), then hands
// what queued meanwhile to a new goroutine. Do returns ctx's error if ctx ends first; its item
// may then still be written (as a write that times out after the server stored it may), unless
// it was still waiting, in which case it is dropped. A write of one item ends when its caller
// stops waiting (no one else waits for it); a write of several runs on to Timeout.
func (c *Committer[T]) Do(ctx context.Context, item T) error {
	p := &pending[T]{ctx: ctx, item: item, done: make(chan error, 1)}
	c.mu.Lock()
	c.queue = append(c.queue, p)
	var batch []*pending[T]
	if c.inFlight < max(c.MaxInFlight, 1) {
		c.inFlight++
		batch = c.take()
	}
	c.mu.Unlock()
	if batch != nil {
		c.lead(batch)
		if err := ctx.Err(); err != nil {
			return err // as a waiter whose ctx ended would: not the write's answer to its end
		}
	}
	select {
	case err := <-p.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// take removes up to MaxBatch waiting items from the queue, dropping those whose caller has
// stopped waiting. It is called with mu held.
func (c *Committer[T]) take() []*pending[T] {
	limit := c.MaxBatch
	if limit <= 0 {
		limit = 100
	}
	var batch []*pending[T]
	n := 0
	for ; n < len(c.queue) && len(batch) < limit; n++ {
		p := c.queue[n]
		if err := p.ctx.Err(); err != nil {
			p.done <- err
			continue
		}
		batch = append(batch, p)
	}
	c.queue = append(c.queue[:0:0], c.queue[n:]...)
	return batch
}

// lead makes the write of batch in the caller's goroutine, then passes the slot to run with
// what queued meanwhile, or frees it.
func (c *Committer[T]) lead(batch []*pending[T]) {
	if len(batch) > 0 {
		c.write(batch)
	}
	if next, ok := c.next(); ok {
		go c.run(next)
	}
}

// run writes batch, answers its callers, and goes on with what queued meanwhile until the
// queue is empty; then it frees its slot.
func (c *Committer[T]) run(batch []*pending[T]) {
	for ok := true; ok; batch, ok = c.next() {
		if len(batch) > 0 {
			c.write(batch)
		}
	}
}

// next takes what queued for the slot whose write just ended, or frees the slot (false) when
// nothing did.
func (c *Committer[T]) next() ([]*pending[T], bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.queue) == 0 {
		c.inFlight--
		return nil, false
	}
	return c.take(), true
}

func (c *Committer[T]) write(batch []*pending[T]) {
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if len(batch) == 1 {
		defer context.AfterFunc(batch[0].ctx, cancel)()
	}
	items := make([]T, len(batch))
	for i, p := range batch {
		items[i] = p.item
	}
	errs := c.Write(ctx, items)
	for i, p := range batch {
		switch {
		case len(errs) != len(batch):
			p.done <- ErrAnswers
		default:
			p.done <- errs[i]
		}
	}
}
