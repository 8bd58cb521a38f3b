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
	"context"
	"flag"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestMain runs main itself when asked to, so that a test can run the binary as a user does.
func TestMain(m *testing.M) {
	if os.Getenv("TOKEN_OPERATOR_RUN_MAIN") == "1" {
		os.Args = append([]string{"manager"}, strings.Fields(os.Getenv("TOKEN_OPERATOR_ARGS"))...)
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// invalidConfigs are bad flag and environment values, each with what its message must name.
var invalidConfigs = []struct {
	args  string
	env   string // NAME=value
	names string
}{
	{"", "TOKEN_TTL_MINUTES=abc", "TOKEN_TTL_MINUTES"},
	{"", "TOKEN_TTL_MINUTES=0", "TOKEN_TTL_MINUTES"},
	{"--default-ttl=1h", "TOKEN_TTL_MINUTES=-5", "TOKEN_TTL_MINUTES"},
	{"--max-ttl=banana", "", "-max-ttl"},
	{"--max-ttl=0s", "", "--max-ttl"},
	{"--default-ttl=500ms", "", "--default-ttl"},
	{"--default-ttl=2h --max-ttl=1h", "", "--default-ttl"},
	{"--http-auth=bogus", "", "--http-auth"},
	{"--http-failed-validation-rate=-1", "", "--http-failed-validation-rate"},
	{"--http-failed-validation-burst=0", "", "--http-failed-validation-burst"},
	{"--http-list-rate=-1", "", "--http-list-rate"},
	{"--http-list-burst=0", "", "--http-list-burst"},
	{"--default-ttl=25h", "", "--http-max-ttl (24h0m0s)"},
	{"", "TOKEN_TTL_MINUTES=1441", "--http-max-ttl"},
	{"--default-ttl=2h --http-max-ttl=1h", "", "--default-ttl must lie between 1s and --http-max-ttl (1h0m0s)"},
	{"--http-max-ttl=-1s", "", "--http-max-ttl"},
	{"--http-max-ttl=10ms", "", "--http-max-ttl"},
	{"--http-issue-rate=-1", "", "--http-issue-rate"},
	{"--http-issue-burst=0", "", "--http-issue-burst"},
	{"--http-max-live-tokens=-1", "", "--http-max-live-tokens"},
	{"--http-max-live-tokens=lots", "", "-http-max-live-tokens"},
	{"--http-tls-cert-file=/tmp/tls.crt", "", "--http-tls-key-file"},
	{"--tokenrequest-workers=0", "", "--tokenrequest-workers"},
	{"--min-restart-interval=-1m", "", "--min-restart-interval"},
	{"--min-restart-interval=soon", "", "-min-restart-interval"},
	{"--expiry-workers=-3", "", "--expiry-workers"},
	{"--expiry-workers=many", "", "-expiry-workers"},
	{"--kube-api-qps=-1", "", "--kube-api-qps"},
	{"--kube-api-burst=-1", "", "--kube-api-burst"},
	{"--leader-election-retry-period=0s", "", "--leader-election-retry-period"},
	{"--leader-election-renew-deadline=20s", "", "--leader-election-lease-duration"},
	{"--leader-election-renew-deadline=1s", "", "--leader-election-renew-deadline"},
	{"--http-access-log=maybe", "", "-http-access-log"},
	{"--zap-log-level=loud", "", "-zap-log-level"},
	{"--no-such-flag", "", "-no-such-flag"},
	{"--audit-log-path=/nonexistent/dir/audit.log", "", "--audit-log-path"},
	{"--http-trusted-proxies=10.0.0.0/33", "", "-http-trusted-proxies"},
	{"--http-trusted-proxies=proxy.example.com", "", "-http-trusted-proxies"},
}

func TestParseConfigRefusesInvalidValues(t *testing.T) {
	for _, tt := range invalidConfigs {
		t.Run(tt.args+" "+tt.env, func(t *testing.T) {
			fs := flag.NewFlagSet("manager", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			_, err := parseConfig(fs, strings.Fields(tt.args), getenv(tt.env))
			if err == nil || !strings.Contains(err.Error(), tt.names) {
				t.Fatalf("error = %v, want one naming %s", err, tt.names)
			}
		})
	}
}

func TestParseConfigDefaults(t *testing.T) {
	fs := flag.NewFlagSet("manager", flag.ContinueOnError)
	c, err := parseConfig(fs, nil, getenv("TOKEN_TTL_MINUTES=15"))
	if err != nil {
		t.Fatal(err)
	}
	if c.api.DefaultTTL != 15*time.Minute || c.api.MaxTTL != 24*time.Hour || c.tokenRequest.MaxTTL != 8760*time.Hour ||
		c.expiry.MaxConcurrentReconciles != 32 {
		t.Errorf("config = default ttl %s, max ttl %s/%s, expiry workers %d", c.api.DefaultTTL, c.api.MaxTTL,
			c.tokenRequest.MaxTTL, c.expiry.MaxConcurrentReconciles)
	}
	if c.tokenRequest.MinRestartInterval != time.Minute {
		t.Errorf("--min-restart-interval defaults to %s, want 1m", c.tokenRequest.MinRestartInterval)
	}
	if c.api.IssuesPerSecond != 10 || c.api.IssueBurst != 100 || c.api.MaxLiveTokens != 1000000 {
		t.Errorf("issuing limits = %v/s, burst %d, %d live tokens", c.api.IssuesPerSecond, c.api.IssueBurst, c.api.MaxLiveTokens)
	}
}

// TestHTTPMaxTTL: HTTP tokens are bounded by --http-max-ttl within --max-ttl, and by --max-ttl
// alone when --http-max-ttl is 0.
func TestHTTPMaxTTL(t *testing.T) {
	tests := []struct {
		args string
		want time.Duration
	}{
		{"", 24 * time.Hour},
		{"--http-max-ttl=1h", time.Hour},
		{"--http-max-ttl=0", 8760 * time.Hour},
		{"--http-max-ttl=0 --max-ttl=2h", 2 * time.Hour},
		{"--max-ttl=2h", 2 * time.Hour},
		{"--http-max-ttl=48h --default-ttl=30h", 48 * time.Hour},
	}
	for _, tt := range tests {
		fs := flag.NewFlagSet("manager", flag.ContinueOnError)
		c, err := parseConfig(fs, strings.Fields(tt.args), getenv(""))
		if err != nil {
			t.Errorf("%s: %v", tt.args, err)
		} else if c.api.MaxTTL != tt.want {
			t.Errorf("%s: max ttl %s, want %s", tt.args, c.api.MaxTTL, tt.want)
		}
	}
}

// TestBinaryExitsOnInvalidValues runs the binary (this test binary running main) with each
// invalid value: it exits non-zero before reaching any cluster, and says which flag or
// variable is wrong on stderr.
func TestBinaryExitsOnInvalidValues(t *testing.T) {
	for _, tt := range invalidConfigs {
		t.Run(tt.args+" "+tt.env, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), "TOKEN_OPERATOR_RUN_MAIN=1", "TOKEN_OPERATOR_ARGS="+tt.args,
				"KUBECONFIG=/nonexistent", "KUBERNETES_SERVICE_HOST=", tt.env)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			err := cmd.Run()
			exit, ok := err.(*exec.ExitError)
			if !ok || exit.ExitCode() == 0 {
				t.Fatalf("run = %v, want a non-zero exit", err)
			}
			if !strings.Contains(stderr.String(), tt.names) {
				t.Errorf("stderr does not name %s:\n%s", tt.names, stderr.String())
			}
		})
	}
}

// getenv reads one NAME=value pair, and nothing else.
func getenv(pair string) func(string) string {
	name, value, _ := strings.Cut(pair, "=")
	return func(key string) string {
		if key == name && pair != "" {
			return value
		}
		return ""
	}
}
