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

package controller

import (
	"context"
	"slices"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"

	tokensv1alpha1 "github.com/tokenops/token-operator/api/v1alpha1"
	"github.com/tokenops/token-operator/internal/index"
)

// labelNamespace is the namespace label of every gauge.
const labelNamespace = "namespace"

// tokenRequestLabels name a TokenRequest in its gauges.
var tokenRequestLabels = []string{labelNamespace, "name"}

// The state gauges, computed at each scrape.
var (
	expirationDesc = prometheus.NewDesc("tokenoperator_token_expiration_timestamp_seconds",
		"When the token of a TokenRequest expires (Unix seconds), from its status.", tokenRequestLabels, nil)
	renewalDesc = prometheus.NewDesc("tokenoperator_token_renewal_timestamp_seconds",
		"When a rotating TokenRequest's token is renewed (Unix seconds), from its status.", tokenRequestLabels, nil)
	readyDesc = prometheus.NewDesc("tokenoperator_tokenrequest_ready",
		"A TokenRequest's Ready condition: 1 for its status (True, False or Unknown), 0 for the others; "+
			"reason is the condition's reason (Issued, Expired, Spent, SecretConflict, InvalidSpec, ...).",
		append(slices.Clone(tokenRequestLabels), "condition", "reason"), nil)
	httpTokensDesc = prometheus.NewDesc("tokenoperator_http_tokens",
		"Live tokens issued over HTTP, by the namespace of their Secrets (counted, not one series each).",
		[]string{labelNamespace}, nil)
	lingeringDesc = prometheus.NewDesc("tokenoperator_expired_tokens_lingering",
		"Token Secrets whose token expired more than a minute ago and that still exist, by namespace.",
		[]string{labelNamespace}, nil)
	replicaReadyDesc = prometheus.NewDesc("tokenoperator_ready",
		"1 while this replica passes its readiness checks (token index loaded, HTTP API serving), else 0.", nil, nil)
)

// LingerAfter is how long after its expiry a token Secret counts as lingering: the expiry
// controller deletes it within seconds, so a minute means deletions are failing or stuck.
const LingerAfter = time.Minute

// StateCollector exports the state of every TokenRequest, in cert-manager's shape (an
// expiration timestamp, a one-hot Ready status), and the live count of tokens issued over
// HTTP. It reads the manager's cache and the token index at each scrape, so it keeps no state
// of its own and a deleted TokenRequest's series go with it. Every replica exports it. While a
// replica starts, the HTTP count is of the token Secrets its index has listed so far.
type StateCollector struct {
	// Reader lists TokenRequests; the manager's cached client.
	Reader client.Reader
	// Tokens is the token index.
	Tokens *index.Index
	// Log receives a failed list; the scrape then has no TokenRequest series.
	Log logr.Logger
	// Ready are the replica's readiness checks, as /readyz runs them.
	Ready []healthz.Checker
	// Clock tells the time (nil: the real clock); tests set it.
	Clock clock.PassiveClock
}

// Describe sends the descriptors of the gauges.
func (c *StateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{expirationDesc, renewalDesc, readyDesc, httpTokensDesc, lingeringDesc, replicaReadyDesc} {
		ch <- d
	}
}

// Collect sends the gauges' values as they are now.
func (c *StateCollector) Collect(ch chan<- prometheus.Metric) {
	var now clock.PassiveClock = clock.RealClock{}
	if c.Clock != nil {
		now = c.Clock
	}
	ready := 1.0
	for _, check := range c.Ready {
		if check(nil) != nil {
			ready = 0
		}
	}
	ch <- prometheus.MustNewConstMetric(replicaReadyDesc, prometheus.GaugeValue, ready)
	if c.Tokens != nil {
		for ns, n := range c.Tokens.CensusByNamespace(now.Now().Add(-LingerAfter)) {
			ch <- prometheus.MustNewConstMetric(httpTokensDesc, prometheus.GaugeValue, float64(n.HTTP), ns)
			ch <- prometheus.MustNewConstMetric(lingeringDesc, prometheus.GaugeValue, float64(n.Lingering), ns)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	list := &tokensv1alpha1.TokenRequestList{}
	// Read only: the cache's own objects, not a copy of each at every scrape.
	if err := c.Reader.List(ctx, list, client.UnsafeDisableDeepCopy); err != nil {
		c.Log.Error(err, "Failed to list TokenRequests for the metrics")
		return
	}
	for i := range list.Items {
		for _, m := range stateMetrics(&list.Items[i]) {
			ch <- m
		}
	}
}

// stateMetrics are one TokenRequest's gauges.
func stateMetrics(tr *tokensv1alpha1.TokenRequest) []prometheus.Metric {
	var out []prometheus.Metric
	gauge := func(d *prometheus.Desc, t *metav1.Time) {
		if t != nil {
			out = append(out, prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(t.Unix()), tr.Namespace, tr.Name))
		}
	}
	gauge(expirationDesc, tr.Status.ExpiresAt)
	gauge(renewalDesc, tr.Status.RenewalTime)
	status, reason := metav1.ConditionUnknown, ""
	if c := meta.FindStatusCondition(tr.Status.Conditions, tokensv1alpha1.ConditionReady); c != nil {
		status, reason = c.Status, c.Reason
	}
	for _, s := range []metav1.ConditionStatus{metav1.ConditionTrue, metav1.ConditionFalse, metav1.ConditionUnknown} {
		v := 0.0
		if s == status {
			v = 1
		}
		out = append(out, prometheus.MustNewConstMetric(readyDesc, prometheus.GaugeValue, v, tr.Namespace, tr.Name, string(s), reason))
	}
	return out
}
