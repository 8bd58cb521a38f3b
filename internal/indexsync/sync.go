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

// Package indexsync fills the token index (package index) and keeps it current: it lists the
// token Secrets page by page, then watches them, on every replica. It is the index's only
// reader of the API server.
package indexsync

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/pager"
	watchtools "k8s.io/client-go/tools/watch"
	"k8s.io/utils/clock"

	"github.com/tokenops/token-operator/internal/index"
	"github.com/tokenops/token-operator/internal/token"
)

// +kubebuilder:rbac:groups="",resources=secrets,verbs=list;watch

// DefaultPageSize is how many Secrets one list request asks for unless PageSize says.
const DefaultPageSize = 500

// Syncer keeps an index.Index current with the token Secrets of the cluster. It is a manager
// runnable that runs on every replica.
type Syncer struct {
	// Secrets lists and watches the token Secrets.
	Secrets corev1client.SecretsGetter
	// Index is filled and kept current.
	Index *index.Index
	// Log receives the syncer's own lines; never a token.
	Log logr.Logger
	// PageSize is how many Secrets one list request asks for (default DefaultPageSize).
	PageSize int64
	// Clock paces the retries and times the lists (default: the real clock).
	Clock clock.Clock
	// Heartbeat, if set, is handed every heartbeat Secret (which the index never sees).
	Heartbeat *Heartbeat
	// WaitFor, if set, is waited for before the first list: the TokenRequests' informer,
	// so that the index judges TokenRequest Secrets against their statuses from the start.
	WaitFor toolscache.InformerSynced

	// listed counts the Secrets the current list has read, for the readiness message.
	listed atomic.Int64
}

// NeedLeaderElection is false: every replica keeps its own index.
func (x *Syncer) NeedLeaderElection() bool { return false }

// Start fills the index and keeps it current until ctx ends: it lists the token Secrets page
// by page, turning each page into Records before asking for the next (so that memory never
// holds more than a page of Secret objects, even at start-up), then watches from the list's
// resourceVersion, resuming the watch where it broke (client-go's RetryWatcher), and lists
// again only when the API server no longer has that resourceVersion (410 Gone).
func (x *Syncer) Start(ctx context.Context) error {
	if x.Clock == nil {
		x.Clock = clock.RealClock{}
	}
	if x.WaitFor != nil && !toolscache.WaitForCacheSync(ctx.Done(), x.WaitFor) {
		return nil
	}
	backoff := wait.Backoff{Duration: time.Second, Factor: 2, Jitter: 0.1, Steps: 1 << 30, Cap: 30 * time.Second}
	for {
		start := x.Clock.Now()
		rv, err := x.relist(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			x.Log.Error(err, "Failed to list the token Secrets; retrying")
			select {
			case <-ctx.Done():
				return nil
			case <-x.Clock.After(backoff.Step()):
			}
			continue
		}
		backoff.Duration, backoff.Steps = time.Second, 1<<30
		x.Log.Info("Listed the token Secrets", "tokens", x.Index.Len(), "duration", x.Clock.Since(start).Round(time.Millisecond))
		if err := x.watch(ctx, rv); ctx.Err() != nil {
			return nil
		} else if err != nil {
			x.Log.Info("Listing the token Secrets again", "reason", err.Error())
		}
	}
}

// selectors pick the token Secrets, the token slices and the heartbeats: our label. (A field
// selector on the type would pick one type only; the index skips any other Secret with our
// label.)
func selectors(opts *metav1.ListOptions) {
	opts.LabelSelector = token.Selector().String()
}

// relist lists every token Secret into a new snapshot and swaps it into the index, which
// tells its listeners what changed. It returns the list's resourceVersion.
func (x *Syncer) relist(ctx context.Context) (string, error) {
	next := x.Index.NewSnapshot()
	x.listed.Store(0)
	var rv string
	p := pager.New(func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
		list, err := x.Secrets.Secrets(metav1.NamespaceAll).List(ctx, opts)
		if err == nil {
			rv = list.ResourceVersion
		}
		return list, err
	})
	p.PageSize = x.PageSize
	if p.PageSize <= 0 {
		p.PageSize = DefaultPageSize
	}
	p.PageBufferSize = 1 // one page decoded ahead of the one being indexed, no more
	opts := metav1.ListOptions{}
	selectors(&opts)
	err := p.EachListItem(ctx, opts, func(obj runtime.Object) error {
		x.listed.Add(1)
		if s, ok := obj.(*corev1.Secret); ok && !x.heartbeat(s) {
			next.Add(s)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	x.Index.Replace(next)
	return rv, nil
}

// errGone means the watch cannot resume: the index must list again.
var errGone = errors.New("the watch's resourceVersion is gone")

// watch applies the token Secrets' changes from rv on until ctx ends or the watch cannot be
// resumed.
func (x *Syncer) watch(ctx context.Context, rv string) error {
	lw := &toolscache.ListWatch{WatchFuncWithContext: func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
		selectors(&opts)
		opts.AllowWatchBookmarks = true
		return x.Secrets.Secrets(metav1.NamespaceAll).Watch(ctx, opts)
	}}
	w, err := watchtools.NewRetryWatcherWithContext(ctx, rv, lw)
	if err != nil {
		return err
	}
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.ResultChan():
			if !ok {
				return errGone
			}
			switch ev.Type {
			case watch.Added, watch.Modified, watch.Deleted:
				if s, ok := ev.Object.(*corev1.Secret); ok && !x.heartbeat(s) {
					x.Index.Apply(s, ev.Type == watch.Deleted)
				}
			case watch.Error:
				err := apierrors.FromObject(ev.Object)
				if apierrors.IsGone(err) || apierrors.IsResourceExpired(err) {
					return errGone
				}
				x.Log.Error(err, "Watching the token Secrets")
			}
		}
	}
}

// heartbeat hands a heartbeat Secret to Heartbeat and reports whether s was one.
func (x *Syncer) heartbeat(s *corev1.Secret) bool {
	if !IsHeartbeat(s) {
		return false
	}
	if x.Heartbeat != nil {
		x.Heartbeat.Observe(s)
	}
	return true
}

// ReadyCheck is a healthz.Checker: ready once every token Secret is indexed, so that a
// replica never answers false for a live token because it is still starting.
func (x *Syncer) ReadyCheck(*http.Request) error {
	if !x.Index.Synced() {
		return fmt.Errorf("the token index is still loading (%d Secrets listed so far)", x.listed.Load())
	}
	return nil
}

// NewForConfig returns a syncer that fills tokens by listing and watching through cfg, in
// protobuf (the smallest and fastest encoding for Secrets), sharing httpClient's connections
// (if not nil).
func NewForConfig(cfg *rest.Config, httpClient *http.Client, tokens *index.Index, log logr.Logger) (*Syncer, error) {
	cfg = rest.CopyConfig(cfg)
	cfg.ContentType = runtime.ContentTypeProtobuf
	cfg.AcceptContentTypes = runtime.ContentTypeProtobuf + "," + runtime.ContentTypeJSON
	var cs *kubernetes.Clientset
	var err error
	if httpClient == nil {
		cs, err = kubernetes.NewForConfig(cfg)
	} else {
		cs, err = kubernetes.NewForConfigAndClient(cfg, httpClient)
	}
	if err != nil {
		return nil, err
	}
	return &Syncer{Secrets: cs.CoreV1(), Index: tokens, Log: log}, nil
}
