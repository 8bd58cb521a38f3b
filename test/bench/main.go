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

// Command bench is `make bench`: it starts a local control plane, runs the operator binary as
// a process, runs each scenario and prints one table, every figure beside its ceiling measured
// in the same run, and writes the table to a JSON file.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	tokensv1alpha1 "github.com/tokenops/token-operator/api/v1alpha1"
	"github.com/tokenops/token-operator/internal/localcluster"
	"github.com/tokenops/token-operator/internal/server"
)

// result is one row of the table.
type result struct {
	Scenario string   `json:"scenario"`
	Figure   string   `json:"figure"`
	Value    float64  `json:"value"`
	Unit     string   `json:"unit"`
	Ceiling  *float64 `json:"ceiling"`
	Ratio    *float64 `json:"ratio"`
	Aim      string   `json:"aim"`
}

// sizes are the scenario sizes of a full or a quick run.
type sizes struct {
	loadFor                              time.Duration
	issue, trs, expiring, foreignSecrets int
	// liveTokens are the numbers of live tokens the operator is restarted over, smallest first.
	liveTokens []int
}

var (
	// A full run's largest size is the default cap on live HTTP tokens: the memory at the cap.
	full = sizes{loadFor: 10 * time.Second, issue: 2000, trs: 1000, expiring: 100000, foreignSecrets: 10000,
		liveTokens: []int{100000, server.DefaultMaxLiveTokens}}
	quick = sizes{loadFor: time.Second, issue: 200, trs: 100, expiring: 500, foreignSecrets: 1000,
		liveTokens: []int{1000, 2000}}
)

type bench struct {
	sizes
	// validated and validateCeiling are the shipped validation throughput and its ceiling,
	// for the access log's cost.
	validated, validateCeiling float64
	cluster                    *localcluster.Cluster
	c                          client.WithWatch
	workDir                    string
	manager                    string
	out                        string
	results                    []result
	// memoryLimit is the shipped container memory limit (bytes), the operator's GOMEMLIMIT.
	memoryLimit int64

	// Measured early, compared against later.
	emptyReady          time.Duration
	emptyRSS, emptyHeap float64
	secretCeiling       loadResult
	redeemCeil          loadResult
	trCeiling           time.Duration
}

func main() {
	quickMode := flag.Bool("quick", false, "run every scenario briefly (CI)")
	binDir := flag.String("bin-dir", "", "folder of etcd, kube-apiserver, kube-controller-manager and kubectl")
	manager := flag.String("manager", "bin/manager", "the operator binary")
	out := flag.String("out", "bin/bench/results.json", "where the JSON table goes")
	flag.Parse()
	log.SetLogger(logr.Discard()) // the bench's own clients log nothing
	b := &bench{sizes: full, manager: *manager, out: *out}
	if *quickMode {
		b.sizes = quick
	}
	var err error
	if b.memoryLimit, err = shippedMemoryLimit("config/manager/manager.yaml"); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	if err := os.MkdirAll(filepath.Dir(*out), 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	if err := b.run(*binDir, *out); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func (b *bench) run(binDir, out string) (err error) {
	if b.workDir, err = os.MkdirTemp("", "token-operator-bench-"); err != nil {
		return err
	}
	defer func() {
		if err == nil {
			_ = os.RemoveAll(b.workDir)
		} else {
			logf("kept the logs in %s", b.workDir)
		}
	}()
	kcmLog, err := os.Create(filepath.Join(b.workDir, "kube-controller-manager.log"))
	if err != nil {
		return err
	}
	logf("starting the local control plane")
	b.cluster, err = localcluster.Start(context.Background(), localcluster.Options{
		BinDir: binDir, CRDDir: "config/crd/bases", KubeconfigPath: filepath.Join(b.workDir, "kubeconfig"), Output: kcmLog,
	})
	if err != nil {
		return err
	}
	defer func() { _ = b.cluster.Stop() }()
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return err
	}
	if err := tokensv1alpha1.AddToScheme(scheme); err != nil {
		return err
	}
	cfg := *b.cluster.Config
	cfg.QPS, cfg.Burst = -1, 0 // as the operator: no client-side rate limit
	if b.c, err = client.NewWithWatch(&cfg, client.Options{Scheme: scheme}); err != nil {
		return err
	}
	ctx := context.Background()

	for _, scenario := range []func(context.Context) error{
		b.scenarioCeilings,
		b.scenarioWithOperator,
	} {
		if err := scenario(ctx); err != nil {
			return err
		}
	}
	return b.report(out)
}

func (b *bench) add(r result) {
	if r.Ceiling != nil && *r.Ceiling != 0 {
		ratio := r.Value / *r.Ceiling
		r.Ratio = &ratio
	}
	b.results = append(b.results, r)
	logf("%s: %s = %.4g %s", r.Scenario, r.Figure, r.Value, r.Unit)
}

func (b *bench) report(out string) error {
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	_, _ = fmt.Fprintln(w, "SCENARIO\tFIGURE\tVALUE\tCEILING\tRATIO\tAIM")
	for _, r := range b.results {
		ceiling, ratio := "-", "-"
		if r.Ceiling != nil {
			ceiling = fmt.Sprintf("%.4g %s", *r.Ceiling, r.Unit)
		}
		if r.Ratio != nil {
			ratio = fmt.Sprintf("%.2f", *r.Ratio)
		}
		_, _ = fmt.Fprintf(w, "%s\t%s\t%.4g %s\t%s\t%s\t%s\n", r.Scenario, r.Figure, r.Value, r.Unit, ceiling, ratio, r.Aim)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	data, err := json.MarshalIndent(b.results, "", "  ")
	if err != nil {
		return err
	}
	fmt.Println("wrote", out)
	return os.WriteFile(out, data, 0o644)
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s bench: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
