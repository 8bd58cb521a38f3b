//go:build e2e

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

// Package e2e drives the built operator as a user does: a local control plane with the
// garbage collector, two replicas as separate processes with leader election, kubectl, and
// plain HTTP calls.
package e2e

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/tokenops/token-operator/api/v1alpha1"
	"github.com/tokenops/token-operator/internal/localcluster"
)

var (
	binDir     string
	managerBin string
	workDir    string
	cluster    *localcluster.Cluster
	// operatorKubeconfig acts as the operator's service account (installOperatorIdentity).
	operatorKubeconfig string
	k8sClient          client.WithWatch
	scheme             = runtime.NewScheme()
	replicas           [2]*replica
	httpClient         = &http.Client{Timeout: 10 * time.Second}
	// seenTokens collects every token the suite got hold of, to search the operator's output for.
	seenTokens   []string
	seenTokensMu sync.Mutex
)

func TestE2E(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "token-operator end-to-end suite")
}

var _ = BeforeSuite(func(ctx SpecContext) {
	Expect(clientgoscheme.AddToScheme(scheme)).To(Succeed())
	Expect(tokensv1alpha1.AddToScheme(scheme)).To(Succeed())
	workDir = GinkgoT().TempDir()

	binDir = os.Getenv("K8S_BIN_DIR")
	if binDir == "" {
		out, err := exec.Command(filepath.Join("..", "..", "hack", "k8s-binaries.sh")).Output()
		Expect(err).NotTo(HaveOccurred())
		binDir = strings.TrimSpace(string(out))
	}

	By("building the operator binary")
	managerBin = filepath.Join(workDir, "manager")
	build := exec.Command("go", "build", "-o", managerBin, "./cmd")
	build.Dir = filepath.Join("..", "..")
	build.Stdout, build.Stderr = GinkgoWriter, GinkgoWriter
	Expect(build.Run()).To(Succeed())

	By("starting etcd, kube-apiserver and kube-controller-manager")
	kcmLog, err := os.Create(filepath.Join(workDir, "kube-controller-manager.log"))
	Expect(err).NotTo(HaveOccurred())
	cluster, err = localcluster.Start(context.Background(), localcluster.Options{
		BinDir:         binDir,
		CRDDir:         filepath.Join("..", "..", "config", "crd", "bases"),
		KubeconfigPath: filepath.Join(workDir, "kubeconfig"),
		Output:         kcmLog,
	})
	Expect(err).NotTo(HaveOccurred())
	k8sClient, err = client.NewWithWatch(cluster.Config, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())

	By("creating the operator's service account and RBAC as config/default has them")
	operatorKubeconfig = installOperatorIdentity()

	By("starting two replicas with leader election")
	for i := range replicas {
		replicas[i] = newReplica(fmt.Sprintf("replica-%c", 'a'+i))
		replicas[i].start()
	}
	for _, r := range replicas {
		r.waitReady()
	}
}, NodeTimeout(10*time.Minute))

var _ = AfterSuite(func() {
	for _, r := range replicas {
		if r != nil {
			r.stop()
		}
	}
	if cluster != nil {
		Expect(cluster.Stop()).To(Succeed())
	}
})

// ReportAfterEach prints the replicas' logs of a failed spec.
var _ = ReportAfterEach(func(report SpecReport) {
	if report.Failed() {
		for _, r := range replicas {
			if r != nil {
				AddReportEntry(r.name+" log (tail)", tail(r.logs(), 60))
			}
		}
	}
})

// replica is one operator process.
type replica struct {
	name        string
	httpAddr    string
	probeAddr   string
	metricsAddr string
	logPath     string
	starts      int
	// kubeconfig is the replica's way to the API server (default: operatorKubeconfig).
	kubeconfig string
	cmd        *exec.Cmd
	exited     chan struct{}
}

func newReplica(name string) *replica {
	return &replica{name: name, httpAddr: freeAddr(), probeAddr: freeAddr(), metricsAddr: freeAddr()}
}

// start runs the operator as an out-of-cluster deployment would, with a new log file.
func (r *replica) start() {
	GinkgoHelper()
	r.starts++
	r.logPath = filepath.Join(workDir, fmt.Sprintf("%s-%d.log", r.name, r.starts))
	logFile, err := os.Create(r.logPath)
	Expect(err).NotTo(HaveOccurred())
	kubeconfig := r.kubeconfig
	if kubeconfig == "" {
		kubeconfig = operatorKubeconfig
	}
	r.cmd = exec.Command(managerBin,
		"--kubeconfig="+kubeconfig,
		"--leader-elect",
		"--leader-election-namespace="+operatorNamespace,
		// Shorter than the defaults (15s/10s/2s) so that the failover spec does not idle.
		"--leader-election-lease-duration=6s",
		"--leader-election-renew-deadline=4s",
		"--leader-election-retry-period=1s",
		"--http-namespace=default",
		"--replica-name="+r.name, // two processes on one host: the host name would be shared
		"--http-bind-address="+r.httpAddr,
		"--health-probe-bind-address="+r.probeAddr,
		"--metrics-bind-address="+r.metricsAddr,
		"--metrics-secure=false",
		"--audit-log-path=-", // as config/default runs it
	)
	r.cmd.Stdout, r.cmd.Stderr = logFile, logFile
	// The replica dies with the suite, however the suite ends.
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	Expect(r.cmd.Start()).To(Succeed())
	r.exited = make(chan struct{})
	go func(cmd *exec.Cmd, exited chan struct{}) {
		_ = cmd.Wait()
		_ = logFile.Close()
		close(exited)
	}(r.cmd, r.exited)
}

func (r *replica) waitReady() {
	GinkgoHelper()
	Eventually(func() (int, error) {
		resp, err := httpClient.Get("http://" + r.probeAddr + "/readyz")
		if err != nil {
			return 0, err
		}
		_ = resp.Body.Close()
		return resp.StatusCode, nil
	}).WithTimeout(60 * time.Second).WithPolling(200 * time.Millisecond).Should(Equal(http.StatusOK))
}

// kill ends the process at once, as a node failure would.
func (r *replica) kill() {
	if r.cmd == nil || r.cmd.Process == nil {
		return
	}
	_ = r.cmd.Process.Kill()
	<-r.exited
}

// stop ends the process gracefully, as a rolling update would.
func (r *replica) stop() {
	if r.cmd == nil || r.cmd.Process == nil {
		return
	}
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.exited:
	case <-time.After(30 * time.Second):
		r.kill()
	}
}

func (r *replica) url() string { return "http://" + r.httpAddr }

func (r *replica) logs() string {
	b, _ := os.ReadFile(r.logPath)
	return string(b)
}

// isLeader reports whether the replica acquired the Lease since its last start.
func (r *replica) isLeader() bool {
	return strings.Contains(r.logs(), "Successfully acquired lease")
}

func freeAddr() string {
	GinkgoHelper()
	addr, err := localcluster.FreeAddr()
	Expect(err).NotTo(HaveOccurred())
	return addr
}

// kubectl runs the real kubectl against the local control plane, from the repository root.
func kubectl(args ...string) (string, error) {
	cmd := exec.Command(filepath.Join(binDir, "kubectl"), append([]string{"--kubeconfig", cluster.KubeconfigPath}, args...)...)
	cmd.Dir = filepath.Join("..", "..")
	out, err := cmd.CombinedOutput()
	_, _ = fmt.Fprintf(GinkgoWriter, "$ kubectl %s\n%s", strings.Join(args, " "), out)
	return string(out), err
}

func mustKubectl(args ...string) string {
	GinkgoHelper()
	out, err := kubectl(args...)
	Expect(err).NotTo(HaveOccurred(), out)
	return out
}

// secretToken reads a Secret's token with kubectl, as a user would.
func secretToken(ns, name string) string {
	GinkgoHelper()
	out := mustKubectl("get", "secret", name, "-n", ns, "-o", "jsonpath={.data.token}")
	b, err := base64.StdEncoding.DecodeString(out)
	Expect(err).NotTo(HaveOccurred())
	remember(string(b))
	return string(b)
}

// validate asks a replica about a token and returns its exact answer.
func validate(r *replica, tok string) (string, error) {
	resp, err := httpClient.Get(r.url() + "/app/valid/" + tok)
	if err != nil {
		return "", err
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// call sends a request with an optional JSON body and X-Request-Id to a replica, expects
// 200 and returns its exact answer.
func call(r *replica, method, path, body, requestID string) string {
	GinkgoHelper()
	req, err := http.NewRequest(method, r.url()+path, strings.NewReader(body))
	Expect(err).NotTo(HaveOccurred())
	req.Header.Set("Content-Type", "application/json")
	if requestID != "" {
		req.Header.Set("X-Request-Id", requestID)
	}
	resp, err := httpClient.Do(req)
	Expect(err).NotTo(HaveOccurred())
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	Expect(err).NotTo(HaveOccurred())
	Expect(resp.StatusCode).To(Equal(http.StatusOK), string(b))
	return string(b)
}

// redeem POSTs /app/redeem/{tok} to a replica and returns its exact answer.
func redeem(r *replica, tok string) string {
	GinkgoHelper()
	return call(r, http.MethodPost, "/app/redeem/"+tok, "", "")
}

// issue POSTs /app/token to a replica and returns the token.
func issue(r *replica, body string) string {
	GinkgoHelper()
	b := call(r, http.MethodPost, "/app/token", body, "")
	const prefix = `{"status_code":200,"token":"`
	Expect(b).To(HavePrefix(prefix))
	tok := strings.TrimSuffix(strings.TrimPrefix(b, prefix), `"}`)
	remember(tok)
	return tok
}

func newNamespace(ctx context.Context) string {
	GinkgoHelper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "e2e-"}}
	Expect(k8sClient.Create(ctx, ns)).To(Succeed())
	DeferCleanup(func(ctx SpecContext) {
		_, _ = kubectl("delete", "namespace", ns.Name, "--wait=false")
	})
	return ns.Name
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

const (
	answerTrue  = `{"status_code":200,"status":true}`
	answerFalse = `{"status_code":200,"status":false}`
)

func remember(tok string) {
	seenTokensMu.Lock()
	defer seenTokensMu.Unlock()
	seenTokens = append(seenTokens, tok)
}

// metric reads one unlabelled sample from a replica's metrics endpoint; it must be there.
func (r *replica) metric(name string) float64 {
	GinkgoHelper()
	v, ok := r.series(name, "")
	if !ok {
		Fail("no metric " + name)
	}
	return v
}

// series reads the sample name{labels} ("" for none) from a replica's metrics endpoint; ok is
// false when the series is not there.
func (r *replica) series(name, labels string) (float64, bool) {
	GinkgoHelper()
	resp, err := httpClient.Get("http://" + r.metricsAddr + "/metrics")
	Expect(err).NotTo(HaveOccurred())
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	Expect(err).NotTo(HaveOccurred())
	prefix := name + " "
	if labels != "" {
		prefix = name + "{" + labels + "} "
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, prefix); ok {
			var v float64
			_, err := fmt.Sscan(rest, &v)
			Expect(err).NotTo(HaveOccurred())
			return v, true
		}
	}
	return 0, false
}

func (r *replica) running() bool {
	select {
	case <-r.exited:
		return false
	default:
		return true
	}
}
