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
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/go-logr/logr"
)

func TestFailureLimiter(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := newClientLimiter(1, 3)
	for i := range 3 {
		if wait := l.blocked("a", now); wait != 0 {
			t.Fatalf("failure %d blocked for %v within the burst", i, wait)
		}
		l.charge("a", now)
	}
	if wait := l.blocked("a", now); wait != time.Second {
		t.Fatalf("after the burst: wait %v, want 1s", wait)
	}
	if wait := l.blocked("b", now); wait != 0 {
		t.Fatalf("another client is blocked for %v", wait)
	}
	if wait := l.blocked("a", now.Add(time.Second)); wait != 0 {
		t.Fatalf("a second later still blocked for %v", wait)
	}
	if newClientLimiter(0, 10) != nil {
		t.Fatal("a zero rate must turn the guard off")
	}
}

// TestFailedValidationGuard drives the handler: a client that keeps presenting wrong tokens
// gets 429 with Retry-After, another client and valid tokens are unaffected.
func TestFailedValidationGuard(t *testing.T) {
	srv, stored, clock := cachedServer()
	srv.failures = newClientLimiter(1, 5)
	h := srv.Handler()
	get := func(addr, tok string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, "/app/valid/"+tok, nil)
		req.RemoteAddr = addr
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	for range 5 {
		if rec := get("10.0.0.1:5000", "wrong"); rec.Code != http.StatusOK {
			t.Fatalf("within the burst: %d", rec.Code)
		}
	}
	rec := get("10.0.0.1:5001", "wrong")
	if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") != "1" {
		t.Fatalf("over the burst: %d, Retry-After %q", rec.Code, rec.Header().Get("Retry-After"))
	}
	want := `{"status_code":429,"detail":"too many failed validations from this address; retry later"}`
	if rec.Body.String() != want {
		t.Fatalf("body %s", rec.Body.String())
	}
	if rec := get("10.0.0.2:5000", stored.String()); rec.Code != http.StatusOK || rec.Body.String() != string(answerValid) {
		t.Fatalf("another client: %d %s", rec.Code, rec.Body.String())
	}
	clock.Step(time.Second)
	if rec := get("10.0.0.1:5000", stored.String()); rec.Body.String() != string(answerValid) {
		t.Fatalf("after Retry-After: %d %s", rec.Code, rec.Body.String())
	}
}

func TestCORS(t *testing.T) {
	h := (&Server{CORSAllowedOrigins: []string{"https://app.example.com"}, Log: logr.Discard()}).withCORS(http.NotFoundHandler())
	preflight := func(origin string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodOptions, "/app/token", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", http.MethodPost)
		req.Header.Set("Access-Control-Request-Headers", "content-type")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	rec := preflight("https://app.example.com")
	if rec.Code != http.StatusNoContent || rec.Header().Get("Access-Control-Allow-Origin") != "https://app.example.com" {
		t.Fatalf("allowed origin: %d %v", rec.Code, rec.Header())
	}
	if rec.Header().Get("Access-Control-Allow-Methods") != http.MethodPost {
		t.Fatalf("Allow-Methods %q", rec.Header().Get("Access-Control-Allow-Methods"))
	}
	if rec := preflight("https://evil.example.com"); rec.Header().Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("other origin allowed: %v", rec.Header())
	}
	plain := (&Server{}).withCORS(http.NotFoundHandler())
	req := httptest.NewRequest(http.MethodGet, "/app/valid/x", nil)
	req.Header.Set("Origin", "https://app.example.com")
	rec = httptest.NewRecorder()
	plain.ServeHTTP(rec, req)
	if rec.Header().Get("Access-Control-Allow-Origin") != "" {
		t.Fatal("CORS headers without allowed origins")
	}
}
