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

// Command slicecost measures, outside in on a local control plane, what packing N tokens into
// one Secret costs the API server and etcd, for several N: the API writes and the time to fill
// a number of tokens, kube-apiserver's live heap (read from its /metrics after a GC forced
// through /debug/pprof/heap?gc=1) and RSS, etcd's database growth, and what revoking one
// token costs (a JSON Patch test+remove of its data key): its latency, the bytes of the object
// the API server rewrites, and the watch bytes every watcher of Secrets receives. It is the
// measurement behind the choice of the slice size of issue 23 (README, Scale).
//
//	go run ./hack/slicecost --bin-dir "$(hack/k8s-binaries.sh)" --tokens 100000 --sizes 1,10,100,1000
package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/tokenops/token-operator/internal/localcluster"
)

// recordBytes is the size of one token's packed record (id in the key; digest, expiry and
// uses in the value), as issue 23 measured it.
const recordBytes = 44

func main() {
	binDir := flag.String("bin-dir", "", "folder of etcd, kube-apiserver, kube-controller-manager and kubectl")
	tokens := flag.Int("tokens", 20000, "tokens to write for each slice size")
	sizeList := flag.String("sizes", "1,10,100,1000", "comma-separated tokens per Secret")
	revokes := flag.Int("revokes", 200, "single-token revocations to time for each slice size")
	flag.Parse()
	var sizes []int
	for s := range strings.SplitSeq(*sizeList, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			fail(fmt.Errorf("--sizes: %q is no positive count", s))
		}
		sizes = append(sizes, n)
	}
	if err := run(*binDir, *tokens, *revokes, sizes); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "slicecost:", err)
	os.Exit(1)
}

type row struct {
	perSecret, secrets          int
	fill                        time.Duration
	heapPerToken, etcdPerToken  float64
	apiRSS                      float64
	objectBytes, watchPerRevoke float64
	revokeP50, revokeP99        time.Duration
}

func run(binDir string, tokens, revokes int, sizes []int) error {
	dir, err := os.MkdirTemp("", "slicecost-")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	devNull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer func() { _ = devNull.Close() }()
	cluster, err := localcluster.Start(context.Background(), localcluster.Options{BinDir: binDir, CRDDir: "config/crd/bases",
		KubeconfigPath: filepath.Join(dir, "kubeconfig"), Output: devNull})
	if err != nil {
		return err
	}
	defer func() { _ = cluster.Stop() }()
	cfg := *cluster.Config
	cfg.QPS, cfg.Burst = -1, 0
	cs, err := kubernetes.NewForConfig(&cfg)
	if err != nil {
		return err
	}
	ctx := context.Background()
	var rows []row
	for _, n := range sizes {
		r, err := measure(ctx, cluster, cs, tokens, revokes, n)
		if err != nil {
			return fmt.Errorf("%d tokens per Secret: %w", n, err)
		}
		rows = append(rows, r)
		fmt.Fprintf(os.Stderr, "slicecost: %d per Secret done\n", n)
	}
	fmt.Printf("%d tokens, %d-byte records; kube-apiserver heap after a forced GC\n\n", tokens, recordBytes)
	fmt.Println("| tokens per Secret | API writes to fill | fill rate | kube-apiserver live heap per token | kube-apiserver RSS growth | etcd growth per token | object rewritten per revoke | watch bytes per revoke (each watcher) | revoke p50 / p99 |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|")
	for _, r := range rows {
		fmt.Printf("| %d | %d | %.0f tokens/s | %.0f B | %.0f MiB | %.0f B | %.0f B | %.0f B | %.1f / %.1f ms |\n", r.perSecret, r.secrets,
			float64(tokens)/r.fill.Seconds(), r.heapPerToken, r.apiRSS, r.etcdPerToken, r.objectBytes, r.watchPerRevoke,
			ms(r.revokeP50), ms(r.revokeP99))
	}
	return nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// measure writes tokens in Secrets of n each into a namespace of their own, measures from a
// baseline taken just before (earlier sizes' Secrets stay), and revokes some.
func measure(ctx context.Context, cluster *localcluster.Cluster, cs *kubernetes.Clientset, tokens, revokes, n int) (row, error) {
	ns := fmt.Sprintf("slices-%d", n)
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		return row{}, err
	}
	heapBefore, err := cluster.APIServerLiveHeap(ctx, "")
	if err != nil {
		return row{}, err
	}
	etcdBefore, err := cluster.EtcdDBBytes()
	if err != nil {
		return row{}, err
	}
	var rssBefore float64
	if pid, err := cluster.APIServerPID(); err == nil {
		rssBefore, _ = rssMiB(pid)
	}
	r := row{perSecret: n, secrets: (tokens + n - 1) / n}
	start := time.Now()
	ids, err := fill(ctx, cs, ns, r.secrets, n, tokens)
	if err != nil {
		return row{}, err
	}
	r.fill = time.Since(start)
	heapAfter, err := cluster.APIServerLiveHeap(ctx, "")
	if err != nil {
		return row{}, err
	}
	etcdAfter, err := cluster.EtcdDBBytes()
	if err != nil {
		return row{}, err
	}
	r.heapPerToken = float64(heapAfter-heapBefore) / float64(tokens)
	r.etcdPerToken = float64(etcdAfter-etcdBefore) / float64(tokens)
	if pid, err := cluster.APIServerPID(); err == nil {
		r.apiRSS, _ = rssMiB(pid)
		r.apiRSS -= rssBefore
	}
	if err := revoke(ctx, cs, ns, ids, revokes, &r); err != nil {
		return row{}, err
	}
	return r, nil // kept: deleting 100 000 Secrets in one call times out; the next size measures from its own baseline
}

// fill creates secrets Secrets of n random records each (tokens in all), 64 at a time, and
// answers the slice and data key of every token.
func fill(ctx context.Context, cs *kubernetes.Clientset, ns string, secrets, n, tokens int) ([][3]string, error) {
	ids := make([][3]string, 0, tokens)
	var mu sync.Mutex
	work := make(chan int)
	errs := make(chan error, 64)
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			for i := range work {
				s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("slice-%06d", i),
					Labels: map[string]string{"app.kubernetes.io/managed-by": "slicecost"}}, Data: map[string][]byte{}}
				var mine [][3]string
				for j := 0; j < n && i*n+j < tokens; j++ {
					id, record := make([]byte, 8), make([]byte, recordBytes)
					_, _ = rand.Read(id)
					_, _ = rand.Read(record)
					s.Data[hex.EncodeToString(id)] = record
					mine = append(mine, [3]string{s.Name, hex.EncodeToString(id), base64.StdEncoding.EncodeToString(record)})
				}
				if _, err := cs.CoreV1().Secrets(ns).Create(ctx, s, metav1.CreateOptions{}); err != nil {
					errs <- err
					return
				}
				mu.Lock()
				ids = append(ids, mine...)
				mu.Unlock()
			}
		})
	}
	for i := range secrets {
		select {
		case work <- i:
		case err := <-errs:
			close(work)
			wg.Wait()
			return nil, err
		}
	}
	close(work)
	wg.Wait()
	select {
	case err := <-errs:
		return nil, err
	default:
	}
	return ids, nil
}

// revoke removes revokes tokens, one JSON Patch (test that the key is there, remove it) each,
// 16 at a time, while a watch of the namespace counts the bytes its events carry.
func revoke(ctx context.Context, cs *kubernetes.Clientset, ns string, ids [][3]string, revokes int, r *row) error {
	list, err := cs.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{Limit: 1})
	if err != nil {
		return err
	}
	sample, err := cs.CoreV1().Secrets(ns).Get(ctx, ids[len(ids)-1][0], metav1.GetOptions{})
	if err != nil {
		return err
	}
	raw, _ := json.Marshal(sample)
	r.objectBytes = float64(len(raw))
	watchCtx, stop := context.WithCancel(ctx)
	defer stop()
	stream, err := cs.CoreV1().RESTClient().Get().Namespace(ns).Resource("secrets").
		Param("watch", "true").Param("resourceVersion", list.ResourceVersion).Stream(watchCtx)
	if err != nil {
		return err
	}
	var watched, events atomic.Int64
	go func() {
		sc := bufio.NewScanner(stream)
		sc.Buffer(make([]byte, 1<<20), 64<<20)
		for sc.Scan() {
			watched.Add(int64(len(sc.Bytes())))
			events.Add(1)
		}
	}()
	revokes = min(revokes, len(ids))
	lat := make([]time.Duration, revokes)
	work := make(chan int)
	var wg sync.WaitGroup
	var failed atomic.Value
	for range 16 {
		wg.Go(func() {
			for i := range work {
				t := ids[i*len(ids)/revokes]
				// As a revocation would write it: remove the token's key if it still holds that record.
				patch := fmt.Appendf(nil, `[{"op":"test","path":"/data/%s","value":"%s"},{"op":"remove","path":"/data/%s"}]`, t[1], t[2], t[1])
				slice := t[0]
				start := time.Now()
				if _, err := cs.CoreV1().Secrets(ns).Patch(ctx, slice, types.JSONPatchType, patch, metav1.PatchOptions{}); err != nil {
					failed.Store(err)
				}
				lat[i] = time.Since(start)
			}
		})
	}
	for i := range revokes {
		work <- i
	}
	close(work)
	wg.Wait()
	if err, ok := failed.Load().(error); ok {
		return err
	}
	deadline := time.Now().Add(10 * time.Second)
	for events.Load() < int64(revokes) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond) // the watch's last events in flight
	}
	r.watchPerRevoke = float64(watched.Load()) / float64(max(events.Load(), 1))
	slices.Sort(lat)
	r.revokeP50, r.revokeP99 = lat[len(lat)/2], lat[len(lat)*99/100]
	return nil
}

func rssMiB(pid int) (float64, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024, err
		}
	}
	return 0, fmt.Errorf("no VmRSS")
}
