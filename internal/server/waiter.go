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

package server

import (
	"context"
	"slices"
	"sync"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// writeWaiter lets a handler wait until the manager's cache holds an object it has just
// written. It is an informer event handler: the informer updates its store before it calls
// handlers, so once notified, a cache read finds the object.
type writeWaiter struct {
	mu      sync.Mutex
	waiters map[types.NamespacedName][]chan struct{}
}

func (w *writeWaiter) notify(obj any) {
	o, ok := obj.(client.Object)
	if !ok {
		return
	}
	key := client.ObjectKeyFromObject(o)
	w.mu.Lock()
	chans := w.waiters[key]
	delete(w.waiters, key)
	w.mu.Unlock()
	for _, c := range chans {
		close(c)
	}
}

// OnAdd implements cache.ResourceEventHandler.
func (w *writeWaiter) OnAdd(obj any, _ bool) { w.notify(obj) }

// OnUpdate implements cache.ResourceEventHandler.
func (w *writeWaiter) OnUpdate(_, obj any) { w.notify(obj) }

// OnDelete implements cache.ResourceEventHandler.
func (w *writeWaiter) OnDelete(any) {}

// wait returns true once inCache reports the object, or once the informer announces it;
// false when ctx ends first.
func (w *writeWaiter) wait(ctx context.Context, key types.NamespacedName, inCache func() bool) bool {
	ch := make(chan struct{})
	w.mu.Lock()
	if w.waiters == nil {
		w.waiters = map[types.NamespacedName][]chan struct{}{}
	}
	w.waiters[key] = append(w.waiters[key], ch)
	w.mu.Unlock()
	if inCache() {
		w.forget(key, ch)
		return true
	}
	select {
	case <-ch:
		return true
	case <-ctx.Done():
		w.forget(key, ch)
		return false
	}
}

func (w *writeWaiter) forget(key types.NamespacedName, ch chan struct{}) {
	w.mu.Lock()
	defer w.mu.Unlock()
	rest := slices.DeleteFunc(w.waiters[key], func(c chan struct{}) bool { return c == ch })
	if len(rest) == 0 {
		delete(w.waiters, key)
	} else {
		w.waiters[key] = rest
	}
}
