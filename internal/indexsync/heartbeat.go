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
	"context"
	"encoding/json"
	"math"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/utils/clock"

	"github.com/tokenops/token-operator/internal/metrics"
	"github.com/tokenops/token-operator/internal/token"
)

// A heartbeat is a Secret of the token type and label, so that it travels in the token
// Secrets' own watch, that one replica writes every period and waits to see come back: the
// newest beat seen is how current that replica's view is. A cheap read would prove only that
// the API server answers, not that the watch delivers; bookmarks are not handed on by
// client-go's RetryWatcher.
const (
	// LabelHeartbeat marks a heartbeat Secret; the token index never sees one.
	LabelHeartbeat = "tokens.tokenops.io/heartbeat"
	// AnnotationBeat is the heartbeat's sequence number, as its replica wrote it.
	AnnotationBeat = "tokens.tokenops.io/beat"
	// DefaultMaxStaleness is --max-staleness's default.
	DefaultMaxStaleness = 30 * time.Second
)

// IsHeartbeat reports whether a Secret of the watch is a heartbeat (of any replica).
func IsHeartbeat(s *corev1.Secret) bool {
	_, ok := s.Labels[LabelHeartbeat]
	return ok
}

// Heartbeat writes this replica's beat and measures, from the beats its watch brings back,
// how old its view of the token Secrets is.
type Heartbeat struct {
	Secrets corev1client.SecretsGetter
	// Secret is this replica's heartbeat Secret: in the operator's own namespace, named after
	// the replica.
	Secret types.NamespacedName
	// MaxStaleness is how old the view may be before the replica says it cannot know (0:
	// never; the view is served however old). A beat is written every MaxStaleness/6 (every
	// 5s by default), so a healthy replica's view is a beat period old at most, plus the
	// watch's latency.
	MaxStaleness time.Duration
	Clock        clock.WithTicker
	Log          logr.Logger

	mu  sync.Mutex
	seq int64
	// sent is when each recent beat was written, by sequence number.
	sent map[int64]time.Time
	// current is when the newest beat seen back was written (Unix nanoseconds, 0: none yet):
	// the view is at least that fresh. Atomic, as every validation reads it.
	current atomic.Int64
}

// Period is how often a beat is written.
func (h *Heartbeat) Period() time.Duration {
	if h.MaxStaleness <= 0 {
		return 10 * time.Second // still measured, for the gauge
	}
	return max(h.MaxStaleness/6, 100*time.Millisecond)
}

// NeedLeaderElection is false: every replica measures its own view.
func (h *Heartbeat) NeedLeaderElection() bool { return false }

// Start writes a beat every Period until ctx ends, then deletes the heartbeat Secret.
func (h *Heartbeat) Start(ctx context.Context) error {
	if h.Clock == nil {
		h.Clock = clock.RealClock{}
	}
	metrics.MeasureStaleness(h.staleness)
	t := h.Clock.NewTicker(h.Period())
	defer t.Stop()
	for {
		h.beat(ctx)
		select {
		case <-ctx.Done():
			stop, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			_ = h.Secrets.Secrets(h.Secret.Namespace).Delete(stop, h.Secret.Name, metav1.DeleteOptions{})
			return nil
		case <-t.C():
		}
	}
}

// beatsKept bounds the beats remembered: older ones no longer prove anything useful.
const beatsKept = 64

// beat writes the next sequence number onto the heartbeat Secret, creating it if needed.
func (h *Heartbeat) beat(ctx context.Context) {
	h.mu.Lock()
	h.seq++
	seq := h.seq
	if h.sent == nil {
		h.sent = map[int64]time.Time{}
	}
	h.sent[seq] = h.Clock.Now()
	delete(h.sent, seq-beatsKept)
	h.mu.Unlock()

	ctx, cancel := context.WithTimeout(ctx, h.Period())
	defer cancel()
	v := strconv.FormatInt(seq, 10)
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{AnnotationBeat: v}}})
	secrets := h.Secrets.Secrets(h.Secret.Namespace)
	_, err := secrets.Patch(ctx, h.Secret.Name, types.MergePatchType, patch, metav1.PatchOptions{})
	if apierrors.IsNotFound(err) {
		_, err = secrets.Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: h.Secret.Namespace, Name: h.Secret.Name,
				Labels:      map[string]string{token.LabelManagedBy: token.ManagedBy, LabelHeartbeat: "true"},
				Annotations: map[string]string{AnnotationBeat: v}},
			Type: token.SecretType,
		}, metav1.CreateOptions{})
	}
	if err != nil && ctx.Err() == nil {
		h.Log.V(1).Info("Failed to write the heartbeat", "reason", err.Error())
	}
}

// staleness is tokenoperator_index_staleness_seconds at a scrape: the view's age (+Inf before
// the first beat came back).
func (h *Heartbeat) staleness() float64 {
	age := h.Age()
	if age == time.Duration(1<<63-1) {
		return math.Inf(1)
	}
	return age.Seconds()
}

// Observe reads a heartbeat Secret from the watch or a list: this replica's own beat, seen
// back, makes the view as fresh as that beat. Other replicas' beats, and anything else with the
// label, prove nothing here.
func (h *Heartbeat) Observe(s *corev1.Secret) {
	if s.Namespace != h.Secret.Namespace || s.Name != h.Secret.Name {
		return
	}
	seq, err := strconv.ParseInt(s.Annotations[AnnotationBeat], 10, 64)
	if err != nil {
		return
	}
	h.mu.Lock()
	if at, ok := h.sent[seq]; ok && at.UnixNano() > h.current.Load() {
		h.current.Store(at.UnixNano())
	}
	h.mu.Unlock()
}

// Age is how old the view is: the time since the newest beat seen back was written (since
// the start when none has been seen yet: a very large age).
func (h *Heartbeat) Age() time.Duration {
	at := h.current.Load()
	if at == 0 {
		return time.Duration(1<<63 - 1)
	}
	return h.Clock.Since(time.Unix(0, at))
}

// Stale reports whether the view is older than MaxStaleness, and its age; never with
// MaxStaleness 0.
func (h *Heartbeat) Stale() (time.Duration, bool) {
	age := h.Age()
	return age, h.MaxStaleness > 0 && age > h.MaxStaleness
}

// ReadyCheck is a healthz.Checker: not ready while the view is stale, so that Services route
// to replicas that know the current state.
func (h *Heartbeat) ReadyCheck(*http.Request) error {
	if age, stale := h.Stale(); stale {
		return &staleError{age: age, max: h.MaxStaleness}
	}
	return nil
}

type staleError struct{ age, max time.Duration }

func (e *staleError) Error() string {
	if e.age == time.Duration(1<<63-1) {
		return "the token index has not yet seen its own heartbeat through its watch"
	}
	return "the token index's view is " + e.age.Round(time.Second).String() + " old, more than --max-staleness " + e.max.String() +
		": it cannot see the API server's changes"
}
