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

// Command manager runs token-operator on every replica: the token index and its list and
// watch of the token Secrets, the token store that every write goes through, the HTTP API
// (/app), metrics and probes; and, on the leader only, the TokenRequest and expiry
// controllers. config.go reads the flags and the environment into a checked config; this file
// only wires.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"maps"
	"os"
	"slices"
	"time"

	// Import all Kubernetes client auth plugins (e.g. Azure, GCP, OIDC, etc.)
	_ "k8s.io/client-go/plugin/pkg/client/auth"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	tokensv1alpha1 "github.com/tokenops/token-operator/api/v1alpha1"
	"github.com/tokenops/token-operator/internal/audit"
	"github.com/tokenops/token-operator/internal/controller"
	"github.com/tokenops/token-operator/internal/index"
	"github.com/tokenops/token-operator/internal/indexsync"
	"github.com/tokenops/token-operator/internal/provenance"
	"github.com/tokenops/token-operator/internal/server"
	"github.com/tokenops/token-operator/internal/store"
)

var (
	scheme   = runtime.NewScheme()
	setupLog = ctrl.Log.WithName("setup")
)

func init() {
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(tokensv1alpha1.AddToScheme(scheme))
}

func main() {
	c, err := parseConfig(flag.CommandLine, os.Args[1:], os.Getenv)
	if err != nil {
		// No logger yet: say it on stderr.
		fmt.Fprintln(os.Stderr, "token-operator:", err)
		os.Exit(2)
	}
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&c.zap)))
	auditLog, err := audit.Open(c.auditLogPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, "token-operator: --audit-log-path:", err)
		os.Exit(2)
	}
	c.tokenRequest.Audit, c.expiry.Audit, c.api.Audit = auditLog, auditLog, auditLog

	mgr, err := ctrl.NewManager(restConfig(c), managerOptions(c))
	if err != nil {
		setupLog.Error(err, "Failed to create manager")
		os.Exit(1)
	}
	if err := setup(mgr, c); err != nil {
		setupLog.Error(err, "Failed to set up the operator")
		os.Exit(1)
	}
	setupLog.Info("Starting manager")
	if err := mgr.Start(ctrl.SetupSignalHandler()); err != nil {
		setupLog.Error(err, "Failed to run manager")
		os.Exit(1)
	}
}

// restConfig is the kubeconfig's connection, with the client-side rate limit of the flags.
func restConfig(c *config) *rest.Config {
	cfg := ctrl.GetConfigOrDie()
	if c.kubeAPIQPS > 0 {
		cfg.QPS = float32(c.kubeAPIQPS)
		cfg.Burst = max(c.kubeAPIBurst, int(c.kubeAPIQPS))
	}
	return cfg
}

// managerOptions are the manager's options: caches, metrics, probes and leader election.
func managerOptions(c *config) ctrl.Options {
	var tlsOpts []func(*tls.Config)
	if !c.enableHTTP2 {
		// HTTP/2 stream cancellation and rapid reset: CVE-2023-44487, CVE-2023-39325.
		tlsOpts = append(tlsOpts, func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} })
	}
	metrics := metricsserver.Options{BindAddress: c.metricsAddr, SecureServing: c.secureMetrics, TLSOpts: tlsOpts}
	if c.secureMetrics {
		metrics.FilterProvider = filters.WithAuthenticationAndAuthorization
	}
	if c.metricsCertPath != "" {
		metrics.CertDir, metrics.CertName, metrics.KeyName = c.metricsCertPath, c.metricsCertName, c.metricsCertKey
	}
	return ctrl.Options{
		Scheme:                  scheme,
		Cache:                   controller.CacheOptions(),
		Client:                  controller.ClientOptions(),
		Metrics:                 metrics,
		HealthProbeBindAddress:  c.probeAddr,
		PprofBindAddress:        c.pprofAddr,
		LeaderElection:          c.enableLeaderElection,
		LeaderElectionID:        "token-operator.tokenops.io",
		LeaderElectionNamespace: c.leaderElectionNamespace,
		LeaseDuration:           &c.leaseDuration,
		RenewDeadline:           &c.renewDeadline,
		RetryPeriod:             &c.retryPeriod,
		// Safe: the process exits as soon as the manager stops.
		LeaderElectionReleaseOnCancel: true,
	}
}

// setup adds the token index and its syncer, the token store, the controllers, the HTTP API
// and the health checks to mgr.
func setup(mgr ctrl.Manager, c *config) error {
	tokens := index.New(ctrl.Log.WithName("token-index"))
	if err := setupProvenance(mgr, c, tokens); err != nil {
		return err
	}
	syncer, err := indexsync.NewForConfig(mgr.GetConfig(), mgr.GetHTTPClient(), tokens, ctrl.Log.WithName("token-index"))
	if err != nil {
		return fmt.Errorf("setting up the token index: %w", err)
	}
	// Every replica binds TokenRequest Secrets to their TokenRequests' statuses, from before
	// the first list on.
	if err := syncer.BindTokenRequests(context.Background(), mgr.GetCache()); err != nil {
		return err
	}
	// The heartbeat measures how current this replica's view is, through the syncer's watch.
	beat := &indexsync.Heartbeat{Secrets: syncer.Secrets, MaxStaleness: c.maxStaleness, Log: ctrl.Log.WithName("heartbeat"),
		Secret: types.NamespacedName{Namespace: c.namespace, Name: "token-operator-heartbeat-" + c.replicaName}}
	syncer.Heartbeat, c.api.Staleness = beat, beat.Stale
	for _, r := range []manager.Runnable{syncer, beat} {
		if err := mgr.Add(r); err != nil {
			return err
		}
	}
	// The one writer of token Secrets, for the controllers and the HTTP API alike.
	tokenStore := store.New(mgr.GetClient(), mgr.GetAPIReader(), tokens, nil)
	if c.httpTokenLayout == layoutSlices {
		tokenStore.UseSlices(c.replicaName)
	}
	if err := setupControllers(mgr, c, tokens, tokenStore); err != nil {
		return err
	}
	if err := setupHTTP(mgr, c, tokens, tokenStore); err != nil {
		return err
	}
	// The same checks answer /readyz and the tokenoperator_ready gauge.
	ready := map[string]healthz.Checker{"token-index": syncer.ReadyCheck, "http-api": c.api.ReadyCheck,
		"token-index-current": beat.ReadyCheck}
	if err := ctrlmetrics.Registry.Register(&controller.StateCollector{
		Reader: mgr.GetClient(), Tokens: tokens, Log: ctrl.Log.WithName("metrics"),
		Ready: slices.Collect(maps.Values(ready)),
	}); err != nil {
		return err
	}
	errs := []error{mgr.AddHealthzCheck("healthz", healthz.Ping)}
	for name, check := range ready {
		errs = append(errs, mgr.AddReadyzCheck(name, check))
	}
	return errors.Join(errs...)
}

// setupProvenance reads the keys that seal token Secrets (creating them on the first start),
// makes the index admit only what they sealed, and refreshes them on every replica.
func setupProvenance(mgr ctrl.Manager, c *config, tokens *index.Index) error {
	keys := &provenance.Keys{Client: mgr.GetClient(), Secret: types.NamespacedName{Namespace: c.namespace, Name: c.keySecret},
		Evidence: provenance.Evidence(mgr.GetAPIReader(), c.api.Namespace), Recreate: c.keyRecreate,
		Log: ctrl.Log.WithName("keys")}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ring, err := keys.Load(ctx)
	if err != nil {
		return fmt.Errorf("--key-secret: %w", err)
	}
	tokens.Trust = provenance.NewChecker(ring, c.api.Namespace)
	return mgr.Add(keys.Runnable(tokens.Trust, time.Minute))
}

// setupControllers registers the TokenRequest and expiry controllers, driven by tokens, and
// the sweep of one-time codes, all writing through tokenStore.
func setupControllers(mgr ctrl.Manager, c *config, tokens *index.Index, tokenStore *store.Store) error {
	tr := &c.tokenRequest
	tr.Client, tr.Tokens, tr.Store, tr.APIReader = mgr.GetClient(), tokens, tokenStore, mgr.GetAPIReader()
	tr.Recorder = mgr.GetEventRecorder("token-operator")
	if err := tr.SetupWithManager(mgr); err != nil {
		return fmt.Errorf("creating the tokenrequest controller: %w", err)
	}
	c.expiry.Tokens, c.expiry.Store = tokens, tokenStore
	if err := c.expiry.SetupWithManager(mgr); err != nil {
		return fmt.Errorf("creating the token-expiry controller: %w", err)
	}
	return mgr.Add(&controller.CodeSweeper{Store: tokenStore, Namespace: c.api.Namespace, Interval: controller.CodeSweepInterval,
		Log: ctrl.Log.WithName("code-sweep"), Audit: c.expiry.Audit})
}

// setupHTTP adds the /app API (and the benchmarks' baseline).
func setupHTTP(mgr ctrl.Manager, c *config, tokens *index.Index, tokenStore *store.Store) error {
	api := &c.api
	if c.httpAuth == "kubernetes" {
		var err error
		if api.Auth, err = server.NewKubernetesAuth(mgr.GetConfig(), mgr.GetHTTPClient()); err != nil {
			return fmt.Errorf("setting up HTTP authentication: %w", err)
		}
	}
	api.Tokens, api.Store, api.Log = tokens, tokenStore, ctrl.Log.WithName("http")
	api.ClearWorkers = c.expiry.MaxConcurrentReconciles
	if err := mgr.Add(api); err != nil {
		return err
	}
	if c.baseline.Addr != "" {
		return mgr.Add(&c.baseline)
	}
	return nil
}
