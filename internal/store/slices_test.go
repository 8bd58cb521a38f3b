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

package store

import (
	"context"
	"crypto/rand"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/go-logr/logr"
	"github.com/tokenops/token-operator/internal/index"

	"github.com/tokenops/token-operator/internal/token"
)

func TestSlices(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	// The fake client gives no UID; the API server does, and the slices' patches test it.
	c := fake.NewClientBuilder().WithInterceptorFuncs(interceptor.Funcs{Create: func(ctx context.Context, c client.WithWatch,
		obj client.Object, opts ...client.CreateOption) error {
		obj.SetUID(types.UID(rand.Text()))
		return c.Create(ctx, obj, opts...)
	}}).Build()
	tokens := index.New(logr.Discard())
	s := New(c, c, tokens, clocktesting.NewFakePassiveClock(now))
	s.UseSlices("replica-0")
	issued := make([]token.Issued, 5)
	var wg sync.WaitGroup
	for i := range issued {
		_, issued[i] = stored(time.Hour, new(int64(2)))
		wg.Go(func() {
			key, err := s.IssueHTTP(ctx, "ns", issued[i])
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(key.Name).To(HavePrefix("slice-" + token.SliceWriter("replica-0") + "-"))
		})
	}
	wg.Wait()
	find := func(i token.Issued) *token.Record {
		id, _ := token.ParseID(i.ID)
		rec, _ := tokens.Find(id, token.DigestOf(i.String()))
		return rec
	}
	for _, i := range issued {
		g.Expect(find(i)).NotTo(BeNil(), "indexed as the write answered")
	}
	g.Expect(tokens.LiveHTTP()).To(Equal(5))
	list := &corev1.SecretList{}
	g.Expect(c.List(ctx, list, client.InNamespace("ns"))).To(Succeed())
	for _, secret := range list.Items {
		g.Expect(secret.Type).To(Equal(token.SliceSecretType))
		for _, i := range issued {
			g.Expect(string(secret.Data[token.SliceKey(find(i).Current.ID)])).NotTo(ContainSubstring(i.Secret), "a digest, never the token")
		}
	}

	By := func(string) {}
	By("spending both uses of one token: the last removes its record")
	for left := int64(1); left >= 0; left-- {
		r, err := s.Spend(ctx, find(issued[0]), issued[0].String())
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(r.Verdict).To(Equal(token.VerdictValid))
		g.Expect(r.UsesLeft).To(HaveValue(Equal(left)))
	}
	g.Expect(find(issued[0])).To(BeNil())

	By("revoking one through the store and one by hand, twice")
	done, err := s.Delete(ctx, find(issued[1]))
	g.Expect(done, err).To(BeTrue())
	g.Expect(find(issued[1])).To(BeNil())
	id, _ := token.ParseID(issued[2].ID)
	holder, err := RevokeByID(ctx, c, "ns", id)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(holder).To(HavePrefix("slice-"))
	_, err = RevokeByID(ctx, c, "ns", id)
	g.Expect(err).To(MatchError(ErrNoSuchToken))
	g.Expect(find(issued[3])).NotTo(BeNil(), "the other tokens of the slice stay")

	By("revoking a Secret of its own by hand")
	_, own := stored(time.Hour, nil)
	legacy := New(c, c, tokens, nil)
	_, err = legacy.IssueHTTP(ctx, "ns", own)
	g.Expect(err).NotTo(HaveOccurred())
	ownID, _ := token.ParseID(own.ID)
	holder, err = RevokeByID(ctx, c, "ns", ownID)
	g.Expect(holder, err).To(Equal(token.HTTPSecretName(own.ID)))
}

func TestTakes(t *testing.T) {
	for _, tc := range []struct {
		name          string
		held, left, n int
		want          bool
	}{
		{"a new slice takes a lone token", 0, 100, 1, true},
		{"a lone token goes into a slice of 24", 24, 76, 1, true},
		{"but not into one of 25: it would hold 26", 25, 75, 1, false},
		{"two tokens go into a slice of 23", 23, 77, 2, true},
		{"but not into one of 24", 24, 76, 2, false},
		{"a batch of 27 goes into a new slice", 0, 100, 27, true},
		{"and not into one holding a token", 1, 99, 27, false},
		{"no room for the whole batch", 90, 10, 11, false},
		{"a full slice takes nothing", 100, 0, 1, false},
		{"a new slice takes a batch as large as it", 0, 100, 100, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := takes(tc.held, tc.left, tc.n); got != tc.want {
				t.Errorf("takes(%d, %d, %d) = %v, want %v", tc.held, tc.left, tc.n, got, tc.want)
			}
		})
	}
}

// Lone issues, one after another, fill slices only to AppendLimit tokens: each write
// rewrites at most that many.
func TestLoneIssuesKeepSlicesSmall(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	c := fake.NewClientBuilder().WithInterceptorFuncs(interceptor.Funcs{Create: func(ctx context.Context, c client.WithWatch,
		obj client.Object, opts ...client.CreateOption) error {
		obj.SetUID(types.UID(rand.Text()))
		return c.Create(ctx, obj, opts...)
	}}).Build()
	s := New(c, c, index.New(logr.Discard()), clocktesting.NewFakePassiveClock(now))
	s.UseSlices("replica-0")
	const n = 60
	for range n {
		_, issued := stored(time.Hour, nil)
		_, err := s.IssueHTTP(ctx, "ns", issued)
		g.Expect(err).NotTo(HaveOccurred())
	}
	list := &corev1.SecretList{}
	g.Expect(c.List(ctx, list, client.InNamespace("ns"))).To(Succeed())
	sizes := []int{}
	for _, secret := range list.Items {
		sizes = append(sizes, len(secret.Data))
	}
	g.Expect(sizes).To(ConsistOf(AppendLimit, AppendLimit, n-2*AppendLimit))
}
