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

package indexsource

import (
	"context"
	"testing"
	"time"

	"github.com/go-logr/logr"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/tokenops/token-operator/internal/index"
	"github.com/tokenops/token-operator/internal/token"
)

var base = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

func tokenSecret(name string, ttl time.Duration) *corev1.Secret {
	issued := token.Issued{Token: token.Generate(), Lifetime: token.NewLifetime(base, ttl), Source: token.SourceHTTP}
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, UID: types.UID("uid-" + name)}}
	issued.ApplyTo(s)
	return s
}

// atExpiry maps a new Record to a request at its expiry, a removed one to a request now.
func atExpiry(old, updated *token.Record) []Due {
	if updated == nil {
		return []Due{{Request: reconcile.Request{NamespacedName: old.Key()}}}
	}
	return []Due{{Request: reconcile.Request{NamespacedName: updated.Key()}, At: updated.ExpiresAt()}}
}

func newQueue(t *testing.T) workqueue.TypedRateLimitingInterface[reconcile.Request] {
	q := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[reconcile.Request]())
	t.Cleanup(q.ShutDown)
	return q
}

func names(q workqueue.TypedRateLimitingInterface[reconcile.Request]) []string {
	var out []string
	for q.Len() > 0 {
		r, _ := q.Get()
		out = append(out, r.Name)
		q.Done(r)
	}
	return out
}

func TestSourceQueuesEachRequestWhenDue(t *testing.T) {
	g := NewWithT(t)
	fake := clocktesting.NewFakeClock(base)
	x := index.New(logr.Discard())
	x.Replace(x.NewSnapshot())
	q := newQueue(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	src := New(x, atExpiry, false, fake)
	g.Expect(src.Start(ctx, q)).To(Succeed())
	g.Expect(src.WaitForSync(ctx)).To(Succeed())

	soon := tokenSecret("soon", 10*time.Second)
	x.Apply(soon, false)
	x.Apply(tokenSecret("later", time.Hour), false)
	g.Consistently(q.Len, 100*time.Millisecond).Should(BeZero(), "nothing is due yet")

	g.Eventually(fake.HasWaiters).Should(BeTrue())
	fake.Step(10 * time.Second)
	g.Eventually(q.Len).Should(Equal(1))
	g.Expect(names(q)).To(Equal([]string{"soon"}))

	x.Apply(soon, true)
	g.Eventually(q.Len).Should(Equal(1), "a request due now skips the schedule")
	g.Expect(names(q)).To(Equal([]string{"soon"}))

	cancel()
	g.Eventually(func() int {
		names(q)
		x.Apply(tokenSecret("after-stop", -time.Second), false)
		return q.Len()
	}).Should(BeZero(), "a stopped source queues nothing")
}

func TestSourceReplaysTheIndexOnceSynced(t *testing.T) {
	g := NewWithT(t)
	fake := clocktesting.NewFakeClock(base)
	x := index.New(logr.Discard())
	q := newQueue(t)
	ctx := t.Context()
	src := New(x, atExpiry, true, fake)
	g.Expect(src.Start(ctx, q)).To(Succeed())

	waitCtx, waitCancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer waitCancel()
	g.Expect(src.WaitForSync(waitCtx)).To(MatchError(ContainSubstring("did not finish its first list")))

	snap := x.NewSnapshot()
	snap.Add(tokenSecret("expired", -time.Minute))
	snap.Add(tokenSecret("live", time.Hour))
	x.Replace(snap)
	g.Expect(src.WaitForSync(ctx)).To(Succeed())
	// The diff of the first list and the replay both ask for the expired Secret: the queue
	// holds it once.
	g.Eventually(q.Len).Should(Equal(1))
	g.Consistently(q.Len, 100*time.Millisecond).Should(Equal(1))
	g.Expect(names(q)).To(Equal([]string{"expired"}))
	g.Eventually(fake.HasWaiters).Should(BeTrue())
	fake.Step(time.Hour)
	g.Eventually(names).WithArguments(q).Should(Equal([]string{"live"}))
}

func TestSourceWithoutReplayOnlyFollowsChanges(t *testing.T) {
	g := NewWithT(t)
	x := index.New(logr.Discard())
	snap := x.NewSnapshot()
	snap.Add(tokenSecret("expired", -time.Minute))
	x.Replace(snap)
	q := newQueue(t)
	ctx := t.Context()
	g.Expect(New(x, atExpiry, false, clocktesting.NewFakeClock(base)).Start(ctx, q)).To(Succeed())
	g.Consistently(q.Len, 100*time.Millisecond).Should(BeZero())
	x.Apply(tokenSecret("new", -time.Second), false)
	g.Eventually(names).WithArguments(q).Should(Equal([]string{"new"}))
}
