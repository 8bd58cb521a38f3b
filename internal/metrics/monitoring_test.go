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

package metrics_test

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/yaml"

	"github.com/tokenops/token-operator/internal/controller"
	"github.com/tokenops/token-operator/internal/metrics"
)

// The shipped monitoring: alert rules (promtool checks their syntax and behaviour; this test
// checks their names) and the Grafana dashboard.
const (
	alertsFile    = "../../config/prometheus/alerts.yaml"
	dashboardFile = "../../config/prometheus/grafana-dashboard.json"
)

// exported is every metric name the operator's own collectors export, histograms with their
// _bucket, _sum and _count series.
func exported(t *testing.T) map[string]bool {
	t.Helper()
	descs := make(chan *prometheus.Desc, 64)
	go func() {
		for _, c := range append(metrics.Collectors(), &controller.StateCollector{}) {
			c.Describe(descs)
		}
		close(descs)
	}()
	fqName := regexp.MustCompile(`fqName: "([^"]+)"`)
	names := map[string]bool{}
	for d := range descs {
		m := fqName.FindStringSubmatch(d.String())
		if m == nil {
			t.Fatalf("no name in %s", d)
		}
		names[m[1]] = true
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			names[m[1]+suffix] = true
		}
	}
	return names
}

var (
	promStrings  = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'`)
	promMatchers = regexp.MustCompile(`\{[^}]*\}|\[[^\]]*\]`)
	promGrouping = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	promNumbers  = regexp.MustCompile(`\$\w+|\b\d+(?:\.\d+)?(?:e[+-]?\d+)?(?:ms|[smhdwy])?\b`)
	promIdent    = regexp.MustCompile(`[A-Za-z_:][A-Za-z0-9_:]*`)
	promKeywords = []string{"and", "or", "unless", "bool", "offset", "inf", "nan", "by", "without", "on", "ignoring",
		"group_left", "group_right"}
)

// metricNames are the metric names a PromQL expression selects: identifiers that are not
// inside label matchers, ranges, strings or grouping lists, not functions or aggregations
// (followed by "("), and not keywords, numbers or Grafana variables.
func metricNames(expr string) []string {
	s := promStrings.ReplaceAllString(expr, `""`)
	s = promMatchers.ReplaceAllString(s, " ")
	s = promGrouping.ReplaceAllString(s, " ")
	s = promNumbers.ReplaceAllString(s, " ")
	var names []string
	for _, loc := range promIdent.FindAllStringIndex(s, -1) {
		name := s[loc[0]:loc[1]]
		if strings.HasPrefix(strings.TrimSpace(s[loc[1]:]), "(") || slices.Contains(promKeywords, strings.ToLower(name)) {
			continue
		}
		names = append(names, name)
	}
	return names
}

func TestMetricNames(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want []string
	}{
		{`up`, []string{"up"}},
		{`sum by (le, route) (rate(a_bucket{code="429", route=~"x|y"}[5m]))`, []string{"a_bucket"}},
		{`max by (namespace) (b) > 0 and on (namespace) c offset 5m`, []string{"b", "c"}},
		{`time() - max without (pod) (d) > 60`, []string{"d"}},
		{`(sum(e) or vector(0)) < 1`, []string{"e"}},
		{`histogram_quantile(0.99, sum by (le) (rate(f[$__rate_interval])))`, []string{"f"}},
		{`sum(g{reason!~"Expired|Spent"}) / sum(h) > 1e3 unless i`, []string{"g", "h", "i"}},
		{`label_replace(j, "dst", "$1", "src", "(.*)")`, []string{"j"}},
	} {
		if got := metricNames(tc.expr); !slices.Equal(got, tc.want) {
			t.Errorf("metricNames(%q) = %q, want %q", tc.expr, got, tc.want)
		}
	}
}

// TestMonitoringNamesExportedMetrics fails when an alert or a dashboard panel asks for a
// metric the operator does not export (a renamed metric, a typo).
func TestMonitoringNamesExportedMetrics(t *testing.T) {
	names := exported(t)
	check := func(where, expr string) {
		found := metricNames(expr)
		if len(found) == 0 {
			t.Errorf("%s: no metric in %q", where, expr)
		}
		for _, n := range found {
			if !names[n] {
				t.Errorf("%s: %q is not a metric the operator exports (expression %q)", where, n, expr)
			}
		}
	}

	raw, err := os.ReadFile(alertsFile)
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert string `json:"alert"`
				Expr  string `json:"expr"`
			} `json:"rules"`
		} `json:"groups"`
	}
	if err := yaml.Unmarshal(raw, &rules); err != nil {
		t.Fatal(err)
	}
	alerts := 0
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			alerts++
			check("alert "+r.Alert, r.Expr)
		}
	}
	if alerts == 0 {
		t.Errorf("%s holds no alert", alertsFile)
	}

	raw, err = os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var dashboard struct {
		Title  string `json:"title"`
		UID    string `json:"uid"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &dashboard); err != nil {
		t.Fatalf("%s is not valid JSON: %v", dashboardFile, err)
	}
	if dashboard.Title == "" || dashboard.UID == "" || len(dashboard.Panels) == 0 {
		t.Fatalf("%s has no title, uid or panels", dashboardFile)
	}
	for _, p := range dashboard.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, q := range p.Targets {
			check("panel "+p.Title, q.Expr)
		}
	}
}
