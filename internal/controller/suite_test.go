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
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	tokensv1alpha1 "github.com/tokenops/token-operator/api/v1alpha1"
	"github.com/tokenops/token-operator/internal/index"
	"github.com/tokenops/token-operator/internal/indexsync"
	"github.com/tokenops/token-operator/internal/store"
	"github.com/tokenops/token-operator/test/utils"
)

var (
	testEnv *envtest.Environment
	cfg     *rest.Config
	scheme  = runtime.NewScheme()
	// k8sClient reads and writes around any cache: what the specs assert is what the API
	// server holds.
	k8sClient client.WithWatch
	// stopManager stops the manager the specs run against; specs that restart it replace it.
	stopManager func()
)

func TestControllers(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Controller Suite")
}

var _ = BeforeSuite(func() {
	logf.SetLogger(zap.New(zap.WriteTo(GinkgoWriter), zap.UseDevMode(true)))
	Expect(clientgoscheme.AddToScheme(scheme)).To(Succeed())
	Expect(tokensv1alpha1.AddToScheme(scheme)).To(Succeed())

	By("bootstrapping test environment")
	testEnv = &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join("..", "..", "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
	}
	var err error
	cfg, err = testEnv.Start()
	Expect(err).NotTo(HaveOccurred())
	k8sClient, err = client.NewWithWatch(cfg, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())

	stopManager = startManager(newManager())
})

var _ = AfterSuite(func() {
	if stopManager != nil {
		stopManager()
	}
	By("tearing down the test environment")
	Expect(testEnv.Stop()).To(Succeed())
})

// newManager builds a manager wired as cmd/main.go wires it, without leader election or
// servers, so that several can run side by side.
func newManager() manager.Manager {
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 scheme,
		Cache:                  CacheOptions(),
		Client:                 ClientOptions(),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Controller:             config.Controller{SkipNameValidation: new(true)},
	})
	Expect(err).NotTo(HaveOccurred())
	tokens := index.New(GinkgoLogr.WithName("token-index"))
	syncer, err := indexsync.NewForConfig(mgr.GetConfig(), mgr.GetHTTPClient(), tokens, GinkgoLogr.WithName("token-index"))
	Expect(err).NotTo(HaveOccurred())
	Expect(mgr.Add(syncer)).To(Succeed())
	tokenStore := store.New(mgr.GetClient(), mgr.GetAPIReader(), tokens, nil)
	Expect((&TokenRequestReconciler{
		Client:                  mgr.GetClient(),
		Tokens:                  tokens,
		Store:                   tokenStore,
		APIReader:               mgr.GetAPIReader(),
		Recorder:                mgr.GetEventRecorder("token-operator"),
		MaxTTL:                  DefaultMaxTTL,
		MinRestartInterval:      specRestartInterval,
		MaxConcurrentReconciles: 4,
	}).SetupWithManager(mgr)).To(Succeed())
	Expect((&ExpiryReconciler{Tokens: tokens, Store: tokenStore, MaxConcurrentReconciles: 4}).SetupWithManager(mgr)).To(Succeed())
	return mgr
}

// startManager runs mgr until the returned function is called; that function waits until
// the manager has stopped.
func startManager(mgr manager.Manager) func() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer GinkgoRecover()
		defer close(done)
		Expect(mgr.Start(ctx)).To(Succeed())
	}()
	return func() {
		cancel()
		Eventually(done).WithTimeout(30 * time.Second).Should(BeClosed())
	}
}

// startIndex runs a token index of its own until the spec ends, and returns it once complete.
func startIndex(ctx context.Context) *index.Index {
	GinkgoHelper()
	tokens := index.New(GinkgoLogr.WithName("token-index"))
	syncer, err := indexsync.NewForConfig(cfg, nil, tokens, GinkgoLogr.WithName("token-index"))
	Expect(err).NotTo(HaveOccurred())
	ctx, cancel := context.WithCancel(ctx)
	DeferCleanup(cancel)
	go func() {
		defer GinkgoRecover()
		Expect(syncer.Start(ctx)).To(Succeed())
	}()
	Expect(tokens.WaitForSync(ctx)).To(BeTrue())
	return tokens
}

// newNamespace creates a namespace for one spec.
func newNamespace(ctx context.Context) string {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "spec-"}}
	Expect(k8sClient.Create(ctx, ns)).To(Succeed())
	return ns.Name
}

// getSecret returns the named Secret as the API server holds it.
func getSecret(ctx context.Context, ns, name string) func(Gomega) *corev1.Secret {
	return func(g Gomega) *corev1.Secret {
		s := &corev1.Secret{}
		g.Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, s)).To(Succeed())
		return s
	}
}

// eventReasons lists the reasons of the events about a TokenRequest.
func eventReasons(ctx context.Context, tr *tokensv1alpha1.TokenRequest) func(Gomega) []string {
	return func(g Gomega) []string {
		list := &eventsv1.EventList{}
		g.Expect(k8sClient.List(ctx, list, client.InNamespace(tr.Namespace))).To(Succeed())
		var reasons []string
		for _, e := range list.Items {
			if e.Regarding.UID == tr.UID {
				reasons = append(reasons, e.Reason)
			}
		}
		return reasons
	}
}

// tokensSeen records every token value each Secret of ns holds until the spec ends (see
// utils.TokenHistory).
func tokensSeen(ctx context.Context, ns string) func() map[string]map[string]bool {
	h, err := utils.WatchTokens(ctx, k8sClient, ns)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(h.Stop)
	return h.Seen
}
