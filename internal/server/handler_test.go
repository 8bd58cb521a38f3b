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

package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/tokenops/token-operator/internal/index"
	"github.com/tokenops/token-operator/internal/metrics"
	"github.com/tokenops/token-operator/internal/provenance"
	"github.com/tokenops/token-operator/internal/store"
	"github.com/tokenops/token-operator/internal/token"
)

type recorder struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func newRecorder() *recorder                    { return &recorder{header: http.Header{}, code: http.StatusOK} }
func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) WriteHeader(code int)        { r.code = code }
func (r *recorder) Write(b []byte) (int, error) { return r.body.Write(b) }

func mustRequest(method, target, body string) *http.Request {
	return httptest.NewRequest(method, target, strings.NewReader(body))
}

// cachedServer is a Server over a token index holding one stored HTTP token, and a fake
// client standing in for the API server.
func cachedServer() (*Server, token.Issued, *clocktesting.FakeClock) {
	stored := token.Issued{Token: token.Generate(), Lifetime: token.NewLifetime(time.Now(), time.Hour), Source: token.SourceHTTP}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: token.HTTPSecretName(stored.ID), UID: "uid"}}
	stored.ApplyTo(secret)
	// Provenance as main wires it: sealed, in --http-namespace.
	keys, err := provenance.NewKeyring(map[string][]byte{"key-1": make([]byte, provenance.MasterKeyBytes)}, "key-1", time.Now())
	if err != nil {
		panic(err)
	}
	keys.Seal(secret)
	tokens := index.New(logr.Discard())
	tokens.Trust = provenance.NewChecker(keys, "ns")
	tokens.Put(secret)
	c := fake.NewClientBuilder().WithObjects(secret).Build()
	clock := clocktesting.NewFakeClock(time.Now())
	fresh := func() (time.Duration, bool) { return time.Since(clock.Now()), false } // a view as current as a heartbeat's
	return &Server{Store: store.New(c, c, tokens, clock), Tokens: tokens, Clock: clock, Log: logr.Discard(), Staleness: fresh},
		stored, clock
}

func TestParseIssueRequest(t *testing.T) {
	const def, maxTTL = time.Hour, 24 * time.Hour
	tests := []struct {
		name string
		body string
		want time.Duration
		code int
		uses int64 // 0: no use limit
	}{
		{"empty", "", def, 0, 0},
		{"whitespace", " \n\t", def, 0, 0},
		{"empty object", "{}", def, 0, 0},
		{"null ttl", `{"ttl":null}`, def, 0, 0},
		{"15m", `{"ttl":"15m"}`, 15 * time.Minute, 0, 0},
		{"1s", `{"ttl":"1s"}`, time.Second, 0, 0},
		{"max", `{"ttl":"24h"}`, maxTTL, 0, 0},
		{"below 1s", `{"ttl":"999ms"}`, 0, 400, 0},
		{"negative", `{"ttl":"-1s"}`, 0, 400, 0},
		{"above max", `{"ttl":"24h1s"}`, 0, 400, 0},
		{"beyond int64", `{"ttl":"9999999h"}`, 0, 400, 0},
		{"negative beyond int64", `{"ttl":"-9999999h"}`, 0, 400, 0},
		{"not a duration", `{"ttl":"soon"}`, 0, 400, 0},
		{"number", `{"ttl":60}`, 0, 400, 0},
		{"unknown field", `{"ttl":"1m","x":1}`, 0, 400, 0},
		{"not JSON", "ttl=1m", 0, 400, 0},
		{"array", "[]", 0, 400, 0},
		{"string", `"1m"`, 0, 400, 0},
		{"trailing object", `{}{}`, 0, 400, 0},
		{"trailing garbage", `{} x`, 0, 400, 0},
		{"too large", strings.Repeat(" ", MaxBodyBytes+1), 0, 413, 0},
		{"just fits", `{"ttl":"1m"}` + strings.Repeat(" ", MaxBodyBytes-12), time.Minute, 0, 0},
		{"one use", `{"max_uses":1}`, def, 0, 1},
		{"uses and ttl", `{"ttl":"5m","max_uses":1000000}`, 5 * time.Minute, 0, MaxUses},
		{"null uses", `{"max_uses":null}`, def, 0, 0},
		{"zero uses", `{"max_uses":0}`, 0, 400, 0},
		{"negative uses", `{"max_uses":-1}`, 0, 400, 0},
		{"too many uses", `{"max_uses":1000001}`, 0, 400, 0},
		{"fractional uses", `{"max_uses":1.5}`, 0, 400, 0},
		{"uses as a string", `{"max_uses":"1"}`, 0, 400, 0},
		{"uses beyond int64", `{"max_uses":99999999999999999999}`, 0, 400, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseIssueRequest(strings.NewReader(tt.body), def, maxTTL)
			if tt.code == 0 {
				if err != nil || got.TTL != tt.want {
					t.Fatalf("got %v, %v; want %v", got, err, tt.want)
				}
				if uses := got.MaxUses; (uses == nil) != (tt.uses == 0) || (uses != nil && *uses != tt.uses) {
					t.Fatalf("max uses %v, want %d", uses, tt.uses)
				}
				return
			}
			var re *requestError
			if !errors.As(err, &re) || re.code != tt.code {
				t.Fatalf("got %v, %v; want status %d", got, err, tt.code)
			}
		})
	}
}

func FuzzParseIssueRequest(f *testing.F) {
	for _, s := range []string{"", "{}", `{"ttl":"15m"}`, `{"ttl":"-1s"}`, "[", `{"ttl":"1e9h"}`, "\xff", `{"max_uses":3}`, `{"max_uses":1e2}`,
		`{"subject":"user-42","purpose":"password-reset","metadata":{"ip":"203.0.113.7"}}`, `{"subject":"a\u0007"}`,
		`{"purpose":"A"}`, `{"metadata":{"k":1}}`, `{"metadata":null,"subject":null}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		req, err := ParseIssueRequest(strings.NewReader(body), time.Hour, 24*time.Hour)
		if err != nil {
			var re *requestError
			if !errors.As(err, &re) || (re.code != 400 && re.code != 413) {
				t.Fatalf("error %v is not a client error", err)
			}
			return
		}
		if req.TTL < time.Second || req.TTL > 24*time.Hour {
			t.Fatalf("accepted ttl %v out of bounds", req.TTL)
		}
		if req.MaxUses != nil && (*req.MaxUses < 1 || *req.MaxUses > MaxUses) {
			t.Fatalf("accepted max_uses %d out of bounds", *req.MaxUses)
		}
		if req.Subject != "" && checkText("subject", req.Subject) != nil {
			t.Fatalf("accepted subject %q out of bounds", req.Subject)
		}
		if req.Purpose != "" && !purposeSyntax.MatchString(req.Purpose) {
			t.Fatalf("accepted purpose %q out of syntax", req.Purpose)
		}
		if checkMetadata(req.Metadata) != nil {
			t.Fatalf("accepted metadata %v out of bounds", req.Metadata)
		}
	})
}

// FuzzValidate drives the validate and redeem paths through the whole handler: whatever the
// path, the answer is JSON with its own status code, never a 5xx, and a stored token's secret
// never shows up in it.
func FuzzValidate(f *testing.F) {
	srv, stored, _ := cachedServer()
	h := srv.Handler()
	for _, s := range []string{stored.String(), "", ":", "%00", "%ff%fe", "..%2F..%2Fetc%2Fpasswd", strings.Repeat("a", 10000),
		stored.ID + ":" + strings.Repeat("A", 26), "a/b", "%"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		for _, route := range []struct{ method, prefix string }{{http.MethodGet, "/app/valid/"}, {http.MethodPost, "/app/redeem/"}} {
			req, err := http.NewRequest(route.method, "http://x"+route.prefix+tok, nil)
			if err != nil {
				return // not a URL any client could send
			}
			rec := newRecorder()
			h.ServeHTTP(rec, req)
			if rec.code >= 500 {
				t.Fatalf("%s: status %d for %q", route.prefix, rec.code, tok)
			}
			var answer struct {
				StatusCode int `json:"status_code"`
			}
			if err := json.Unmarshal(rec.body.Bytes(), &answer); err != nil || answer.StatusCode != rec.code {
				t.Fatalf("%s: answer %q for status %d: %v", route.prefix, rec.body.String(), rec.code, err)
			}
			if rec.code == 200 && rec.body.String() == string(answerValid) && req.URL.Path != route.prefix+stored.String() {
				t.Fatalf("%s: accepted %q", route.prefix, tok)
			}
			if strings.Contains(rec.body.String(), stored.Secret) {
				t.Fatalf("%s: answer leaks the secret", route.prefix)
			}
		}
	})
}

// TestRouting: the status, Allow header and metrics route label of each kind of request,
// as the original service answered them.
func TestRouting(t *testing.T) {
	srv, stored, _ := cachedServer()
	h := srv.Handler()
	tests := []struct {
		method, target string
		code           int
		allow, route   string
	}{
		{http.MethodGet, "/app/valid/" + stored.String(), http.StatusOK, "", routeValidate},
		{http.MethodHead, "/app/valid/x", http.StatusOK, "", routeValidate},
		{http.MethodPut, "/app/valid/x", http.StatusMethodNotAllowed, "GET, HEAD, POST", routeValidate},
		{http.MethodPost, "/app/valid", http.StatusBadRequest, "", routeValidateBody},
		{http.MethodGet, "/app/valid", http.StatusMethodNotAllowed, "POST", routeValidateBody},
		{http.MethodPost, "/app/redeem", http.StatusBadRequest, "", routeRedeemBody},
		{http.MethodGet, "/app/valid/a%2Fb", http.StatusNotFound, "", routeUnknown},
		{http.MethodPut, "/app/valid/a%2Fb", http.StatusNotFound, "", routeUnknown},
		{http.MethodGet, "/app/valid/" + stored.String(), http.StatusOK, "", routeValidate}, // still routed after a %2F
		{http.MethodPut, "/app/valid/y", http.StatusMethodNotAllowed, "GET, HEAD, POST", routeValidate},
		{http.MethodGet, "/app/valid/", http.StatusNotFound, "", routeUnknown},
		{http.MethodGet, "/app/valid/a/b", http.StatusNotFound, "", routeUnknown},
		{http.MethodGet, "/app/valid/x/../y", http.StatusNotFound, "", routeUnknown},
		{http.MethodGet, "/app//valid/x", http.StatusNotFound, "", routeUnknown},
		{http.MethodGet, "/app/token", http.StatusMethodNotAllowed, "POST, DELETE", routeIssue},
		{http.MethodDelete, "/app/token", http.StatusBadRequest, "", routeIssue},
		{http.MethodGet, "/app/token/", http.StatusNotFound, "", routeUnknown},
		{http.MethodGet, "/app/token/" + stored.ID, http.StatusOK, "", routeToken},
		{http.MethodPost, "/app/token/x", http.StatusMethodNotAllowed, "DELETE, GET, HEAD", routeToken},
		{http.MethodPost, "/app/clear/all/tokens", http.StatusMethodNotAllowed, "DELETE", routeClear},
		{http.MethodGet, "/app/redeem/x", http.StatusMethodNotAllowed, "POST", routeRedeem},
		{http.MethodPost, "/openapi.json", http.StatusMethodNotAllowed, "GET, HEAD", routeOpenAPI},
		{http.MethodGet, "/app/tokenz", http.StatusNotFound, "", routeUnknown},
		{http.MethodGet, "/app/tokens?limit=0", http.StatusBadRequest, "", routeList},
		{http.MethodGet, "/app/tokens?continue=%21", http.StatusBadRequest, "", routeList},
		{http.MethodPost, "/app/tokens", http.StatusMethodNotAllowed, "GET, HEAD, DELETE", routeList},
		{http.MethodDelete, "/app/tokens", http.StatusBadRequest, "", routeList},
		{http.MethodGet, "/", http.StatusNotFound, "", routeUnknown},
		{http.MethodGet, "/docs", http.StatusOK, "", routeDocs},
		{http.MethodGet, "/redoc", http.StatusOK, "", routeRedoc},
		{http.MethodGet, "/docs/swagger-init.js", http.StatusOK, "", routeDocsAsset},
		{http.MethodGet, "/docs/LICENSE.redoc", http.StatusNotFound, "", routeDocsAsset},
		{http.MethodGet, "/docs/", http.StatusNotFound, "", routeUnknown},
		{http.MethodPost, "/docs", http.StatusMethodNotAllowed, "GET, HEAD", routeDocs},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.target, func(t *testing.T) {
			before := requestCount(t, tt.route, tt.code)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tt.method, tt.target, nil))
			if rec.Code != tt.code || rec.Header().Get("Allow") != tt.allow {
				t.Errorf("answer %d, Allow %q; want %d, %q", rec.Code, rec.Header().Get("Allow"), tt.code, tt.allow)
			}
			if rec.Code >= 400 && rec.Header().Get("Content-Type") != "application/json" {
				t.Errorf("error answered as %q: %s", rec.Header().Get("Content-Type"), rec.Body)
			}
			if got := requestCount(t, tt.route, tt.code); got != before+1 {
				t.Errorf("route %q code %d counted %d times, want 1", tt.route, tt.code, got-before)
			}
		})
	}
}

// requestCount is how many requests the duration histogram has seen for a route and code.
func requestCount(t *testing.T, route string, code int) uint64 {
	t.Helper()
	var m dto.Metric
	obs, err := metrics.RequestDuration.GetMetricWithLabelValues(route, strconv.Itoa(code))
	if err != nil {
		t.Fatal(err)
	}
	if err := obs.(prometheus.Histogram).Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetHistogram().GetSampleCount()
}

// TestDocsPages: the documentation pages load only from this server, and their assets are
// served with their types.
func TestDocsPages(t *testing.T) {
	srv, _, _ := cachedServer()
	h := srv.Handler()
	for path, want := range map[string]string{"/docs": "swagger-ui-bundle.js", "/redoc": "redoc.standalone.js"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "/docs/"+want) ||
			!strings.HasPrefix(rec.Header().Get("Content-Security-Policy"), "default-src 'self'") ||
			!strings.HasPrefix(rec.Header().Get("Content-Type"), "text/html") {
			t.Errorf("%s: %d %q %q", path, rec.Code, rec.Header().Get("Content-Type"), rec.Header().Get("Content-Security-Policy"))
		}
	}
	for file, ctype := range map[string]string{"swagger-ui.css": "text/css", "swagger-ui-bundle.js": "text/javascript",
		"redoc.standalone.js": "text/javascript"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/docs/"+file, nil))
		if rec.Code != http.StatusOK || !strings.HasPrefix(rec.Header().Get("Content-Type"), ctype) || rec.Body.Len() < 100000 {
			t.Errorf("%s: %d %q, %d bytes", file, rec.Code, rec.Header().Get("Content-Type"), rec.Body.Len())
		}
		if strings.Contains(rec.Body.String(), redocLogo) {
			t.Errorf("%s still loads %s", file, redocLogo)
		}
	}
}
