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

// Package metrics holds the operator's Prometheus collectors, registered on
// controller-runtime's registry and served on its metrics endpoint.
package metrics

import (
	"math"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// labelResult is the label of an outcome.
const labelResult = "result"

var (
	// TokensIssued counts tokens written into Secrets, by what issued them.
	TokensIssued = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tokenoperator_tokens_issued_total",
		Help: "Tokens written into Secrets, by source (tokenrequest, http).",
	}, []string{"source"})

	// IssuesRefused counts POST /app/token answers refused by an issuing limit, by reason:
	// client_limit (429, the client's rate) or live_token_cap (507, --http-max-live-tokens).
	IssuesRefused = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tokenoperator_http_issues_refused_total",
		Help: "POST /app/token and POST /app/code refused by an issuing limit, by reason (client_limit, live_token_cap, code_limit).",
	}, []string{"reason"})

	// CodesIssued counts one-time codes issued over HTTP.
	CodesIssued = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "tokenoperator_codes_issued_total",
		Help: "One-time codes issued over HTTP (POST /app/code).",
	})

	// CodeVerifications counts POST /app/code/verify answers by result: valid, wrong (an
	// attempt spent), dead (no live code).
	CodeVerifications = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tokenoperator_code_verifications_total",
		Help: "One-time code verifications over HTTP, by result (valid, wrong, dead).",
	}, []string{labelResult})

	// CodesSwept counts the Secrets of dead one-time codes deleted.
	CodesSwept = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "tokenoperator_codes_swept_total",
		Help: "Secrets of one-time codes deleted once expired and out of their issuing window.",
	})

	// ExpiredDeleted counts tokens deleted because they expired: a token Secret, or each token
	// of a token slice deleted whole.
	ExpiredDeleted = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "tokenoperator_expired_deleted_total",
		Help: "Tokens deleted because they expired (a token Secret, or each token of a token slice deleted whole).",
	})

	// Validations counts GET /app/valid answers by result: valid, unknown, expired, spent,
	// malformed.
	Validations = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tokenoperator_validations_total",
		Help: "Token validations and introspections over HTTP, by result (valid, unknown, expired, spent, malformed, wrong_purpose, stale, limited).",
	}, []string{labelResult})

	// Redemptions counts POST /app/redeem answers by result: valid (a use spent, or a token
	// without a use limit), unknown, expired, spent, malformed.
	Redemptions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tokenoperator_redemptions_total",
		Help: "Token redemptions over HTTP, by result (valid, unknown, expired, spent, malformed, wrong_purpose, stale).",
	}, []string{labelResult})

	// WorkloadRestarts counts restarts of spec.rotation.restartTargets workloads, by kind and
	// result: restarted, failed (each attempt), deferred (each new wait for
	// --min-restart-interval), skipped (a selected workload that needs no restart, once).
	WorkloadRestarts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tokenoperator_workload_restarts_total",
		Help: "Restarts of workloads named by spec.rotation.restartTargets after a new token, by kind and result (restarted, failed, deferred, skipped).",
	}, []string{"kind", labelResult})

	// UntrustedSecrets counts token Secrets (by our type and label) that the token index
	// refused: not written by the operator as they are (a forged, copied or edited Secret). One
	// per refused version of a Secret; by namespace only, never a name.
	UntrustedSecrets = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tokenoperator_untrusted_secrets_total",
		Help: "Token Secrets the token index refused (unsealed, seal not verifying, HTTP token outside --http-namespace), by namespace.",
	}, []string{"namespace"})

	// KeySecretMissing is 1 while the key Secret that seals token Secrets cannot be found.
	KeySecretMissing = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "tokenoperator_key_secret_missing",
		Help: "1 while the key Secret that seals token Secrets is missing (the running replicas keep the keys they read; a restarted replica refuses to start).",
	})

	// IndexStaleness is how old this replica's view of the token Secrets is: the time since
	// the newest heartbeat it wrote came back through its watch (package indexsync), read at
	// each scrape (MeasureStaleness), so that it is as current as the answers it explains.
	IndexStaleness = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "tokenoperator_index_staleness_seconds",
		Help: "How old this replica's view of the token Secrets is: the time since the newest heartbeat it wrote came back through its watch (+Inf before the first).",
	}, func() float64 {
		if f := stalenessOf.Load(); f != nil {
			return (*f)()
		}
		return math.Inf(1)
	})

	// RequestDuration observes HTTP API requests by route template and status code.
	RequestDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "tokenoperator_http_request_duration_seconds",
		Help:    "Duration of HTTP API requests, by route template and status code.",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
	}, []string{"route", "code"})
)

// stalenessOf is what IndexStaleness reads, nil until MeasureStaleness.
var stalenessOf atomic.Pointer[func() float64]

// MeasureStaleness makes IndexStaleness read the view's age, in seconds, from f at each scrape.
func MeasureStaleness(f func() float64) { stalenessOf.Store(&f) }

// Collectors are this package's metrics, as init registers them on controller-runtime's registry.
func Collectors() []prometheus.Collector {
	return []prometheus.Collector{TokensIssued, IssuesRefused, CodesIssued, CodeVerifications, CodesSwept, ExpiredDeleted, Validations, Redemptions, WorkloadRestarts, RequestDuration,
		UntrustedSecrets, KeySecretMissing, IndexStaleness}
}

func init() {
	metrics.Registry.MustRegister(Collectors()...)
}
