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

// Package patchcost measures, on a local kube-apiserver (envtest), what one write costs by its
// kind: a create of a small Secret, a JSON Patch and a JSON merge patch appending a data key to
// a growing Secret, and a merge patch of a Secret of 100 keys (the token slices' appends, issue
// 23). A measurement, not a test: it runs only with PATCHCOST=1:
//
//	PATCHCOST=1 KUBEBUILDER_ASSETS="$(hack/k8s-binaries.sh)" go test ./hack/patchcost -v
package patchcost

import (
	"context"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

func p50(d []time.Duration) time.Duration {
	slices.Sort(d)
	return d[len(d)/2]
}

// startAPIServer starts envtest's kube-apiserver for the test and answers a client of it.
func startAPIServer(t *testing.T) client.Client {
	t.Helper()
	env := &envtest.Environment{}
	cfg, err := env.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Error(err)
		}
	})
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCost(t *testing.T) {
	if os.Getenv("PATCHCOST") == "" {
		t.Skip("a measurement: PATCHCOST=1 runs it")
	}
	c := startAPIServer(t)
	ctx := context.Background()
	const n = 200
	var create, jsonp, merge []time.Duration
	for i := range n {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: fmt.Sprintf("c-%d", i)}, Data: map[string][]byte{"a": make([]byte, 60)}}
		t0 := time.Now()
		if err := c.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
		create = append(create, time.Since(t0))
	}
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "slice"}}
	_ = c.Create(ctx, s)
	for i := range n {
		p := fmt.Sprintf(`[{"op":"test","path":"/metadata/uid","value":%q},{"op":"add","path":"/data/k%04d","value":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}]`, s.UID, i%100)
		if i%100 == 0 {
			_ = c.Delete(ctx, s)
			s = &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: fmt.Sprintf("slice-%d", i)}, Data: map[string][]byte{"x": []byte("y")}}
			_ = c.Create(ctx, s)
			p = fmt.Sprintf(`[{"op":"test","path":"/metadata/uid","value":%q},{"op":"add","path":"/data/k%04d","value":"AAAA"}]`, s.UID, i)
		}
		t0 := time.Now()
		if err := c.Patch(ctx, s, client.RawPatch(types.JSONPatchType, []byte(p))); err != nil {
			t.Fatal(err)
		}
		jsonp = append(jsonp, time.Since(t0))
	}
	m := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "merge"}}
	_ = c.Create(ctx, m)
	for i := range n {
		p := fmt.Sprintf(`{"data":{"k%04d":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}}`, i%50)
		t0 := time.Now()
		if err := c.Patch(ctx, m, client.RawPatch(types.MergePatchType, []byte(p))); err != nil {
			t.Fatal(err)
		}
		merge = append(merge, time.Since(t0))
	}
	// big: patch a Secret already holding 100 keys, as created (its managedFields name every
	// key) and after one patch reset its managedFields (the API server then tracks no more)
	bigPatch := func(name string, reset bool) []time.Duration {
		b := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name}, Data: map[string][]byte{}}
		for k := range 100 {
			b.Data[fmt.Sprintf("k%04d", k)] = make([]byte, 60)
		}
		if err := c.Create(ctx, b); err != nil {
			t.Fatal(err)
		}
		if reset {
			if err := c.Patch(ctx, b, client.RawPatch(types.MergePatchType, []byte(`{"metadata":{"managedFields":[{}]}}`))); err != nil {
				t.Fatal(err)
			}
		}
		var d []time.Duration
		for i := range n {
			p := fmt.Sprintf(`{"data":{"k%04d":"BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"}}`, i%100)
			t0 := time.Now()
			if err := c.Patch(ctx, b, client.RawPatch(types.MergePatchType, []byte(p))); err != nil {
				t.Fatal(err)
			}
			d = append(d, time.Since(t0))
		}
		t.Logf("%s: %d managedFields entries", name, len(b.ManagedFields))
		return d
	}
	bigp := bigPatch("big", false)
	bigReset := bigPatch("big-reset", true)
	t.Logf("p50 create %v, json patch (0-100 keys) %v, merge patch (<=50 keys) %v, merge patch of a 100-key Secret %v, the same without managedFields %v",
		p50(create), p50(jsonp), p50(merge), p50(bigp), p50(bigReset))
}

// TestCostBySize measures what one merge patch of a single data key costs by the size of the
// Secret it goes to (managedFields reset, as the token store leaves a slice), and an update
// (PUT, protobuf) of the whole Secret at its resourceVersion, each against a create of a
// one-key Secret, interleaved so that the machine's drift falls on all of them alike.
func TestCostBySize(t *testing.T) {
	if os.Getenv("PATCHCOST") == "" {
		t.Skip("a measurement: PATCHCOST=1 runs it")
	}
	c := startAPIServer(t)
	ctx := context.Background()
	sizes := []int{1, 10, 25, 50, 100}
	targets := make([]*corev1.Secret, len(sizes))
	for i, k := range sizes {
		targets[i] = &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: fmt.Sprintf("size-%d", k)}, Data: map[string][]byte{}}
		for j := range k {
			targets[i].Data[fmt.Sprintf("k%04d", j)] = make([]byte, 60)
		}
		if err := c.Create(ctx, targets[i]); err != nil {
			t.Fatal(err)
		}
		if err := c.Patch(ctx, targets[i], client.RawPatch(types.MergePatchType, []byte(`{"metadata":{"managedFields":[{}]}}`))); err != nil {
			t.Fatal(err)
		}
	}
	const n = 200
	create := []time.Duration{}
	patch, update := make([][]time.Duration, len(sizes)), make([][]time.Duration, len(sizes))
	timed := func(f func() error) time.Duration {
		t0 := time.Now()
		if err := f(); err != nil {
			t.Fatal(err)
		}
		return time.Since(t0)
	}
	for r := range n {
		create = append(create, timed(func() error {
			return c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: fmt.Sprintf("one-%d", r)},
				Data: map[string][]byte{"a": make([]byte, 60)}})
		}))
		for i, s := range targets {
			p := fmt.Sprintf(`{"data":{"k%04d":"%s"}}`, r%sizes[i], "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB")
			patch[i] = append(patch[i], timed(func() error { return c.Patch(ctx, s, client.RawPatch(types.MergePatchType, []byte(p))) }))
			s.Data[fmt.Sprintf("k%04d", r%sizes[i])] = []byte{byte(r)}
			update[i] = append(update[i], timed(func() error { return c.Update(ctx, s) }))
		}
	}
	c0 := p50(create)
	t.Logf("p50 create of a one-key Secret %v", c0)
	for i, k := range sizes {
		pp, pu := p50(patch[i]), p50(update[i])
		t.Logf("%3d keys: merge patch of one key %v (%.2f x create), update %v (%.2f x create)", k, pp, float64(pp)/float64(c0), pu, float64(pu)/float64(c0))
	}
}
