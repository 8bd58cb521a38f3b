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

// Package server is the /app HTTP API: the original Token Management Service's three
// endpoints and the ones added since (revoke, lookup, redeem), answered from the token index
// and written through the API server. It runs on every replica.
package server

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"path"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/rs/cors"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/certwatcher"

	"github.com/tokenops/token-operator/internal/audit"
	"github.com/tokenops/token-operator/internal/index"
	"github.com/tokenops/token-operator/internal/metrics"
	"github.com/tokenops/token-operator/internal/otp"
	"github.com/tokenops/token-operator/internal/store"
)

// Server serves the /app API. It implements manager.Runnable and runs on every replica.
type Server struct {
	// Addr is the address to listen on, such as ":8000"; ignored when Listener is set.
	Addr string
	// Listener, when set, is used instead of listening on Addr.
	Listener net.Listener
	// Namespace receives the Secrets of tokens issued over HTTP.
	Namespace string
	// DefaultTTL applies to a POST /app/token without a ttl; MaxTTL bounds the ttl asked for.
	DefaultTTL, MaxTTL time.Duration
	// Tokens is the token index every answer is read from; the server serves once it is
	// complete, and indexes the tokens it issues as soon as they are stored.
	Tokens *index.Index
	// Store writes every token Secret: issues, revocations, redemptions, clears.
	Store *store.Store
	// Clock tells the time; tests move it.
	Clock clock.PassiveClock
	// Staleness, if set, says how old this replica's view of the token Secrets is and whether
	// that is older than --max-staleness: validation, redemption and lookup then answer 503.
	Staleness func() (age time.Duration, stale bool)
	// Log receives one line per request, and never a token's secret.
	Log logr.Logger
	// AccessLog turns the per-request log line on.
	AccessLog bool
	// WriteTimeout bounds the API writes of an issue, a revocation or a redemption.
	WriteTimeout time.Duration
	// Auth, when set, guards issuing and clearing (and validating, with AuthValidate) with
	// TokenReview and SubjectAccessReview.
	Auth *KubernetesAuth
	// AuthValidate puts GET /app/valid and POST /app/redeem behind Auth too.
	AuthValidate bool
	// FailedValidationsPerSecond and FailedValidationsBurst limit failed validations per
	// client address (429 beyond); zero turns the guard off.
	FailedValidationsPerSecond float64
	FailedValidationsBurst     int
	// ListsPerSecond and ListBurst limit the GET /app/tokens pages a client may ask for (429
	// beyond); zero turns the limit off.
	ListsPerSecond float64
	ListBurst      int
	// IssuesPerSecond and IssueBurst limit the tokens each client may issue (429 beyond);
	// zero turns the limit off.
	IssuesPerSecond float64
	IssueBurst      int
	// CodeLimit is the issuing limit of one-time codes per issuer, subject and purpose.
	CodeLimit otp.Limit
	// MaxLiveTokens caps the live tokens issued over HTTP, in every namespace the index
	// holds (507 at the cap); zero: no cap.
	MaxLiveTokens int
	// TrustedProxies are the reverse proxies whose X-Forwarded-For or Forwarded header names
	// the client (see ClientAddress); none by default: the TCP peer is the client.
	TrustedProxies []netip.Prefix
	// CORSAllowedOrigins are the browser origins allowed to call the API; none by default.
	CORSAllowedOrigins []string
	// TLSCertFile and TLSKeyFile, when set, serve HTTPS, reloading the pair when the files
	// change (a cert-manager Secret mounted into the pod).
	TLSCertFile, TLSKeyFile string

	// Audit receives one line per state-changing operation (nil: no audit log).
	Audit *audit.Log
	// AuditFailedValidations writes failed validations, redemptions and revocations to the
	// audit log too; otherwise only metrics count them.
	AuditFailedValidations bool
	// ClearWorkers bounds the deletes one clear has in flight (default 1).
	ClearWorkers int

	failures, clears *clientLimiter
	// authFailures limits failed bearer authentications per client address, at the rate of
	// failed validations; lists limits the listing's pages.
	authFailures, lists *clientLimiter
	// issues limits POST /app/token per client; issuing counts the issues in flight.
	issues  *clientLimiter
	issuing atomic.Int64
	// clearing runs one clear at a time.
	clearing sync.Mutex

	serving atomic.Bool
}

// NeedLeaderElection is false: every replica serves the API.
func (s *Server) NeedLeaderElection() bool { return false }

// ReadyCheck is a healthz.Checker: ready once the token index is complete and the API listens.
func (s *Server) ReadyCheck(*http.Request) error {
	if !s.serving.Load() {
		return errors.New("the HTTP API is not serving yet")
	}
	return nil
}

// Start serves the API until ctx ends, then drains in-flight requests.
func (s *Server) Start(ctx context.Context) error {
	if s.Clock == nil {
		s.Clock = clock.RealClock{}
	}
	if s.WriteTimeout <= 0 {
		s.WriteTimeout = 5 * time.Second
	}

	s.failures = newClientLimiter(s.FailedValidationsPerSecond, s.FailedValidationsBurst)
	if s.failures != nil {
		s.clears = newClientLimiter(clearsPerSecond, clearBurst)
	}
	s.authFailures = newClientLimiter(s.FailedValidationsPerSecond, s.FailedValidationsBurst)
	s.lists = newClientLimiter(s.ListsPerSecond, s.ListBurst)
	s.issues = newClientLimiter(s.IssuesPerSecond, s.IssueBurst)
	var certs *certwatcher.CertWatcher
	if s.TLSCertFile != "" || s.TLSKeyFile != "" {
		var err error
		if certs, err = certwatcher.New(s.TLSCertFile, s.TLSKeyFile); err != nil {
			return fmt.Errorf("loading the TLS certificate: %w", err)
		}
		go func() {
			if err := certs.Start(ctx); err != nil {
				s.Log.Error(err, "Stopped watching the TLS certificate")
			}
		}()
	}
	if !s.Tokens.WaitForSync(ctx) {
		return nil // stopped before the token index was complete
	}
	ln := s.Listener
	if ln == nil {
		var err error
		if ln, err = (&net.ListenConfig{}).Listen(ctx, "tcp", s.Addr); err != nil {
			return err
		}
	}
	srv := &http.Server{
		Handler:           s.withCORS(s.Handler()),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      s.WriteTimeout + 10*time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
	if certs != nil {
		srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: certs.GetCertificate}
		ln = tls.NewListener(ln, srv.TLSConfig)
	}
	errCh := make(chan error, 1)
	go func() { errCh <- srv.Serve(ln) }()
	s.serving.Store(true)
	s.Log.Info("Serving the HTTP API", "address", ln.Addr().String(), "namespace", s.Namespace)

	select {
	case err := <-errCh:
		s.serving.Store(false)
		return err
	case <-ctx.Done():
	}
	s.serving.Store(false)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s.Log.Info("Shutting down the HTTP API")
	return srv.Shutdown(shutdownCtx)
}

// withCORS answers browsers' preflight requests and adds CORS headers for the allowed
// origins, through rs/cors; without allowed origins it adds nothing.
func (s *Server) withCORS(h http.Handler) http.Handler {
	if len(s.CORSAllowedOrigins) == 0 {
		return h
	}
	return cors.New(cors.Options{
		AllowedOrigins: s.CORSAllowedOrigins,
		AllowedMethods: []string{http.MethodGet, http.MethodPost, http.MethodDelete},
		AllowedHeaders: []string{"Content-Type", "Authorization"},
		MaxAge:         600,
	}).Handler(h)
}

// Route templates: what logs and metrics name a request by, never its path.
const (
	routeIssue    = "/app/token"
	routeValidate = "/app/valid/{token}"
	// routeValidateBody validates the token in the body, as does POST on routeValidate.
	routeValidateBody = "/app/valid"
	routeClear        = "/app/clear/all/tokens"
	routeOpenAPI      = "/openapi.json"
	routeUnknown      = "unmatched"
)

// Handler routes the API with http.ServeMux patterns. Two rules keep the original service's
// answers: a path that is not in canonical form (dot segments, a doubled or trailing slash)
// answers 404, where ServeMux would redirect; and a token segment that holds a slash (sent
// as %2F) is no token and answers 404. Every other unknown path answers 404, and a known
// path asked with another method 405 naming the allowed ones; both in JSON.
//
// A route that takes a token takes it in the path, as the original service did, or in a JSON
// body ({"token":"..."}), which keeps it out of URLs and so out of logs.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	validate := func(from func(tokenHandler) http.HandlerFunc) http.HandlerFunc {
		return s.guard(accessValidate, from(s.validate), s.AuthValidate)
	}
	redeem := func(from func(tokenHandler) http.HandlerFunc) http.HandlerFunc {
		return s.guard(accessRedeem, from(s.redeem), s.AuthValidate)
	}
	revoke := func(from func(tokenHandler) http.HandlerFunc) http.HandlerFunc {
		return s.guard(accessToken, from(s.revoke), true)
	}
	lookup := s.guard(accessToken, fromPath(func(w http.ResponseWriter, _ *http.Request, p presentation) { s.lookup(w, p.Token) }), true)
	s.handle(mux, routeIssue, on(http.MethodPost, s.guard(access{path: routeIssue}, s.issue, true)),
		on(http.MethodDelete, revoke(fromBody)))
	s.handle(mux, routeToken, on(http.MethodDelete, revoke(fromPath)), on(http.MethodGet, lookup))
	s.handle(mux, routeValidateBody, on(http.MethodPost, validate(fromBody)))
	s.handle(mux, routeValidate, on(http.MethodGet, validate(fromPath)), on(http.MethodPost, validate(fromBody)))
	s.handle(mux, routeRedeemBody, on(http.MethodPost, redeem(fromBody)))
	s.handle(mux, routeRedeem, on(http.MethodPost, redeem(fromPath)))
	s.handle(mux, routeIntrospect, on(http.MethodPost, s.guard(accessIntrospect, s.introspect, true)))
	s.handle(mux, routeCode, on(http.MethodPost, s.guard(access{path: routeCode}, s.issueCode, true)))
	s.handle(mux, routeCodeVerify, on(http.MethodPost, s.guard(access{path: routeCodeVerify}, s.verifyCode, true)))
	s.handle(mux, routeClear, on(http.MethodDelete, s.guard(access{path: routeClear}, s.clear, true)))
	s.handle(mux, routeList, on(http.MethodGet, s.guard(access{path: routeList}, s.list, true)),
		on(http.MethodDelete, s.guard(access{path: routeList}, s.revokeSubject, true)))
	// Forward auth answers a proxy's subrequest, whose method is the original request's:
	// every method, never behind --http-auth (the Authorization header is the token checked).
	s.handle(mux, routeAuth, on(http.MethodGet, s.forwardAuth), on(http.MethodPost, s.forwardAuth), on(http.MethodPut, s.forwardAuth),
		on(http.MethodPatch, s.forwardAuth), on(http.MethodDelete, s.forwardAuth), on(http.MethodOptions, s.forwardAuth))
	s.handle(mux, routeOpenAPI, on(http.MethodGet, serveOpenAPI))
	s.handle(mux, routeDocs, on(http.MethodGet, servePage("swagger.html")))
	s.handle(mux, routeRedoc, on(http.MethodGet, servePage("redoc.html")))
	s.handle(mux, routeDocsAsset, on(http.MethodGet, serveDocsAsset))
	unknown := s.measure(routeUnknown, notFound)
	mux.Handle("/", unknown)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p := r.URL.Path; p == "" || path.Clean(p) != p {
			unknown.ServeHTTP(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// endpoint is one method of a route and its handler.
type endpoint struct {
	method  string
	handler http.HandlerFunc
}

func on(method string, h http.HandlerFunc) endpoint { return endpoint{method: method, handler: h} }

// handle registers each endpoint of route (GET answers HEAD too, as ServeMux does), and a 405
// naming their methods for any other method.
func (s *Server) handle(mux *http.ServeMux, route string, endpoints ...endpoint) {
	var allow []string
	for _, e := range endpoints {
		allow = append(allow, e.method)
		if e.method == http.MethodGet {
			allow = append(allow, http.MethodHead)
		}
	}
	unknown := s.measure(routeUnknown, notFound)
	oneSegment := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.Contains(r.PathValue("token"), "/") {
				unknown.ServeHTTP(w, r)
				return
			}
			h.ServeHTTP(w, r)
		})
	}
	for _, e := range endpoints {
		mux.Handle(e.method+" "+route, oneSegment(s.measure(route, e.handler)))
	}
	mux.Handle(route, oneSegment(s.measure(route, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		writeError(w, http.StatusMethodNotAllowed, "Method Not Allowed")
	})))
}

// measure logs and measures each request h answers by its route.
func (s *Server) measure(route string, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
		id := setRequestID(w, r)
		h(rec, r)
		elapsed := time.Since(start)
		metrics.RequestDuration.WithLabelValues(route, strconv.Itoa(rec.code)).Observe(elapsed.Seconds())
		if s.AccessLog {
			s.Log.Info("Handled request", "method", r.Method, "route", route, "status", rec.code, "duration", elapsed,
				"requestID", id)
		}
	})
}

func notFound(w http.ResponseWriter, _ *http.Request) {
	writeError(w, http.StatusNotFound, "Not Found")
}

type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.code = code
	r.ResponseWriter.WriteHeader(code)
}

// Answers are written as the original service wrote them: compact JSON, no trailing newline.
var (
	answerValid   = []byte(`{"status_code":200,"status":true}`)
	answerInvalid = []byte(`{"status_code":200,"status":false}`)
)

func writeBody(w http.ResponseWriter, code int, body []byte) {
	h := w.Header()
	h["Content-Type"] = []string{"application/json"}
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	w.WriteHeader(code)
	_, _ = w.Write(body)
}

// writeError answers {"status_code":N,"detail":"..."}.
func writeError(w http.ResponseWriter, code int, detail string) {
	writeBody(w, code, fmt.Appendf(nil, `{"status_code":%d,"detail":%s}`, code, quote(detail)))
}

// quote encodes s as a JSON string.
func quote(s string) []byte {
	b, _ := json.Marshal(s) // a string always marshals
	return b
}
