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
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/tokenops/token-operator/internal/controller"
	"github.com/tokenops/token-operator/internal/indexsync"
	"github.com/tokenops/token-operator/internal/provenance"
	"github.com/tokenops/token-operator/internal/server"
)

// config is everything the flags set.
type config struct {
	metricsAddr, probeAddr, pprofAddr                string
	metricsCertPath, metricsCertName, metricsCertKey string
	enableLeaderElection, secureMetrics, enableHTTP2 bool
	leaderElectionNamespace                          string
	leaseDuration, renewDeadline, retryPeriod        time.Duration
	httpAuth                                         string
	auditLogPath                                     string
	kubeAPIQPS                                       float64
	kubeAPIBurst                                     int
	// namespace is the operator's own, where the key Secret lives.
	namespace   string
	keySecret   string
	keyRecreate bool
	// replicaName names this replica's heartbeat Secret.
	replicaName  string
	maxStaleness time.Duration
	// httpTokenLayout is --http-token-layout: where tokens issued over HTTP are stored.
	httpTokenLayout string

	// httpMaxTTL is --http-max-ttl; api.MaxTTL is the bound it and --max-ttl make together.
	httpMaxTTL time.Duration
	// The runnables, as far as flags configure them; setup wires the rest.
	tokenRequest controller.TokenRequestReconciler
	expiry       controller.ExpiryReconciler
	api          server.Server
	baseline     server.Baseline
	zap          zap.Options
}

// The values of --http-token-layout.
const (
	layoutSlices  = "slices"
	layoutSecrets = "secrets"
)

// parseConfig reads the flags in args, and the environment through getenv, into a config and
// checks it before anything touches a cluster: an error names the flag or variable at fault.
func parseConfig(fs *flag.FlagSet, args []string, getenv func(string) string) (*config, error) {
	env, envErr := readEnvironment(getenv)
	c := &config{namespace: env.namespace} // zap: production (JSON, info) unless --zap-devel
	bindFlags(fs, c, env)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if envErr != nil {
		return nil, envErr
	}
	c.api.MaxTTL = httpMaxTTL(c.httpMaxTTL, c.tokenRequest.MaxTTL)
	return c, c.validate()
}

// httpMaxTTL is the longest ttl POST /app/token accepts: --http-max-ttl, within --max-ttl;
// --max-ttl alone when --http-max-ttl is 0.
func httpMaxTTL(httpMax, maxTTL time.Duration) time.Duration {
	if httpMax <= 0 {
		return maxTTL
	}
	return min(httpMax, maxTTL)
}

// validate checks what the flag package cannot: ranges and combinations.
func (c *config) validate() error {
	var errs []error
	check := func(bad bool, format string, args ...any) {
		if bad {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	api := &c.api
	check(c.tokenRequest.MaxTTL < time.Second, "--max-ttl must be at least 1s, got %s", c.tokenRequest.MaxTTL)
	check(c.httpMaxTTL < 0 || c.httpMaxTTL > 0 && c.httpMaxTTL < time.Second,
		"--http-max-ttl must be 0 (--max-ttl alone) or at least 1s, got %s", c.httpMaxTTL)
	if c.httpMaxTTL > 0 {
		check(api.DefaultTTL < time.Second || api.DefaultTTL > api.MaxTTL, "--default-ttl must lie between 1s and "+
			"--http-max-ttl (%s) and --max-ttl (%s), got %s", c.httpMaxTTL, c.tokenRequest.MaxTTL, api.DefaultTTL)
	} else {
		check(api.DefaultTTL < time.Second || api.DefaultTTL > api.MaxTTL,
			"--default-ttl must lie between 1s and --max-ttl (%s), got %s", api.MaxTTL, api.DefaultTTL)
	}
	check(c.httpAuth != "none" && c.httpAuth != "kubernetes", "--http-auth must be none or kubernetes, got %q", c.httpAuth)
	check(api.FailedValidationsPerSecond < 0, "--http-failed-validation-rate must be 0 (no limit) or more, got %v",
		api.FailedValidationsPerSecond)
	check(api.FailedValidationsBurst < 1, "--http-failed-validation-burst must be at least 1, got %d", api.FailedValidationsBurst)
	check(api.ListsPerSecond < 0, "--http-list-rate must be 0 (no limit) or more, got %v", api.ListsPerSecond)
	check(api.ListBurst < 1, "--http-list-burst must be at least 1, got %d", api.ListBurst)
	check(api.IssuesPerSecond < 0, "--http-issue-rate must be 0 (no limit) or more, got %v", api.IssuesPerSecond)
	check(api.IssueBurst < 1, "--http-issue-burst must be at least 1, got %d", api.IssueBurst)
	check(api.CodeLimit.Count < 1, "--code-issue-limit must be at least 1, got %d", api.CodeLimit.Count)
	check(api.CodeLimit.Window < time.Second, "--code-issue-window must be at least 1s, got %s", api.CodeLimit.Window)
	check(c.httpTokenLayout != layoutSlices && c.httpTokenLayout != layoutSecrets,
		"--http-token-layout must be %q or %q, got %q", layoutSlices, layoutSecrets, c.httpTokenLayout)
	check(api.MaxLiveTokens < 0, "--http-max-live-tokens must be 0 (no cap) or more, got %d", api.MaxLiveTokens)
	check((api.TLSCertFile == "") != (api.TLSKeyFile == ""), "--http-tls-cert-file and --http-tls-key-file go together")
	check(c.tokenRequest.MaxConcurrentReconciles < 1, "--tokenrequest-workers must be at least 1, got %d",
		c.tokenRequest.MaxConcurrentReconciles)
	check(c.tokenRequest.MinRestartInterval < 0, "--min-restart-interval must be 0 (no limit) or more, got %s",
		c.tokenRequest.MinRestartInterval)
	check(c.expiry.MaxConcurrentReconciles < 1, "--expiry-workers must be at least 1, got %d", c.expiry.MaxConcurrentReconciles)
	check(c.keySecret == "", "--key-secret must name a Secret")
	check(c.maxStaleness < 0 || c.maxStaleness > 0 && c.maxStaleness < time.Second,
		"--max-staleness must be 0 (off) or at least 1s, got %s", c.maxStaleness)
	check(c.replicaName == "", "--replica-name must not be empty")
	check(c.kubeAPIQPS < 0, "--kube-api-qps must be 0 (off) or more, got %v", c.kubeAPIQPS)
	check(c.kubeAPIBurst < 0, "--kube-api-burst must be 0 or more, got %d", c.kubeAPIBurst)
	check(c.retryPeriod <= 0, "--leader-election-retry-period must be positive, got %s", c.retryPeriod)
	check(c.renewDeadline <= c.retryPeriod, "--leader-election-renew-deadline (%s) must be longer than "+
		"--leader-election-retry-period (%s)", c.renewDeadline, c.retryPeriod)
	check(c.leaseDuration <= c.renewDeadline, "--leader-election-lease-duration (%s) must be longer than "+
		"--leader-election-renew-deadline (%s)", c.leaseDuration, c.renewDeadline)
	if p := c.auditLogPath; p != "" && p != "-" {
		info, err := os.Stat(filepath.Dir(p))
		check(err != nil || !info.IsDir(), "--audit-log-path: %s is not a folder that exists", filepath.Dir(p))
	}
	return errors.Join(errs...)
}

// bindFlags defines every flag of the binary on fs, writing into c.
func bindFlags(fs *flag.FlagSet, c *config, env environment) {
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
	fs.DurationVar(&c.tokenRequest.MinRestartInterval, "min-restart-interval", controller.DefaultMinRestartInterval,
		"The shortest time between two restarts of one workload of spec.rotation.restartTargets, whatever TokenRequest "+
			"asks; a restart due sooner waits (0: no limit).")
	fs.IntVar(&c.expiry.MaxConcurrentReconciles, "expiry-workers", 32, "How many expired token Secrets are deleted at once, by the expiry controller and by each clear over HTTP.")
	fs.StringVar(&c.keySecret, "key-secret", provenance.DefaultKeySecretName, "The Secret, in the operator's own namespace, "+
		"that holds the keys sealing every token Secret; created on the first start, never made anew while tokens sealed "+
		"with it exist.")
	fs.BoolVar(&c.keyRecreate, "key-secret-recreate", false, "Create a new --key-secret even though tokens sealed with "+
		"the lost one exist: every HTTP token then stops validating and every TokenRequest gets a new token. For recovery only.")
	fs.StringVar(&c.replicaName, "replica-name", env.replica, "This replica's name, unique among the replicas: "+
		"it names the heartbeat Secret that measures how current its view is (default: $POD_NAME, else the host name).")
	fs.DurationVar(&c.maxStaleness, "max-staleness", indexsync.DefaultMaxStaleness, "How old this replica's view of the "+
		"token Secrets may be (the time since its own heartbeat last came back through its watch) before validation, "+
		"redemption and lookup answer 503 and /readyz fails; 0 serves the last view however old.")
	bindHTTPFlags(fs, c, env)
	c.zap.BindFlags(fs)
}

// bindHTTPFlags defines the flags of the /app HTTP API.
func bindHTTPFlags(fs *flag.FlagSet, c *config, env environment) {
	api := &c.api
	fs.StringVar(&api.Addr, "http-bind-address", ":8000", "The address the /app HTTP API listens on.")
	fs.StringVar(&api.Namespace, "http-namespace", env.namespace,
		"The namespace that receives the Secrets of tokens issued over HTTP (default: the operator's own).")
	fs.DurationVar(&api.DefaultTTL, "default-ttl", env.ttl,
		"The ttl of a token issued over HTTP without one (default: $TOKEN_TTL_MINUTES minutes, else 60m).")
	fs.DurationVar(&c.httpMaxTTL, "http-max-ttl", server.DefaultHTTPMaxTTL, "The longest ttl a token issued over HTTP "+
		"may ask for, within --max-ttl (0: --max-ttl alone).")
	fs.Float64Var(&api.IssuesPerSecond, "http-issue-rate", server.DefaultIssuesPerSecond,
		"Tokens a client may issue over HTTP per second before 429 (0: no limit).")
	fs.IntVar(&api.IssueBurst, "http-issue-burst", server.DefaultIssueBurst, "Tokens a client may issue over HTTP at once.")
	fs.StringVar(&c.httpTokenLayout, "http-token-layout", layoutSlices, "Where tokens issued over HTTP are stored: "+
		"\""+layoutSlices+"\", up to 100 per token slice Secret grouped by expiry window, written by group commit; or \""+
		layoutSecrets+"\", a Secret per token (the layout before token slices). Either way every replica reads both.")
	fs.IntVar(&api.MaxLiveTokens, "http-max-live-tokens", server.DefaultMaxLiveTokens,
		"Live tokens issued over HTTP (in every namespace) beyond which POST /app/token answers 507 (0: no cap); "+
			"every replica holds every token, so this bounds its memory.")
	fs.IntVar(&api.CodeLimit.Count, "code-issue-limit", server.DefaultCodeIssueLimit,
		"One-time codes (POST /app/code) one issuer may issue per subject and purpose in each --code-issue-window before 429.")
	fs.DurationVar(&api.CodeLimit.Window, "code-issue-window", server.DefaultCodeIssueWindow,
		"The window of --code-issue-limit, opened by its first code.")
	fs.BoolVar(&api.AccessLog, "http-access-log", true, "Log one line per HTTP request (never the token).")
	fs.StringVar(&c.httpAuth, "http-auth", "none", "Who may issue and clear tokens over HTTP: none (anyone) or kubernetes "+
		"(a bearer token that a TokenReview accepts and a SubjectAccessReview allows).")
	fs.BoolVar(&api.AuthValidate, "http-auth-validate", false, "With --http-auth=kubernetes, guard GET /app/valid and POST /app/redeem too.")
	fs.Float64Var(&api.FailedValidationsPerSecond, "http-failed-validation-rate", 10,
		"Failed validations a client address may make per second before 429, and failed bearer authentications "+
			"with --http-auth=kubernetes (0: no limit).")
	fs.IntVar(&api.FailedValidationsBurst, "http-failed-validation-burst", 100,
		"Failed validations (and failed bearer authentications) a client address may make at once.")
	fs.Float64Var(&api.ListsPerSecond, "http-list-rate", 10,
		"Pages of GET /app/tokens a client may ask for per second before 429 (0: no limit).")
	fs.IntVar(&api.ListBurst, "http-list-burst", 20, "Pages of GET /app/tokens a client may ask for at once.")
	fs.Func("http-cors-allowed-origins", "Comma-separated browser origins allowed to call the API (none by default).",
		func(v string) error {
			for o := range strings.SplitSeq(v, ",") {
				if o = strings.TrimSpace(o); o != "" {
					api.CORSAllowedOrigins = append(api.CORSAllowedOrigins, o)
				}
			}
			return nil
		})
	fs.StringVar(&c.auditLogPath, "audit-log-path", "", "Write one JSON line per state-changing operation (issue, rotate, "+
		"re-issue, revoke, redeem, spend, clear, expiry) to this file, or to standard output for -; off when empty.")
	fs.BoolVar(&api.AuditFailedValidations, "audit-failed-validations", false,
		"Write failed validations, redemptions and revocations to the audit log too (otherwise only metrics count them).")
	fs.Func("http-trusted-proxies", "Comma-separated CIDRs of reverse proxies (an Ingress controller, a mesh sidecar) "+
		"whose X-Forwarded-For or Forwarded header names the client, for rate limits and the audit log (none by default: "+
		"the TCP peer is the client).", func(v string) (err error) {
		api.TrustedProxies, err = server.ParseTrustedProxies(v)
		return err
	})
	fs.StringVar(&api.TLSCertFile, "http-tls-cert-file", "", "Serve the API over HTTPS with this certificate (reloaded on change).")
	fs.StringVar(&api.TLSKeyFile, "http-tls-key-file", "", "The private key of --http-tls-cert-file.")
	fs.StringVar(&c.baseline.Addr, "http-baseline-bind-address", "",
		"Benchmarks only: serve a bare handler writing a valid answer here, the ceiling of the validate path.")
}

// environment is what the environment says, as flag defaults.
type environment struct {
	// namespace is the operator's own: POD_NAMESPACE, else the service account's, else "default".
	namespace string
	// ttl is TOKEN_TTL_MINUTES, the original service's setting, else 60 minutes.
	ttl time.Duration
	// replica is POD_NAME, else the host name.
	replica string
}

// readEnvironment reads the environment; an invalid TOKEN_TTL_MINUTES is an error, and the
// defaults stand in for it until it is reported.
func readEnvironment(getenv func(string) string) (environment, error) {
	env := environment{namespace: getenv("POD_NAMESPACE"), ttl: 60 * time.Minute, replica: getenv("POD_NAME")}
	if env.replica == "" {
		env.replica, _ = os.Hostname()
	}
	if env.namespace == "" {
		env.namespace = "default"
		if b, err := os.ReadFile("/var/run/secrets/kubernetes.io/serviceaccount/namespace"); err == nil {
			if ns := strings.TrimSpace(string(b)); ns != "" {
				env.namespace = ns
			}
		}
	}
	if v := getenv("TOKEN_TTL_MINUTES"); v != "" {
		minutes, err := strconv.Atoi(v)
		if err != nil || minutes < 1 {
			return env, fmt.Errorf("TOKEN_TTL_MINUTES must be a whole number of minutes, at least 1 (got %q)", v)
		}
		env.ttl = time.Duration(minutes) * time.Minute
	}
	return env, nil
}
