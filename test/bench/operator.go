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

package main

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tokenops/token-operator/internal/localcluster"
)

// operator is the operator binary running as a process, as in a cluster.
type operator struct {
	httpURL, probeURL, metricsURL, baselineURL, pprofURL string
	cmd                                                  *exec.Cmd
	exited                                               chan struct{}
	// ready is how long the process took from start to a 200 on /readyz.
	ready time.Duration
}

// startOperator starts the operator and waits until it is ready.
func (b *bench) startOperator(extra ...string) (*operator, error) {
	addrs := make([]string, 5)
	for i := range addrs {
		var err error
		if addrs[i], err = localcluster.FreeAddr(); err != nil {
			return nil, err
		}
	}
	o := &operator{httpURL: "http://" + addrs[0], probeURL: "http://" + addrs[1], metricsURL: "http://" + addrs[2],
		baselineURL: "http://" + addrs[3], pprofURL: "http://" + addrs[4], exited: make(chan struct{})}
	logFile, err := os.OpenFile(filepath.Join(b.workDir, "operator.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, err
	}
	args := append([]string{
		"--kubeconfig=" + b.cluster.KubeconfigPath,
		"--http-bind-address=" + addrs[0],
		"--health-probe-bind-address=" + addrs[1],
		"--metrics-bind-address=" + addrs[2],
		"--metrics-secure=false",
		"--http-baseline-bind-address=" + addrs[3],
		"--pprof-bind-address=" + addrs[4],
		"--http-namespace=" + nsHTTP,
		// As config/default runs it: the audit log on standard output. Nothing else: the
		// operator runs with the shipped defaults (access log on, JSON logs, the
		// failed-validation guard on).
		"--audit-log-path=-",
	}, extra...)
	o.cmd = exec.Command(b.manager, args...)
	// As config/default runs it: GOMEMLIMIT is the shipped memory limit.
	// POD_NAMESPACE as the Deployment sets it: the operator's own namespace, which holds the
	// HTTP tokens, the key Secret and the heartbeats, as in config/default.
	o.cmd.Env = append(os.Environ(), fmt.Sprintf("GOMEMLIMIT=%d", b.memoryLimit), "POD_NAMESPACE="+nsHTTP)
	o.cmd.Stdout, o.cmd.Stderr = logFile, logFile
	o.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	start := time.Now()
	if err := o.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { _ = o.cmd.Wait(); _ = logFile.Close(); close(o.exited) }()
	c := &http.Client{Timeout: time.Second}
	for {
		select {
		case <-o.exited:
			return nil, fmt.Errorf("the operator exited; see %s", logFile.Name())
		case <-time.After(5 * time.Millisecond):
		}
		if resp, err := c.Get(o.probeURL + "/readyz"); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				o.ready = time.Since(start)
				return o, nil
			}
		}
		if time.Since(start) > 2*time.Minute {
			o.stop()
			return nil, fmt.Errorf("the operator was not ready within 2 minutes")
		}
	}
}

func (o *operator) stop() {
	_ = o.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-o.exited:
	case <-time.After(30 * time.Second):
		_ = o.cmd.Process.Kill()
		<-o.exited
	}
}

// statusMiB is a memory figure of the process, such as VmRSS or VmHWM (its peak).
func (o *operator) statusMiB(field string) (float64, error) {
	return statusMiB(o.cmd.Process.Pid, field)
}

// statusMiB reads a memory figure of a process from /proc/PID/status, in MiB.
func statusMiB(pid int, field string) (float64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer func() { _ = f.Close() }()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if rest, ok := strings.CutPrefix(s.Text(), field+":"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb / 1024, err
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

// heapMiB forces a garbage collection in the operator and reads its Go heap's live objects
// (go_memstats_heap_alloc_bytes) from its own metrics: what the operator holds.
func (o *operator) heapMiB() (float64, error) {
	if err := o.heapProfile(os.DevNull); err != nil {
		return 0, err
	}
	v, err := o.metricSum("go_memstats_heap_alloc_bytes ")
	return v / (1 << 20), err
}

// metricSum adds up every sample of the operator's metrics page whose line starts with
// prefix, such as `workqueue_depth{controller="token-expiry"`.
func (o *operator) metricSum(prefix string) (float64, error) {
	resp, err := http.Get(o.metricsURL + "/metrics")
	if err != nil {
		return 0, err
	}
	defer func() { _ = resp.Body.Close() }()
	s := bufio.NewScanner(resp.Body)
	s.Buffer(make([]byte, 1<<20), 1<<20)
	sum, found := 0.0, false
	for s.Scan() {
		line := s.Text()
		if !strings.HasPrefix(line, prefix) {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			return 0, err
		}
		sum, found = sum+v, true
	}
	if !found {
		return 0, fmt.Errorf("no %s in the operator's metrics", prefix)
	}
	return sum, s.Err()
}

// settle waits until the expiry controller has taken in every token after a start (each
// then waits for its expiry in the queue's delay heap), so that memory is measured in the
// steady state rather than while the start-up's queue drains.
func (o *operator) settle(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		depth, err := o.metricSum(`workqueue_depth{controller="token-expiry"`)
		if err == nil && depth == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the expiry controller's queue still held %v requests after %s (%v)", depth, timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// heapProfile forces a garbage collection in the operator and saves its heap profile.
func (o *operator) heapProfile(path string) error {
	resp, err := http.Get(o.pprofURL + "/debug/pprof/heap?gc=1")
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer func() { _ = f.Close() }()
	_, err = io.Copy(f, resp.Body)
	return err
}

// saveMetrics writes the operator's metrics page into dir and returns the file's path.
func (o *operator) saveMetrics(dir string) (string, error) {
	resp, err := http.Get(o.metricsURL + "/metrics")
	if err != nil {
		return "", err
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "operator-metrics.txt")
	return path, os.WriteFile(path, body, 0o644)
}
