//go:build e2e

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

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/tokenops/token-operator/api/v1alpha1"
	"github.com/tokenops/token-operator/internal/token"
)

const sample = "config/samples/tokens_v1alpha1_tokenrequest.yaml"

// leader returns the replica that holds the Lease, and the other one.
func leader() (*replica, *replica) {
	GinkgoHelper()
	var l, other *replica
	Eventually(func() bool {
		a, b := replicas[0].isLeader(), replicas[1].isLeader()
		switch {
		case a && !b:
			l, other = replicas[0], replicas[1]
		case b && !a:
			l, other = replicas[1], replicas[0]
		default:
			return false
		}
		return true
	}).WithTimeout(60 * time.Second).Should(BeTrue())
	return l, other
}

var _ = Describe("token-operator, as users run it", Ordered, func() {
	It("issues a sample TokenRequest that both replicas validate, and the garbage collector removes it", func(ctx SpecContext) {
		ns := newNamespace(ctx)
		mustKubectl("apply", "-n", ns, "-f", sample)
		mustKubectl("wait", "-n", ns, "--for=condition=Ready", "tokenrequest/password-reset", "--timeout=60s")
		tok := secretToken(ns, "password-reset-token")
		Expect(token.Parse(tok)).Error().NotTo(HaveOccurred())
		for _, r := range replicas {
			Eventually(validate).WithArguments(r, tok).Should(Equal(answerTrue), r.name)
		}
		out := mustKubectl("get", "tokenrequests", "-n", ns)
		Expect(out).To(MatchRegexp(`password-reset\s+True\s+Issued\s+password-reset-token`))

		mustKubectl("delete", "tokenrequest", "password-reset", "-n", ns)
		Eventually(func() string {
			out, _ := kubectl("get", "secret", "password-reset-token", "-n", ns)
			return out
		}).WithTimeout(30 * time.Second).Should(ContainSubstring("NotFound"))
		for _, r := range replicas {
			Eventually(validate).WithArguments(r, tok).Should(Equal(answerFalse), r.name)
		}
	})

	It("validates on replica B a token issued over HTTP on replica A within 1s", func() {
		tok := issue(replicas[0], "")
		issued := time.Now()
		Eventually(validate).WithArguments(replicas[1], tok).WithTimeout(time.Second).WithPolling(10 * time.Millisecond).
			Should(Equal(answerTrue))
		AddReportEntry("HTTP token visible on the other replica after", time.Since(issued).String())
	})

	It("fails over while 300 TokenRequests are applied: one token each, none re-issued", func(ctx SpecContext) {
		const n = 300
		ns := newNamespace(ctx)
		old, survivor := leader()

		By("watching every write to the namespace's Secrets")
		w, err := k8sClient.Watch(ctx, &corev1.SecretList{}, client.InNamespace(ns))
		Expect(err).NotTo(HaveOccurred())
		defer w.Stop()
		var mu sync.Mutex
		tokensSeen := map[string]map[string]bool{}
		go func() {
			defer GinkgoRecover()
			for ev := range w.ResultChan() {
				if s, ok := ev.Object.(*corev1.Secret); ok && ev.Type != watch.Deleted {
					mu.Lock()
					if tokensSeen[s.Name] == nil {
						tokensSeen[s.Name] = map[string]bool{}
					}
					tokensSeen[s.Name][string(s.Data[token.DataToken])] = true
					mu.Unlock()
				}
			}
		}()

		By("validating on the survivor throughout")
		probe := issue(survivor, "")
		var answers, failures atomic.Int64
		stopProbe := make(chan struct{})
		probeDone := make(chan struct{})
		go func() {
			defer close(probeDone)
			for {
				select {
				case <-stopProbe:
					return
				case <-time.After(20 * time.Millisecond):
				}
				answer, err := validate(survivor, probe)
				answers.Add(1)
				if err != nil || answer != answerTrue {
					failures.Add(1)
				}
			}
		}()

		By("applying 300 TokenRequests")
		var manifest strings.Builder
		for i := range n {
			fmt.Fprintf(&manifest, "---\napiVersion: tokens.tokenops.io/v1alpha1\nkind: TokenRequest\nmetadata:\n  name: load-%03d\nspec:\n  ttl: 1h\n", i)
		}
		file := filepath.Join(workDir, ns+".yaml")
		Expect(os.WriteFile(file, []byte(manifest.String()), 0o644)).To(Succeed())
		applied := make(chan error, 1)
		go func() {
			_, err := kubectl("apply", "-n", ns, "-f", file)
			applied <- err
		}()

		readyTokens := func() map[string]string {
			list := &tokensv1alpha1.TokenRequestList{}
			Expect(k8sClient.List(ctx, list, client.InNamespace(ns))).To(Succeed())
			ready := map[string]string{}
			for _, tr := range list.Items {
				if meta.IsStatusConditionTrue(tr.Status.Conditions, tokensv1alpha1.ConditionReady) {
					ready[tr.Name] = tr.Status.TokenID
				}
			}
			return ready
		}
		Eventually(func() int { return len(readyTokens()) }).WithTimeout(2 * time.Minute).
			WithPolling(50 * time.Millisecond).Should(BeNumerically(">=", 30))

		By("killing the leader, " + old.name)
		lease := &coordinationv1.Lease{}
		leaseKey := client.ObjectKey{Namespace: "default", Name: "token-operator.tokenops.io"}
		Expect(k8sClient.Get(ctx, leaseKey, lease)).To(Succeed())
		holder := *lease.Spec.HolderIdentity
		before := readyTokens()
		killed := time.Now()
		old.kill()

		Eventually(func() string {
			Expect(k8sClient.Get(ctx, leaseKey, lease)).To(Succeed())
			return *lease.Spec.HolderIdentity
		}).WithTimeout(time.Minute).WithPolling(100 * time.Millisecond).ShouldNot(Equal(holder))
		moved := time.Since(killed)
		Expect(survivor.isLeader()).To(BeTrue())
		Expect(<-applied).To(Succeed())

		var after map[string]string
		Eventually(func() int {
			after = readyTokens()
			return len(after)
		}).WithTimeout(3 * time.Minute).WithPolling(250 * time.Millisecond).Should(Equal(n))
		close(stopProbe)
		<-probeDone

		summary := fmt.Sprintf("Lease moved %s after SIGKILL of %s; TokenRequests Ready before the kill: %d, after: %d of %d; "+
			"survivor answered %d validations, %d failed", moved.Round(time.Millisecond), old.name, len(before), len(after), n,
			answers.Load(), failures.Load())
		AddReportEntry("failover", summary)
		_, _ = fmt.Fprintln(GinkgoWriter, summary)

		By("checking one Secret and one token per TokenRequest, none re-issued")
		for name, id := range before {
			Expect(after[name]).To(Equal(id), "token of %s changed across the failover", name)
		}
		for name, id := range after {
			s := &corev1.Secret{}
			Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, s)).To(Succeed())
			Expect(string(s.Data[token.DataToken])).To(HavePrefix(id + ":"))
		}
		mu.Lock()
		Expect(tokensSeen).To(HaveLen(n))
		Expect(tokensSeen).To(HaveEach(HaveLen(1)))
		mu.Unlock()
		events := &eventsv1.EventList{}
		Expect(k8sClient.List(ctx, events, client.InNamespace(ns))).To(Succeed())
		for _, e := range events.Items {
			Expect(e.Reason).NotTo(Equal("TokenReissued"))
		}
		Expect(failures.Load()).To(BeZero())
		Expect(answers.Load()).To(BeNumerically(">", 10))

		By("restarting the killed replica")
		old.start()
		old.waitReady()
	})

	It("keeps every token across a restart of both replicas", func(ctx SpecContext) {
		ns := newNamespace(ctx)
		var tokens []string
		for range 5 {
			tokens = append(tokens, issue(replicas[0], `{"ttl":"30m"}`))
		}
		mustKubectl("apply", "-n", ns, "-f", sample)
		mustKubectl("wait", "-n", ns, "--for=condition=Ready", "tokenrequest/password-reset", "--timeout=60s")
		tokens = append(tokens, secretToken(ns, "password-reset-token"))
		versions := map[string]string{}
		for _, tok := range tokens {
			Eventually(validate).WithArguments(replicas[1], tok).Should(Equal(answerTrue))
			s := secretFor(ctx, tok)
			versions[s.Namespace+"/"+s.Name] = s.ResourceVersion
		}

		for _, r := range replicas {
			r.stop()
		}
		for _, r := range replicas {
			r.start()
		}
		for _, r := range replicas {
			r.waitReady()
		}
		for _, r := range replicas {
			for _, tok := range tokens {
				Expect(validate(r, tok)).To(Equal(answerTrue), "%s after restart", r.name)
			}
		}
		Consistently(func(g Gomega) {
			for _, tok := range tokens {
				s := secretFor(ctx, tok)
				g.Expect(s.ResourceVersion).To(Equal(versions[s.Namespace+"/"+s.Name]))
			}
		}).WithTimeout(3 * time.Second).Should(Succeed())
	})

	It("accepts Pods that mount the token Secret or read it through secretKeyRef", func(ctx SpecContext) {
		ns := newNamespace(ctx)
		mustKubectl("apply", "-n", ns, "-f", sample)
		mustKubectl("apply", "-n", ns, "-f", "config/samples/pod_token_volume.yaml")
		mustKubectl("apply", "-n", ns, "-f", "config/samples/pod_token_env.yaml")
		pods := &corev1.PodList{}
		Expect(k8sClient.List(ctx, pods, client.InNamespace(ns))).To(Succeed())
		Expect(pods.Items).To(HaveLen(2))
	})

	It("renders config/default, which the API server accepts in a server-side dry run", func() {
		_, _ = kubectl("create", "namespace", "token-operator-system")
		DeferCleanup(func() { _, _ = kubectl("delete", "namespace", "token-operator-system", "--wait=false") })
		rendered := mustKubectl("kustomize", "config/default")
		file := filepath.Join(workDir, "default.yaml")
		Expect(os.WriteFile(file, []byte(rendered), 0o644)).To(Succeed())
		out := mustKubectl("apply", "--dry-run=server", "-f", file)
		for _, kind := range []string{"customresourcedefinition", "deployment.apps", "service/", "clusterrole",
			"poddisruptionbudget", "networkpolicy", "serviceaccount"} {
			Expect(out).To(ContainSubstring(kind))
		}
	})
})

// secretFor finds the Secret that holds tok.
func secretFor(ctx SpecContext, tok string) *corev1.Secret {
	GinkgoHelper()
	parsed, err := token.Parse(tok)
	Expect(err).NotTo(HaveOccurred())
	list := &corev1.SecretList{}
	Expect(k8sClient.List(ctx, list, client.MatchingLabels{token.LabelTokenID: parsed.ID})).To(Succeed())
	Expect(list.Items).To(HaveLen(1))
	return &list.Items[0]
}
