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
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	clocktesting "k8s.io/utils/clock/testing"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	tokensv1alpha1 "github.com/tokenops/token-operator/api/v1alpha1"
	"github.com/tokenops/token-operator/internal/audit"
	"github.com/tokenops/token-operator/internal/controller"
	"github.com/tokenops/token-operator/internal/index"
	"github.com/tokenops/token-operator/internal/indexsync"
	"github.com/tokenops/token-operator/internal/provenance"
	"github.com/tokenops/token-operator/internal/store"
	"github.com/tokenops/token-operator/internal/token"
)

var (
	testEnv   *envtest.Environment
	cfg       *rest.Config
	scheme    = runtime.NewScheme()
	k8sClient client.Client
	// apiURL is the HTTP API of the manager that runs the controllers too.
	apiURL string
	// httpNamespace receives the tokens issued over HTTP.
	httpNamespace string
	// serverLog captures every line the HTTP servers log, to search it for secrets.
	serverLog  = &lockedBuffer{}
	stopSuite  func()
	httpClient = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
)

func TestServer(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "HTTP API Suite")
}

var _ = BeforeSuite(func(ctx SpecContext) {
	logf.SetLogger(zap.New(zap.WriteTo(GinkgoWriter), zap.UseDevMode(true)))
	Expect(clientgoscheme.AddToScheme(scheme)).To(Succeed())
	Expect(tokensv1alpha1.AddToScheme(scheme)).To(Succeed())

	testEnv = &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join("..", "..", "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
	}
	var err error
	cfg, err = testEnv.Start()
	Expect(err).NotTo(HaveOccurred())
	k8sClient, err = client.New(cfg, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())

	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "http-"}}
	Expect(k8sClient.Create(ctx, ns)).To(Succeed())
	httpNamespace = ns.Name

	var srv *Server
	stopSuite, srv = startOperator(true, nil)
	apiURL = "http://" + srv.Listener.Addr().String()
	Eventually(srv.ReadyCheck).WithArguments((*http.Request)(nil)).Should(Succeed())
}, NodeTimeout(2*time.Minute))

var _ = AfterSuite(func() {
	if stopSuite != nil {
		stopSuite()
	}
	Expect(testEnv.Stop()).To(Succeed())
})

// startOperator runs a manager with the HTTP API on a free loopback port, and with the
// controllers when withControllers is set. configure may adjust the server before it starts.
func startOperator(withControllers bool, configure func(*Server)) (func(), *Server) {
	GinkgoHelper()
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 scheme,
		Cache:                  controller.CacheOptions(),
		Client:                 controller.ClientOptions(),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Controller:             config.Controller{SkipNameValidation: new(true)},
	})
	Expect(err).NotTo(HaveOccurred())
	tokens := index.New(GinkgoLogr)
	// Provenance as main wires it: the keys (made on the first start), the checker, the
	// TokenRequests' statuses.
	keys := &provenance.Keys{Client: mgr.GetClient(), Secret: types.NamespacedName{Namespace: httpNamespace, Name: provenance.DefaultKeySecretName},
		Evidence: provenance.Evidence(mgr.GetAPIReader(), httpNamespace), Log: GinkgoLogr}
	ring, err := keys.Load(context.Background())
	Expect(err).NotTo(HaveOccurred())
	tokens.Trust = provenance.NewChecker(ring, httpNamespace)
	syncer, err := indexsync.NewForConfig(mgr.GetConfig(), mgr.GetHTTPClient(), tokens, GinkgoLogr)
	Expect(err).NotTo(HaveOccurred())
	Expect(syncer.BindTokenRequests(context.Background(), mgr.GetCache())).To(Succeed())
	Expect(mgr.Add(syncer)).To(Succeed())
	tokenStore := store.New(mgr.GetClient(), mgr.GetAPIReader(), tokens, clock.RealClock{})
	tokenStore.UseSlices(replicaName()) // as main wires it by default
	expiry := &controller.ExpiryReconciler{Tokens: tokens, Store: tokenStore, MaxConcurrentReconciles: 4}
	if withControllers {
		Expect((&controller.TokenRequestReconciler{
			Client: mgr.GetClient(), Tokens: tokens, Store: tokenStore, APIReader: mgr.GetAPIReader(),
			Recorder: mgr.GetEventRecorder("token-operator"), MaxConcurrentReconciles: 4,
		}).SetupWithManager(mgr)).To(Succeed())
		Expect(expiry.SetupWithManager(mgr)).To(Succeed())
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	srv := &Server{
		Listener:   ln,
		Namespace:  httpNamespace,
		DefaultTTL: time.Hour,
		MaxTTL:     controller.DefaultMaxTTL,
		Tokens:     tokens,
		Store:      tokenStore,
		// As main wires it: a clear deletes with the expiry controller's concurrency.
		ClearWorkers: 32,
		AccessLog:    true,
		Log: funcr.New(func(prefix, args string) {
			serverLog.WriteString(prefix + " " + args + "\n")
		}, funcr.Options{Verbosity: 10}),
	}
	if configure != nil {
		configure(srv)
	}
	Expect(mgr.Add(srv)).To(Succeed())

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer GinkgoRecover()
		defer close(done)
		Expect(mgr.Start(ctx)).To(Succeed())
	}()
	Eventually(srv.ReadyCheck).WithArguments((*http.Request)(nil)).Should(Succeed())
	return func() {
		cancel()
		Eventually(done).WithTimeout(30 * time.Second).Should(BeClosed())
	}, srv
}

// createTokenRequest creates tr in a new namespace (set on tr) and returns its token once
// the controller has written its Secret.
func createTokenRequest(ctx context.Context, tr *tokensv1alpha1.TokenRequest) string {
	GinkgoHelper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "tr-"}}
	Expect(k8sClient.Create(ctx, ns)).To(Succeed())
	tr.Namespace = ns.Name
	Expect(k8sClient.Create(ctx, tr)).To(Succeed())
	var tok string
	Eventually(func(g Gomega) {
		s, err := secretOf(ctx, tr.Namespace, tr.SecretNameOrDefault())
		g.Expect(err).NotTo(HaveOccurred())
		tok = string(s.Data[token.DataToken])
	}).Should(Succeed())
	return tok
}

// call sends one request and returns the status code, the body and the Content-Type.
func call(base, method, path, body string) (int, string, string) {
	GinkgoHelper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, base+path, rd)
	Expect(err).NotTo(HaveOccurred())
	resp, err := httpClient.Do(req)
	Expect(err).NotTo(HaveOccurred())
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	Expect(err).NotTo(HaveOccurred())
	return resp.StatusCode, string(b), resp.Header.Get("Content-Type")
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) WriteString(s string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.WriteString(s)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// suiteKeys is the keyring the suite's operators seal with, read from its key Secret.
func suiteKeys(ctx context.Context) *provenance.Keyring {
	GinkgoHelper()
	keySecret := &corev1.Secret{}
	Expect(k8sClient.Get(ctx, types.NamespacedName{Namespace: httpNamespace, Name: provenance.DefaultKeySecretName}, keySecret)).To(Succeed())
	keys, err := provenance.KeyringOf(keySecret)
	Expect(err).NotTo(HaveOccurred())
	return keys
}

// createHTTPTokens writes n Secrets of tokens issued over HTTP into --http-namespace, 16 at a
// time, sealed as the store seals them and labelled test-batch=batch (for cleanupBatch), as
// the API server would hold them after n issues, and returns the tokens.
func createHTTPTokens(ctx context.Context, batch string, n int) []string {
	GinkgoHelper()
	keys := suiteKeys(ctx)
	live := make([]string, n)
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Go(func() {
			defer GinkgoRecover()
			for i := w; i < n; i += 16 {
				issued := token.Issued{Token: token.Generate(), Lifetime: token.NewLifetime(time.Now(), time.Hour), Source: token.SourceHTTP}
				s := token.NewHTTPSecret(httpNamespace, issued)
				s.Labels["test-batch"] = batch
				keys.Seal(s)
				Expect(k8sClient.Create(ctx, s)).To(Succeed())
				live[i] = issued.String()
			}
		})
	}
	wg.Wait()
	DeferCleanup(func(ctx SpecContext) {
		// The API server is shared: leave no batch for another spec's listing or clear.
		Expect(k8sClient.DeleteAllOf(ctx, &corev1.Secret{}, client.InNamespace(httpNamespace),
			client.MatchingLabels{"test-batch": batch})).To(Succeed())
	})
	return live
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// auditEvents reads the audit lines written so far.
func auditEvents(b *lockedBuffer) []audit.Event {
	GinkgoHelper()
	var events []audit.Event
	for line := range strings.SplitSeq(strings.TrimSpace(b.String()), "\n") {
		if line == "" {
			continue
		}
		var e audit.Event
		Expect(json.Unmarshal([]byte(line), &e)).To(Succeed(), line)
		Expect(e.Audit).To(Equal(audit.Version))
		events = append(events, e)
	}
	return events
}

// replicaName is a name of its own for each operator a spec starts, as each replica has.
func replicaName() string { return "replica-" + rand.Text() }

// startAtFakeTime starts an operator whose HTTP API reads a fake clock, as does its store's
// expiry when expire is set (otherwise the store reads the real clock, by which nothing the
// spec issues has expired, so a clear deletes nothing), configured further by configure (nil
// for nothing); it returns its stop, its base URL and the clock.
func startAtFakeTime(expire bool, configure func(*Server)) (func(), string, *clocktesting.FakeClock) {
	GinkgoHelper()
	fake := clocktesting.NewFakeClock(time.Now())
	stop, srv := startOperator(false, func(s *Server) {
		s.Clock = fake
		if expire {
			// The store's clear and expiry read the fake clock too; otherwise they read the
			// real one, by which nothing this spec issues has expired.
			s.Store = store.New(s.Store.Client, s.Store.Reader, s.Tokens, fake)
			s.Store.UseSlices(replicaName())
		}
		if configure != nil {
			configure(s)
		}
	})
	return stop, "http://" + srv.Listener.Addr().String(), fake
}
