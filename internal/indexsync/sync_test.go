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

package indexsync

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/go-logr/logr"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/tokenops/token-operator/internal/index"
	"github.com/tokenops/token-operator/internal/token"
)

var (
	cfg       *rest.Config
	clientset *kubernetes.Clientset
	testEnv   *envtest.Environment
)

func TestIndexSync(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Index Sync Suite")
}

var _ = BeforeSuite(func() {
	testEnv = &envtest.Environment{}
	var err error
	cfg, err = testEnv.Start()
	Expect(err).NotTo(HaveOccurred())
	clientset, err = kubernetes.NewForConfig(cfg)
	Expect(err).NotTo(HaveOccurred())
})

var _ = AfterSuite(func() {
	Expect(testEnv.Stop()).To(Succeed())
})

// newNamespace creates a namespace for one spec.
func newNamespace(ctx context.Context) string {
	ns, err := clientset.CoreV1().Namespaces().Create(ctx,
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "sync-"}}, metav1.CreateOptions{})
	Expect(err).NotTo(HaveOccurred())
	return ns.Name
}

// createToken stores an HTTP token's Secret as the API server would hold it, and returns its token.
func createToken(ctx context.Context, ns, name string) token.Token {
	issued := token.Issued{Token: token.Generate(), Lifetime: token.NewLifetime(time.Now(), time.Hour), Source: token.SourceHTTP}
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	issued.ApplyTo(s)
	_, err := clientset.CoreV1().Secrets(ns).Create(ctx, s, metav1.CreateOptions{})
	Expect(err).NotTo(HaveOccurred())
	return issued.Token
}

func found(x *index.Index, tok token.Token) func() string {
	return func() string {
		id, _ := token.ParseID(tok.ID)
		rec, _ := x.Find(id, token.DigestOf(tok.String()))
		if rec == nil {
			return ""
		}
		return rec.Name
	}
}

// start runs a syncer for the spec's index until the spec ends.
func start(ctx context.Context, pageSize int64) (*Syncer, context.CancelFunc, chan error) {
	s, err := NewForConfig(cfg, nil, index.New(GinkgoLogr), GinkgoLogr)
	Expect(err).NotTo(HaveOccurred())
	s.PageSize = pageSize
	ctx, cancel := context.WithCancel(ctx)
	DeferCleanup(cancel)
	done := make(chan error, 1)
	go func() { done <- s.Start(ctx) }()
	return s, cancel, done
}

var _ = Describe("The index syncer", func() {
	It("lists every token Secret page by page, and only token Secrets, before it is ready", func(ctx SpecContext) {
		ns := newNamespace(ctx)
		var tokens []token.Token
		for i := range 7 {
			tokens = append(tokens, createToken(ctx, ns, fmt.Sprintf("token-%d", i)))
		}
		By("a Secret with our label but another type, and one of our type without the label")
		for _, s := range []*corev1.Secret{
			{ObjectMeta: metav1.ObjectMeta{Name: "labelled", Labels: map[string]string{token.LabelManagedBy: token.ManagedBy}}},
			{ObjectMeta: metav1.ObjectMeta{Name: "typed"}, Type: token.SecretType},
		} {
			_, err := clientset.CoreV1().Secrets(ns).Create(ctx, s, metav1.CreateOptions{})
			Expect(err).NotTo(HaveOccurred())
		}

		unstarted := &Syncer{Index: index.New(logr.Discard())}
		Expect(unstarted.ReadyCheck(nil)).To(MatchError("the token index is still loading (0 Secrets listed so far)"))
		s, _, _ := start(ctx, 2)
		Eventually(s.ReadyCheck).WithArguments((*http.Request)(nil)).Should(Succeed())
		Expect(s.Index.Synced()).To(BeTrue())
		for i, tok := range tokens {
			Expect(found(s.Index, tok)()).To(Equal(fmt.Sprintf("token-%d", i)))
		}
		inNamespace := 0
		for _, r := range s.Index.Records() {
			if r.Namespace == ns {
				inNamespace++
			}
		}
		Expect(inNamespace).To(Equal(7), "the labelled Secret of another type and the unlabelled one are not listed")
	})

	It("follows creations, edits and deletions after the list, and stops with its context", func(ctx SpecContext) {
		ns := newNamespace(ctx)
		s, stop, done := start(ctx, 0)
		Eventually(s.ReadyCheck).WithArguments((*http.Request)(nil)).Should(Succeed())

		first := createToken(ctx, ns, "watched")
		Eventually(found(s.Index, first)).Should(Equal("watched"))

		By("a new token written into the same Secret")
		live, err := clientset.CoreV1().Secrets(ns).Get(ctx, "watched", metav1.GetOptions{})
		Expect(err).NotTo(HaveOccurred())
		next := token.Issued{Token: token.Generate(), Lifetime: token.NewLifetime(time.Now(), time.Hour), Source: token.SourceHTTP}
		next.ApplyTo(live)
		_, err = clientset.CoreV1().Secrets(ns).Update(ctx, live, metav1.UpdateOptions{})
		Expect(err).NotTo(HaveOccurred())
		Eventually(found(s.Index, next.Token)).Should(Equal("watched"))
		Expect(found(s.Index, first)()).To(BeEmpty())

		By("deleting it")
		Expect(clientset.CoreV1().Secrets(ns).Delete(ctx, "watched", metav1.DeleteOptions{})).To(Succeed())
		Eventually(found(s.Index, next.Token)).Should(BeEmpty())
		_, err = clientset.CoreV1().Secrets(ns).Get(ctx, "watched", metav1.GetOptions{})
		Expect(apierrors.IsNotFound(err)).To(BeTrue())

		By("stopping")
		stop()
		Eventually(done).Should(Receive(BeNil()))
	})
})
