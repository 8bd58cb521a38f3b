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

// Command localcluster is `make run`: it starts a local control plane (etcd,
// kube-apiserver, kube-controller-manager), installs the CRDs, writes an admin kubeconfig and
// runs the operator command given after "--" against it, until Ctrl-C or SIGTERM; then it
// stops every process it started.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/tokenops/token-operator/internal/localcluster"
)

func main() {
	binDir := flag.String("bin-dir", "", "folder of etcd, kube-apiserver, kube-controller-manager and kubectl")
	crdDir := flag.String("crd-dir", "config/crd/bases", "folder of the CRDs to install")
	dir := flag.String("dir", "bin/local", "folder for the kubeconfig and logs")
	flag.Parse()
	if *binDir == "" || flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: localcluster --bin-dir DIR [--dir DIR] -- OPERATOR [ARGS...]")
		os.Exit(2)
	}
	if err := run(*binDir, *crdDir, *dir, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "localcluster:", err)
		os.Exit(1)
	}
}

func run(binDir, crdDir, dir string, operator []string) (err error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	kcmLog, err := os.Create(filepath.Join(dir, "kube-controller-manager.log")) //nolint:gosec // a log file in the folder the user named
	if err != nil {
		return err
	}
	defer func() { _ = kcmLog.Close() }()
	kubeconfig, err := filepath.Abs(filepath.Join(dir, "kubeconfig"))
	if err != nil {
		return err
	}

	fmt.Println("Starting etcd, kube-apiserver and kube-controller-manager ...")
	cluster, err := localcluster.Start(context.Background(), localcluster.Options{
		BinDir: binDir, CRDDir: crdDir, KubeconfigPath: kubeconfig, Output: kcmLog,
	})
	if err != nil {
		return err
	}
	defer func() {
		fmt.Println("Stopping the local control plane ...")
		if stopErr := cluster.Stop(); stopErr != nil && err == nil {
			err = stopErr
		}
	}()

	rel := filepath.Join(dir, "kubeconfig")
	fmt.Printf(`
Local control plane up at %s (CRDs installed). Admin kubeconfig: %s
  kubectl --kubeconfig %s get tokenrequests -A
  kubectl --kubeconfig %s apply -f config/samples/tokens_v1alpha1_tokenrequest.yaml
  (kubectl is also at %s)
Starting the operator; Ctrl-C stops everything.

`, cluster.Config.Host, rel, rel, rel, filepath.Join(binDir, "kubectl"))

	// Not ctx: the operator is stopped gracefully below, not killed when the signal comes.
	//nolint:gosec // running the command given after "--" is this tool's job
	cmd := exec.CommandContext(context.WithoutCancel(ctx), operator[0], operator[1:]...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return err
	}
	var waitErr error
	exited := make(chan struct{})
	go func() { waitErr = cmd.Wait(); close(exited) }()
	select {
	case <-exited:
		return fmt.Errorf("the operator exited: %v", waitErr)
	case <-ctx.Done():
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(15 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
	}
	return nil
}
