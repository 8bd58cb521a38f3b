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

func main() {
	var (
		metricsAddr, probeAddr, pprofAddr                string
		metricsCertPath, metricsCertName, metricsCertKey string
		enableLeaderElection, secureMetrics, enableHTTP2 bool
		leaderElectionNamespace                          string
		leaseDuration, renewDeadline, retryPeriod        time.Duration
		httpAuth                                         string
		kubeAPIQPS                                       float64
		kubeAPIBurst                                     int
		tokenRequest                                     controller.TokenRequestReconciler
		expiry                                           controller.ExpiryReconciler
		api                                              server.Server
		baseline                                         server.Baseline
	)
	flag.StringVar(&metricsAddr, "metrics-bind-address", "0", "The address the metrics endpoint binds to. "+
		"Use :8443 for HTTPS or :8080 for HTTP, or leave as 0 to disable the metrics service.")
	flag.StringVar(&probeAddr, "health-probe-bind-address", ":8081", "The address the probe endpoint binds to.")
	flag.StringVar(&pprofAddr, "pprof-bind-address", "", "The address net/http/pprof listens on (off when empty).")
	flag.BoolVar(&enableLeaderElection, "leader-elect", false,
		"Enable leader election, so that one replica at a time runs the controllers.")
	flag.StringVar(&leaderElectionNamespace, "leader-election-namespace", "",
		"The namespace of the leader election Lease (default: the operator's own; required outside a cluster).")
	flag.DurationVar(&leaseDuration, "leader-election-lease-duration", 15*time.Second,
		"How long a replica waits before taking over the Lease of a leader that stopped renewing it.")
	flag.DurationVar(&renewDeadline, "leader-election-renew-deadline", 10*time.Second,
		"How long the leader keeps trying to renew the Lease before it gives up leading.")
	flag.DurationVar(&retryPeriod, "leader-election-retry-period", 2*time.Second,
		"How often replicas try to acquire or renew the Lease.")
	flag.BoolVar(&secureMetrics, "metrics-secure", true,
		"Serve metrics over HTTPS with authentication and authorization. Use --metrics-secure=false for HTTP.")
	flag.StringVar(&metricsCertPath, "metrics-cert-path", "", "The directory that contains the metrics server certificate.")
	flag.StringVar(&metricsCertName, "metrics-cert-name", "tls.crt", "The name of the metrics server certificate file.")
	flag.StringVar(&metricsCertKey, "metrics-cert-key", "tls.key", "The name of the metrics server key file.")
	flag.BoolVar(&enableHTTP2, "enable-http2", false, "Enable HTTP/2 for the metrics server.")
	flag.Float64Var(&kubeAPIQPS, "kube-api-qps", 0, "Queries per second the client may send to the API server; "+
		"0 leaves client-side rate limiting off and the API server's priority and fairness in charge.")
	flag.IntVar(&kubeAPIBurst, "kube-api-burst", 0, "Burst of queries the client may send, with --kube-api-qps.")
	flag.DurationVar(&tokenRequest.MaxTTL, "max-ttl", controller.DefaultMaxTTL, "The longest ttl a TokenRequest may ask for.")
	flag.IntVar(&tokenRequest.MaxConcurrentReconciles, "tokenrequest-workers", 16,
		"How many TokenRequests are reconciled at once.")
	flag.IntVar(&expiry.MaxConcurrentReconciles, "expiry-workers", 32, "How many expired token Secrets are deleted at once.")
	flag.StringVar(&api.Addr, "http-bind-address", ":8000", "The address the /app HTTP API listens on.")
	flag.StringVar(&api.Namespace, "http-namespace", defaultNamespace(),
		"The namespace that receives the Secrets of tokens issued over HTTP (default: the operator's own).")
	flag.DurationVar(&api.DefaultTTL, "default-ttl", defaultTTL(),
		"The ttl of a token issued over HTTP without one (default: $TOKEN_TTL_MINUTES minutes, else 60m).")
	flag.BoolVar(&api.AccessLog, "http-access-log", true, "Log one line per HTTP request (never the token).")
	flag.StringVar(&httpAuth, "http-auth", "none", "Who may issue and clear tokens over HTTP: none (anyone) or kubernetes "+
		"(a bearer token that a TokenReview accepts and a SubjectAccessReview allows).")
	flag.BoolVar(&api.AuthValidate, "http-auth-validate", false, "With --http-auth=kubernetes, guard GET /app/valid and POST /app/redeem too.")
	flag.Float64Var(&api.FailedValidationsPerSecond, "http-failed-validation-rate", 10,
		"Failed validations a client address may make per second before 429 (0: no limit).")
	flag.IntVar(&api.FailedValidationsBurst, "http-failed-validation-burst", 100,
		"Failed validations a client address may make at once.")
	flag.Func("http-cors-allowed-origins", "Comma-separated browser origins allowed to call the API (none by default).",
		func(v string) error {
			for o := range strings.SplitSeq(v, ",") {
				if o = strings.TrimSpace(o); o != "" {
					api.CORSAllowedOrigins = append(api.CORSAllowedOrigins, o)
				}
			}
			return nil
		})
	flag.StringVar(&api.TLSCertFile, "http-tls-cert-file", "", "Serve the API over HTTPS with this certificate (reloaded on change).")
	flag.StringVar(&api.TLSKeyFile, "http-tls-key-file", "", "The private key of --http-tls-cert-file.")
	flag.StringVar(&baseline.Addr, "http-baseline-bind-address", "",
		"Benchmarks only: serve a bare handler writing a valid answer here, the ceiling of the validate path.")
	opts := zap.Options{Development: true}
	opts.BindFlags(flag.CommandLine)
	flag.Parse()

	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&opts)))

	var tlsOpts []func(*tls.Config)
	if !enableHTTP2 {
		// HTTP/2 stream cancellation and rapid reset: CVE-2023-44487, CVE-2023-39325.
		tlsOpts = append(tlsOpts, func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} })
	}
	metricsServerOptions := metricsserver.Options{
		BindAddress:   metricsAddr,
		SecureServing: secureMetrics,
		TLSOpts:       tlsOpts,
	}
	if secureMetrics {
		metricsServerOptions.FilterProvider = filters.WithAuthenticationAndAuthorization
	}
	if metricsCertPath != "" {
		metricsServerOptions.CertDir = metricsCertPath
		metricsServerOptions.CertName = metricsCertName
		metricsServerOptions.KeyName = metricsCertKey
	}

	restConfig := ctrl.GetConfigOrDie()
	if kubeAPIQPS > 0 {
		restConfig.QPS = float32(kubeAPIQPS)
		restConfig.Burst = max(kubeAPIBurst, int(kubeAPIQPS))
	}
	mgr, err := ctrl.NewManager(restConfig, ctrl.Options{
		Scheme:                  scheme,
		Cache:                   controller.CacheOptions(),
		Client:                  controller.ClientOptions(),
		Metrics:                 metricsServerOptions,
		HealthProbeBindAddress:  probeAddr,
		PprofBindAddress:        pprofAddr,
		LeaderElection:          enableLeaderElection,
		LeaderElectionID:        "token-operator.tokenops.io",
		LeaderElectionNamespace: leaderElectionNamespace,
		LeaseDuration:           &leaseDuration,
		RenewDeadline:           &renewDeadline,
		RetryPeriod:             &retryPeriod,
		// Safe: the process exits as soon as the manager stops.
		LeaderElectionReleaseOnCancel: true,
	})
	if err != nil {
		setupLog.Error(err, "Failed to create manager")
		os.Exit(1)
	}

	tokens, err := index.NewForConfig(mgr.GetConfig(), mgr.GetHTTPClient(), ctrl.Log.WithName("token-index"))
	if err != nil {
		setupLog.Error(err, "Failed to set up the token index")
		os.Exit(1)
	}
	if err := mgr.Add(tokens); err != nil {
		setupLog.Error(err, "Failed to add the token index")
		os.Exit(1)
	}

	tokenRequest.Client = mgr.GetClient()
	tokenRequest.Tokens = tokens
	tokenRequest.APIReader = mgr.GetAPIReader()
	tokenRequest.Scheme = mgr.GetScheme()
	tokenRequest.Recorder = mgr.GetEventRecorder("token-operator")
	if err := tokenRequest.SetupWithManager(mgr); err != nil {
		setupLog.Error(err, "Failed to create controller", "controller", "tokenrequest")
		os.Exit(1)
	}
	expiry.Client = mgr.GetClient()
	expiry.Tokens = tokens
	if err := expiry.SetupWithManager(mgr); err != nil {
		setupLog.Error(err, "Failed to create controller", "controller", "token-expiry")
		os.Exit(1)
	}

	api.MaxTTL = tokenRequest.MaxTTL
	api.Client = mgr.GetClient()
	api.APIReader = mgr.GetAPIReader()
	api.Tokens = tokens
	api.Expiry = &expiry
	api.Log = ctrl.Log.WithName("http")
	switch httpAuth {
	case "none":
	case "kubernetes":
		if api.Auth, err = server.NewKubernetesAuth(mgr.GetConfig(), mgr.GetHTTPClient()); err != nil {
			setupLog.Error(err, "Failed to set up HTTP authentication")
			os.Exit(1)
		}
	default:
		setupLog.Error(nil, "--http-auth must be none or kubernetes", "http-auth", httpAuth)
		os.Exit(1)
	}
	if api.DefaultTTL < time.Second || api.DefaultTTL > api.MaxTTL {
		setupLog.Error(nil, "--default-ttl must lie between 1s and --max-ttl", "default-ttl", api.DefaultTTL)
		os.Exit(1)
	}
	if err := mgr.Add(&api); err != nil {
		setupLog.Error(err, "Failed to add the HTTP API")
		os.Exit(1)
	}

	if baseline.Addr != "" {
		if err := mgr.Add(&baseline); err != nil {
			setupLog.Error(err, "Failed to add the baseline server")
			os.Exit(1)
		}
	}

	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		setupLog.Error(err, "Failed to set up health check")
		os.Exit(1)
	}
	if err := mgr.AddReadyzCheck("token-index", tokens.ReadyCheck); err != nil {
		setupLog.Error(err, "Failed to set up ready check")
		os.Exit(1)
	}
	if err := mgr.AddReadyzCheck("http-api", api.ReadyCheck); err != nil {
		setupLog.Error(err, "Failed to set up ready check")
		os.Exit(1)
	}

	setupLog.Info("Starting manager")
	if err := mgr.Start(ctrl.SetupSignalHandler()); err != nil {
		setupLog.Error(err, "Failed to run manager")
		os.Exit(1)
	}
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
