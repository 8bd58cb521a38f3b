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

// Command manager runs token-operator: the TokenRequest and expiry controllers.
package main

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	// Import all Kubernetes client auth plugins (e.g. Azure, GCP, OIDC, etc.)
	_ "k8s.io/client-go/plugin/pkg/client/auth"

	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	tokensv1alpha1 "github.com/tokenops/token-operator/api/v1alpha1"
	"github.com/tokenops/token-operator/internal/controller"
	"github.com/tokenops/token-operator/internal/index"
	"github.com/tokenops/token-operator/internal/server"
)

var (
	scheme   = runtime.NewScheme()
	setupLog = ctrl.Log.WithName("setup")
)

func init() {
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(tokensv1alpha1.AddToScheme(scheme))
}

// config is everything the flags set.
type config struct {
	metricsAddr, probeAddr, pprofAddr                string
	metricsCertPath, metricsCertName, metricsCertKey string
	enableLeaderElection, secureMetrics, enableHTTP2 bool
	leaderElectionNamespace                          string
	leaseDuration, renewDeadline, retryPeriod        time.Duration
	httpAuth                                         string
	kubeAPIQPS                                       float64
	kubeAPIBurst                                     int
	// The runnables, as far as flags configure them; setup wires the rest.
	tokenRequest controller.TokenRequestReconciler
	expiry       controller.ExpiryReconciler
	api          server.Server
	baseline     server.Baseline
	zap          zap.Options
}

func main() {
	c := &config{zap: zap.Options{Development: true}}
	bindFlags(flag.CommandLine, c)
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&c.zap)))

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

// bindFlags defines every flag of the binary on fs, writing into c.
func bindFlags(fs *flag.FlagSet, c *config) {
	fs.StringVar(&c.metricsAddr, "metrics-bind-address", "0", "The address the metrics endpoint binds to. "+
		"Use :8443 for HTTPS or :8080 for HTTP, or leave as 0 to disable the metrics service.")
	fs.StringVar(&c.probeAddr, "health-probe-bind-address", ":8081", "The address the probe endpoint binds to.")
	fs.StringVar(&c.pprofAddr, "pprof-bind-address", "", "The address net/http/pprof listens on (off when empty).")
	fs.BoolVar(&c.enableLeaderElection, "leader-elect", false,
		"Enable leader election, so that one replica at a time runs the controllers.")
	fs.StringVar(&c.leaderElectionNamespace, "leader-election-namespace", "",
		"The namespace of the leader election Lease (default: the operator's own; required outside a cluster).")
	fs.DurationVar(&c.leaseDuration, "leader-election-lease-duration", 15*time.Second,
		"How long a replica waits before taking over the Lease of a leader that stopped renewing it.")
	fs.DurationVar(&c.renewDeadline, "leader-election-renew-deadline", 10*time.Second,
		"How long the leader keeps trying to renew the Lease before it gives up leading.")
	fs.DurationVar(&c.retryPeriod, "leader-election-retry-period", 2*time.Second,
		"How often replicas try to acquire or renew the Lease.")
	fs.BoolVar(&c.secureMetrics, "metrics-secure", true,
		"Serve metrics over HTTPS with authentication and authorization. Use --metrics-secure=false for HTTP.")
	fs.StringVar(&c.metricsCertPath, "metrics-cert-path", "", "The directory that contains the metrics server certificate.")
	fs.StringVar(&c.metricsCertName, "metrics-cert-name", "tls.crt", "The name of the metrics server certificate file.")
	fs.StringVar(&c.metricsCertKey, "metrics-cert-key", "tls.key", "The name of the metrics server key file.")
	fs.BoolVar(&c.enableHTTP2, "enable-http2", false, "Enable HTTP/2 for the metrics server.")
	fs.Float64Var(&c.kubeAPIQPS, "kube-api-qps", 0, "Queries per second the client may send to the API server; "+
		"0 leaves client-side rate limiting off and the API server's priority and fairness in charge.")
	fs.IntVar(&c.kubeAPIBurst, "kube-api-burst", 0, "Burst of queries the client may send, with --kube-api-qps.")
	fs.DurationVar(&c.tokenRequest.MaxTTL, "max-ttl", controller.DefaultMaxTTL, "The longest ttl a TokenRequest may ask for.")
	fs.IntVar(&c.tokenRequest.MaxConcurrentReconciles, "tokenrequest-workers", 16,
		"How many TokenRequests are reconciled at once.")
	fs.IntVar(&c.expiry.MaxConcurrentReconciles, "expiry-workers", 32, "How many expired token Secrets are deleted at once, by the expiry controller and by each clear over HTTP.")
	bindHTTPFlags(fs, c)
	c.zap.BindFlags(fs)
}

// bindHTTPFlags defines the flags of the /app HTTP API.
func bindHTTPFlags(fs *flag.FlagSet, c *config) {
	api := &c.api
	fs.StringVar(&api.Addr, "http-bind-address", ":8000", "The address the /app HTTP API listens on.")
	fs.StringVar(&api.Namespace, "http-namespace", defaultNamespace(),
		"The namespace that receives the Secrets of tokens issued over HTTP (default: the operator's own).")
	fs.DurationVar(&api.DefaultTTL, "default-ttl", defaultTTL(),
		"The ttl of a token issued over HTTP without one (default: $TOKEN_TTL_MINUTES minutes, else 60m).")
	fs.BoolVar(&api.AccessLog, "http-access-log", true, "Log one line per HTTP request (never the token).")
	fs.StringVar(&c.httpAuth, "http-auth", "none", "Who may issue and clear tokens over HTTP: none (anyone) or kubernetes "+
		"(a bearer token that a TokenReview accepts and a SubjectAccessReview allows).")
	fs.BoolVar(&api.AuthValidate, "http-auth-validate", false, "With --http-auth=kubernetes, guard GET /app/valid and POST /app/redeem too.")
	fs.Float64Var(&api.FailedValidationsPerSecond, "http-failed-validation-rate", 10,
		"Failed validations a client address may make per second before 429 (0: no limit).")
	fs.IntVar(&api.FailedValidationsBurst, "http-failed-validation-burst", 100,
		"Failed validations a client address may make at once.")
	fs.Func("http-cors-allowed-origins", "Comma-separated browser origins allowed to call the API (none by default).",
		func(v string) error {
			for o := range strings.SplitSeq(v, ",") {
				if o = strings.TrimSpace(o); o != "" {
					api.CORSAllowedOrigins = append(api.CORSAllowedOrigins, o)
				}
			}
			return nil
		})
	fs.StringVar(&api.TLSCertFile, "http-tls-cert-file", "", "Serve the API over HTTPS with this certificate (reloaded on change).")
	fs.StringVar(&api.TLSKeyFile, "http-tls-key-file", "", "The private key of --http-tls-cert-file.")
	fs.StringVar(&c.baseline.Addr, "http-baseline-bind-address", "",
		"Benchmarks only: serve a bare handler writing a valid answer here, the ceiling of the validate path.")
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

// setup adds the token index, the controllers, the HTTP API and the health checks to mgr.
func setup(mgr ctrl.Manager, c *config) error {
	tokens, err := index.NewForConfig(mgr.GetConfig(), mgr.GetHTTPClient(), ctrl.Log.WithName("token-index"))
	if err != nil {
		return fmt.Errorf("setting up the token index: %w", err)
	}
	if err := mgr.Add(tokens); err != nil {
		return err
	}
	if err := setupControllers(mgr, c, tokens); err != nil {
		return err
	}
	if err := setupHTTP(mgr, c, tokens); err != nil {
		return err
	}
	return errors.Join(
		mgr.AddHealthzCheck("healthz", healthz.Ping),
		mgr.AddReadyzCheck("token-index", tokens.ReadyCheck),
		mgr.AddReadyzCheck("http-api", c.api.ReadyCheck),
	)
}

// setupControllers registers the TokenRequest and expiry controllers, driven by tokens.
func setupControllers(mgr ctrl.Manager, c *config, tokens *index.Index) error {
	tr := &c.tokenRequest
	tr.Client, tr.Tokens, tr.APIReader = mgr.GetClient(), tokens, mgr.GetAPIReader()
	tr.Recorder = mgr.GetEventRecorder("token-operator")
	if err := tr.SetupWithManager(mgr); err != nil {
		return fmt.Errorf("creating the tokenrequest controller: %w", err)
	}
	c.expiry.Client, c.expiry.Tokens = mgr.GetClient(), tokens
	if err := c.expiry.SetupWithManager(mgr); err != nil {
		return fmt.Errorf("creating the token-expiry controller: %w", err)
	}
	return nil
}

// setupHTTP validates the HTTP flags and adds the /app API (and the benchmarks' baseline).
func setupHTTP(mgr ctrl.Manager, c *config, tokens *index.Index) error {
	api := &c.api
	api.MaxTTL = c.tokenRequest.MaxTTL
	if api.DefaultTTL < time.Second || api.DefaultTTL > api.MaxTTL {
		return fmt.Errorf("--default-ttl must lie between 1s and --max-ttl (%s), got %s", api.MaxTTL, api.DefaultTTL)
	}
	switch c.httpAuth {
	case "none":
	case "kubernetes":
		var err error
		if api.Auth, err = server.NewKubernetesAuth(mgr.GetConfig(), mgr.GetHTTPClient()); err != nil {
			return fmt.Errorf("setting up HTTP authentication: %w", err)
		}
	default:
		return fmt.Errorf("--http-auth must be none or kubernetes, got %q", c.httpAuth)
	}
	api.Client, api.APIReader, api.Tokens = mgr.GetClient(), mgr.GetAPIReader(), tokens
	api.Expiry, api.Log = &c.expiry, ctrl.Log.WithName("http")
	api.ClearWorkers = c.expiry.MaxConcurrentReconciles
	if err := mgr.Add(api); err != nil {
		return err
	}
	if c.baseline.Addr != "" {
		return mgr.Add(&c.baseline)
	}
	return nil
}

// defaultNamespace is the namespace the operator runs in, or "default" outside a cluster.
func defaultNamespace() string {
	if ns := os.Getenv("POD_NAMESPACE"); ns != "" {
		return ns
	}
	if b, err := os.ReadFile("/var/run/secrets/kubernetes.io/serviceaccount/namespace"); err == nil {
		if ns := strings.TrimSpace(string(b)); ns != "" {
			return ns
		}
	}
	return "default"
}

// defaultTTL honours TOKEN_TTL_MINUTES, the original service's setting.
func defaultTTL() time.Duration {
	v := os.Getenv("TOKEN_TTL_MINUTES")
	if v == "" {
		return 60 * time.Minute
	}
	minutes, err := strconv.Atoi(v)
	if err != nil || minutes < 1 {
		// Flags are not parsed yet, so no logger is set: say it on stderr.
		fmt.Fprintf(os.Stderr, "TOKEN_TTL_MINUTES must be a whole number of minutes, at least 1 (got %q)\n", v)
		os.Exit(1)
	}
	return time.Duration(minutes) * time.Minute
}
