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

// Package localcluster runs a throwaway Kubernetes control plane on this machine: etcd and
// kube-apiserver through envtest, plus kube-controller-manager with the garbage collector and
// namespace controllers, so that ownerReferences cascade and namespaces really go away. It
// serves `make run`, the end-to-end suite and the benchmarks.
package localcluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// Options configure a Cluster.
type Options struct {
	// BinDir holds etcd, kube-apiserver, kube-controller-manager and kubectl
	// (`make k8s-bin-dir` prints it).
	BinDir string
	// CRDDir holds the CRDs to install.
	CRDDir string
	// KubeconfigPath is where the admin kubeconfig is written.
	KubeconfigPath string
	// Output receives kube-controller-manager's logs (discarded when nil).
	Output *os.File
}

// Cluster is a running control plane.
type Cluster struct {
	// Config is an admin connection to the API server.
	Config *rest.Config
	// KubeconfigPath is the admin kubeconfig file.
	KubeconfigPath string

	env *envtest.Environment
	kcm *exec.Cmd
}

// Start starts etcd, kube-apiserver (data in a temporary folder) and kube-controller-manager,
// installs the CRDs and writes an admin kubeconfig.
func Start(ctx context.Context, o Options) (*Cluster, error) {
	c := &Cluster{KubeconfigPath: o.KubeconfigPath, env: &envtest.Environment{
		BinaryAssetsDirectory: o.BinDir,
		CRDDirectoryPaths:     []string{o.CRDDir},
		ErrorIfCRDPathMissing: true,
	}}
	var err error
	if c.Config, err = c.env.Start(); err != nil {
		return nil, fmt.Errorf("starting etcd and kube-apiserver: %w", err)
	}
	if err := c.writeKubeconfig(); err != nil {
		return nil, errors.Join(err, c.Stop())
	}
	//nolint:gosec // the binary folder is the caller's, as make k8s-bin-dir prints it
	c.kcm = exec.CommandContext(ctx, filepath.Join(o.BinDir, "kube-controller-manager"),
		"--kubeconfig="+c.KubeconfigPath,
		"--controllers=garbagecollector,namespace",
		"--leader-elect=false",
		"--secure-port=0",
		"--concurrent-gc-syncs=5",
	)
	c.kcm.Stdout, c.kcm.Stderr = o.Output, o.Output
	// kube-controller-manager dies with the process that started it, however that one ends.
	c.kcm.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := c.kcm.Start(); err != nil {
		return nil, errors.Join(fmt.Errorf("starting kube-controller-manager: %w", err), c.Stop())
	}
	return c, nil
}

func (c *Cluster) writeKubeconfig() error {
	user, err := c.env.AddUser(envtest.User{Name: "admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return fmt.Errorf("adding the admin user: %w", err)
	}
	kubeconfig, err := user.KubeConfig()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(c.KubeconfigPath), 0o750); err != nil {
		return err
	}
	return os.WriteFile(c.KubeconfigPath, kubeconfig, 0o600)
}

// Stop stops kube-controller-manager, kube-apiserver and etcd, and removes etcd's data.
func (c *Cluster) Stop() error {
	var errs []error
	if c.kcm != nil && c.kcm.Process != nil {
		_ = c.kcm.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = c.kcm.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = c.kcm.Process.Kill()
			<-done
		}
	}
	if err := c.env.Stop(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// APIServerPID finds the process of this cluster's kube-apiserver, so that fault tests can
// stop and resume it.
func (c *Cluster) APIServerPID() (int, error) {
	u, err := url.Parse(c.Config.Host)
	if err != nil {
		return 0, err
	}
	want := "--secure-port=" + u.Port()
	procs, err := filepath.Glob("/proc/[0-9]*/cmdline")
	if err != nil {
		return 0, err
	}
	for _, p := range procs {
		b, err := os.ReadFile(p) //nolint:gosec // a /proc path from the glob above
		if err != nil {
			continue
		}
		args := strings.Split(string(b), "\x00")
		if !strings.HasSuffix(args[0], "kube-apiserver") || !slices.Contains(args, want) {
			continue
		}
		return strconv.Atoi(filepath.Base(filepath.Dir(p)))
	}
	return 0, fmt.Errorf("no kube-apiserver process with %s", want)
}

// FreeAddr returns a loopback address with a port that was free a moment ago, for a process
// started beside the cluster (an operator replica, say).
func FreeAddr() (string, error) {
	l, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer func() { _ = l.Close() }()
	return l.Addr().String(), nil
}

// EtcdDBBytes is the size of etcd's database file: it grows with what is written and does
// not shrink until etcd defragments.
func (c *Cluster) EtcdDBBytes() (int64, error) {
	fi, err := os.Stat(filepath.Join(c.env.ControlPlane.Etcd.DataDir, "member", "snap", "db"))
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// APIServerLiveHeap is kube-apiserver's live heap: a GC forced twice through its pprof heap
// endpoint, then go_memstats_alloc_bytes from its /metrics; the heap profile goes to profilePath
// unless it is "".
func (c *Cluster) APIServerLiveHeap(ctx context.Context, profilePath string) (int64, error) {
	rc, err := rest.RESTClientFor(restConfigForRaw(c.Config))
	if err != nil {
		return 0, err
	}
	var profile []byte
	for range 2 {
		if profile, err = rc.Get().AbsPath("/debug/pprof/heap").Param("gc", "1").DoRaw(ctx); err != nil {
			return 0, fmt.Errorf("forcing a GC: %w", err)
		}
	}
	if profilePath != "" {
		if err := os.WriteFile(profilePath, profile, 0o600); err != nil {
			return 0, err
		}
	}
	raw, err := rc.Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return 0, err
	}
	for line := range bytes.Lines(raw) {
		if v, ok := bytes.CutPrefix(line, []byte("go_memstats_alloc_bytes ")); ok {
			f, err := strconv.ParseFloat(string(bytes.TrimSpace(v)), 64)
			return int64(f), err
		}
	}
	return 0, errors.New("no go_memstats_alloc_bytes in kube-apiserver's /metrics")
}

// restConfigForRaw is cfg for a REST client of raw paths (no group, no codec needed).
func restConfigForRaw(cfg *rest.Config) *rest.Config {
	c := rest.CopyConfig(cfg)
	c.GroupVersion = &schema.GroupVersion{Version: "v1"}
	c.NegotiatedSerializer = scheme.Codecs.WithoutConversion()
	if c.UserAgent == "" {
		c.UserAgent = rest.DefaultKubernetesUserAgent()
	}
	return c
}
