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
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/tokenops/token-operator/api/v1alpha1"
	"github.com/tokenops/token-operator/internal/audit"
	"github.com/tokenops/token-operator/internal/token"
	"github.com/tokenops/token-operator/test/utils"
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

		By("showing no plaintext of the token in kubectl get secret of its slice")
		parsed, err := token.Parse(tok)
		Expect(err).NotTo(HaveOccurred())
		slice, _, err := sliceOf(context.Background(), tok)
		Expect(err).NotTo(HaveOccurred())
		out := mustKubectl("get", "secret", "-n", "default", slice.Name, "-o", "yaml")
		Expect(out).To(ContainSubstring(parsed.ID+":"), "its record, under its id")
		Expect(out).To(ContainSubstring("type: " + string(token.SliceSecretType)))
		Expect(out).NotTo(ContainSubstring(parsed.Secret))
		Expect(out).NotTo(ContainSubstring(base64.StdEncoding.EncodeToString([]byte(tok))))
		Expect(out).NotTo(ContainSubstring(base64.StdEncoding.EncodeToString([]byte(parsed.Secret))))
	})

	It("fails over while 300 TokenRequests are applied: one token each, none re-issued", func(ctx SpecContext) {
		const n = 300
		ns := newNamespace(ctx)
		old, survivor := leader()

		By("watching every write to the namespace's Secrets")
		seen := secretTokensSeen(ctx, ns)

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
		leaseKey := client.ObjectKey{Namespace: operatorNamespace, Name: "token-operator.tokenops.io"}
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
		// The Lease is written before the survivor logs that it acquired it.
		Eventually(survivor.isLeader).Should(BeTrue())
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
			remember(string(s.Data[token.DataToken]))
		}
		Expect(seen()).To(HaveLen(n))
		Expect(seen()).To(HaveEach(HaveLen(1)))
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

	It("rotates a TokenRequest's token once, across a failover, and both replicas honour the overlap", func(ctx SpecContext) {
		ns := newNamespace(ctx)
		old, survivor := leader()
		seen := secretTokensSeen(ctx, ns)

		// Renewed 18s after issue; the old token validates 12s more; the next renewal is 18s
		// after the first.
		manifest := "apiVersion: tokens.tokenops.io/v1alpha1\nkind: TokenRequest\nmetadata:\n  name: rotating\n" +
			"spec:\n  ttl: 30s\n  rotation:\n    renewBefore: 12s\n"
		file := filepath.Join(workDir, ns+"-rotating.yaml")
		Expect(os.WriteFile(file, []byte(manifest), 0o644)).To(Succeed())
		mustKubectl("apply", "-n", ns, "-f", file)
		mustKubectl("wait", "-n", ns, "--for=condition=Ready", "tokenrequest/rotating", "--timeout=60s")
		first := secretToken(ns, "rotating")
		tr := &tokensv1alpha1.TokenRequest{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "rotating"}, tr)).To(Succeed())
		Expect(tr.Status.RenewalTime).NotTo(BeNil())
		renewal, firstExpiry := tr.Status.RenewalTime.Time, tr.Status.ExpiresAt.Time
		Expect(mustKubectl("get", "tokenrequest", "rotating", "-n", ns)).To(
			ContainSubstring(renewal.UTC().Format(time.RFC3339)), "the Renews column")

		By("killing the leader, " + old.name + ", before the renewal time")
		Expect(time.Until(renewal)).To(BeNumerically(">", 5*time.Second))
		old.kill()

		By("waiting for the survivor to rotate")
		var second string
		Eventually(func(g Gomega) {
			s := &corev1.Secret{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "rotating"}, s)).To(Succeed())
			g.Expect(string(s.Data[token.DataPreviousToken])).To(Equal(first))
			second = string(s.Data[token.DataToken])
		}).WithTimeout(time.Until(renewal) + 30*time.Second).WithPolling(100 * time.Millisecond).Should(Succeed())
		rotatedAfter := time.Since(renewal)
		remember(second)
		// The Lease is written before the survivor logs that it acquired it.
		Eventually(survivor.isLeader).Should(BeTrue())

		By("restarting the killed replica, which must not rotate again")
		old.start()
		old.waitReady()

		By("validating both tokens on both replicas during the overlap")
		Expect(time.Until(firstExpiry)).To(BeNumerically(">", time.Second), "the overlap is still ahead")
		for _, r := range replicas {
			Eventually(validate).WithArguments(r, second).Should(Equal(answerTrue), r.name)
			Expect(validate(r, first)).To(Equal(answerTrue), r.name)
		}

		By("validating only the new token after the old one's expiry")
		for _, r := range replicas {
			Eventually(validate).WithArguments(r, first).WithTimeout(time.Until(firstExpiry)+time.Second).
				Should(Equal(answerFalse), r.name)
			Expect(validate(r, second)).To(Equal(answerTrue), r.name)
		}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "rotating"}, tr)).To(Succeed())
		Expect(tr.Status.Revision).To(BeEquivalentTo(2))
		Expect(seen()["rotating"]).To(HaveLen(2), "one rotation in the window, whatever the failover")
		AddReportEntry("rotation", fmt.Sprintf("rotated %s after the renewal time, across a SIGKILL of the leader",
			rotatedAfter.Round(time.Millisecond)))
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

	It("validates from its view for at most --max-staleness while kube-apiserver is stopped, then answers 503; answers POST with 503 within 5s; and resumes", func() {
		old, survivor := leader()
		tok := issue(survivor, "")
		limited := issue(survivor, `{"max_uses":2}`)
		for _, r := range replicas {
			Eventually(validate).WithArguments(r, tok).Should(Equal(answerTrue))
			Eventually(validate).WithArguments(r, limited).Should(Equal(answerTrue))
		}
		goroutinesBefore := survivor.metric("go_goroutines")

		By("stopping kube-apiserver (SIGSTOP: it accepts nothing and answers nothing)")
		pid, err := cluster.APIServerPID()
		Expect(err).NotTo(HaveOccurred())
		Expect(syscall.Kill(pid, syscall.SIGSTOP)).To(Succeed())
		resumed := false
		resume := func() {
			if !resumed {
				resumed = true
				Expect(syscall.Kill(pid, syscall.SIGCONT)).To(Succeed())
			}
		}
		DeferCleanup(resume)

		for range 10 {
			Expect(validate(survivor, tok)).To(Equal(answerTrue))
		}
		type outcome struct {
			code int
			took time.Duration
		}
		outcomes := make([]outcome, 25)
		var wg sync.WaitGroup
		for i := range outcomes {
			path := "/app/token"
			if i >= 20 {
				path = "/app/redeem/" + limited // a use cannot be spent without the API server
			}
			wg.Go(func() {
				start := time.Now()
				resp, err := httpClient.Post(survivor.url()+path, "application/json", nil)
				if err == nil {
					_ = resp.Body.Close()
					outcomes[i] = outcome{resp.StatusCode, time.Since(start)}
				}
			})
		}
		wg.Wait()
		var slowest time.Duration
		for _, o := range outcomes {
			Expect(o.code).To(Equal(http.StatusServiceUnavailable))
			slowest = max(slowest, o.took)
		}
		Expect(slowest).To(BeNumerically("<", 6*time.Second))
		Expect(validate(survivor, tok)).To(Equal(answerTrue), "validation answers from the view while it is fresh enough")
		goroutinesDuring := survivor.metric("go_goroutines")
		Expect(goroutinesDuring).To(BeNumerically("<", goroutinesBefore+40), "no goroutine piles up per refused POST")
		AddReportEntry("apiserver outage", fmt.Sprintf("20 issues and 5 redeems answered 503, slowest after %s; goroutines %v before, %v during",
			slowest.Round(time.Millisecond), goroutinesBefore, goroutinesDuring))

		By("past --max-staleness (30s by default), validation answers 503: the replica cannot know")
		Eventually(status).WithArguments(survivor.url() + "/app/valid/" + tok).WithTimeout(45 * time.Second).
			WithPolling(500 * time.Millisecond).Should(Equal(http.StatusServiceUnavailable))

		By("resuming kube-apiserver: issuing works again without a restart, nothing is lost")
		resume()
		Eventually(func() (int, error) {
			resp, err := httpClient.Post(survivor.url()+"/app/token", "application/json", nil)
			if err != nil {
				return 0, err
			}
			_ = resp.Body.Close()
			return resp.StatusCode, nil
		}).WithTimeout(time.Minute).WithPolling(500 * time.Millisecond).Should(Equal(http.StatusOK))
		Eventually(validate).WithArguments(survivor, tok).WithTimeout(15*time.Second).Should(Equal(answerTrue), "current again: its heartbeat came back")
		Expect(survivor.running()).To(BeTrue(), "the replica that did not lead needed no restart")
		Expect(redeem(survivor, limited)).To(Equal(answerTrue), "no use was lost to the outage")
		Expect(redeem(survivor, limited)).To(Equal(answerTrue))
		Expect(redeem(survivor, limited)).To(Equal(answerFalse))

		By("restarting the old leader, which exits when it cannot renew its Lease, as its Deployment would")
		// The outage (over 5 s) outlasted the 4 s renew deadline: controller-runtime stops a
		// manager that loses its Lease, and the process exits.
		Eventually(old.running).WithTimeout(15 * time.Second).Should(BeFalse())
		old.start()
		old.waitReady()
		Eventually(validate).WithArguments(old, tok).Should(Equal(answerTrue))
		leader()
	})

	It("holds 1000 concurrent connections validating for 30s without an error", func() {
		tok := issue(replicas[0], "")
		Eventually(validate).WithArguments(replicas[1], tok).Should(Equal(answerTrue))
		target := replicas[1].url() + "/app/valid/" + tok
		tr := &http.Transport{MaxIdleConnsPerHost: 1000, MaxConnsPerHost: 1000}
		defer tr.CloseIdleConnections()
		client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
		var (
			mu        sync.Mutex
			latencies []time.Duration
			failures  int
			wg        sync.WaitGroup
		)
		deadline := time.Now().Add(30 * time.Second)
		for range 1000 {
			wg.Go(func() {
				var mine []time.Duration
				bad := 0
				for time.Now().Before(deadline) {
					start := time.Now()
					resp, err := client.Get(target)
					if err != nil {
						bad++
						continue
					}
					b, err := io.ReadAll(resp.Body)
					_ = resp.Body.Close()
					mine = append(mine, time.Since(start))
					if err != nil || resp.StatusCode != http.StatusOK || string(b) != answerTrue {
						bad++
					}
				}
				mu.Lock()
				latencies = append(latencies, mine...)
				failures += bad
				mu.Unlock()
			})
		}
		wg.Wait()
		slices.Sort(latencies)
		p99 := latencies[len(latencies)*99/100]
		AddReportEntry("held load", fmt.Sprintf("1000 connections, 30s: %d validations (%.0f/s), %d errors, p50 %s, p99 %s",
			len(latencies), float64(len(latencies))/30, failures, latencies[len(latencies)/2].Round(time.Microsecond),
			p99.Round(time.Microsecond)))
		Expect(failures).To(BeZero())
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

	It("leaves exactly one audit line per state-changing operation, on the replica that did it", func(ctx SpecContext) {
		ns := newNamespace(ctx)
		a, b := replicas[0], replicas[1]
		idOf := func(tok string) string { return strings.SplitN(tok, ":", 2)[0] }

		By("issuing, redeeming and revoking over HTTP, on both replicas")
		limited := issue(a, `{"max_uses":2}`)
		Eventually(validate).WithArguments(b, limited).Should(Equal(answerTrue), "b's watch has it")
		Expect(redeem(b, limited)).To(Equal(answerTrue))
		Expect(call(a, http.MethodDelete, "/app/token", `{"token":"`+limited+`"}`, "")).To(Equal(answerTrue))
		short := issue(b, `{"ttl":"2s"}`)
		// Its slice is deleted whole at the end of its expiry window, within 30s of its expiry.
		Eventually(func() error { _, _, err := sliceOf(ctx, short); return err }).
			WithTimeout(time.Minute).Should(MatchError(ContainSubstring("not found")), "expired and deleted")
		Expect(call(b, http.MethodDelete, "/app/clear/all/tokens", "", "e2e-audit-clear")).To(Equal(answerTrue))

		By("issuing, re-issuing, rotating and spending TokenRequests' tokens")
		mustKubectl("apply", "-n", ns, "-f", sample)
		mustKubectl("wait", "-n", ns, "--for=condition=Ready", "tokenrequest/password-reset", "--timeout=60s")
		first := secretToken(ns, "password-reset-token")
		mustKubectl("delete", "secret", "password-reset-token", "-n", ns)
		var second string
		Eventually(func() string {
			second, _ = kubectl("get", "secret", "password-reset-token", "-n", ns, "-o", "name")
			return second
		}).
			Should(ContainSubstring("password-reset-token"))
		second = secretToken(ns, "password-reset-token")
		mustKubectl("annotate", "tokenrequest", "password-reset", "-n", ns, tokensv1alpha1.AnnotationRotate+"=audit")
		Eventually(func() string { return secretToken(ns, "password-reset-token") }).ShouldNot(Equal(second))
		third := secretToken(ns, "password-reset-token")
		mustKubectl("apply", "-n", ns, "-f", "config/samples/tokens_v1alpha1_tokenrequest_onetime.yaml")
		mustKubectl("wait", "-n", ns, "--for=condition=Ready", "tokenrequest/email-confirmation", "--timeout=60s")
		once := secretToken(ns, "email-confirmation")
		Eventually(validate).WithArguments(a, once).Should(Equal(answerTrue))
		Expect(redeem(a, once)).To(Equal(answerTrue))
		Eventually(func() error {
			return k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "email-confirmation"}, &corev1.Secret{})
		}).
			WithTimeout(10*time.Second).Should(MatchError(ContainSubstring("not found")), "spent and deleted")

		want := map[string]int{
			audit.OpIssue + " " + idOf(limited): 1, audit.OpRedeem + " " + idOf(limited): 1, audit.OpRevoke + " " + idOf(limited): 1,
			audit.OpIssue + " " + idOf(short): 1, audit.OpExpire + " " + idOf(short): 1,
			audit.OpIssue + " " + idOf(first): 1, audit.OpReissue + " " + idOf(second): 1, audit.OpRotate + " " + idOf(third): 1,
			audit.OpIssue + " " + idOf(once): 1, audit.OpRedeem + " " + idOf(once): 1, audit.OpSpend + " " + idOf(once): 1,
			audit.OpClear + " e2e-audit-clear": 1,
		}
		Eventually(func(g Gomega) {
			got := map[string]int{}
			for _, e := range auditEvents(g) {
				key := e.Operation + " " + e.TokenID
				if e.Operation == audit.OpClear {
					key = e.Operation + " " + e.RequestID
				}
				if _, ours := want[key]; ours {
					got[key]++
					g.Expect(e.Outcome).To(Equal(audit.Success), key)
					g.Expect(e.User).To(BeElementOf("system:anonymous", audit.Actor), key)
				}
			}
			g.Expect(got).To(Equal(want))
		}).WithTimeout(10 * time.Second).Should(Succeed())
	})

	It("has one audit line for the birth of every token the suite saw (or its adoption after a crash)", func() {
		seenTokensMu.Lock()
		tokens := slices.Clone(seenTokens)
		seenTokensMu.Unlock()
		born, adopted := map[string]int{}, map[string]int{}
		for _, e := range auditEvents(Default) {
			switch {
			case e.Outcome != audit.Success:
			case e.Operation == audit.OpAdopt:
				adopted[e.TokenID]++
			case slices.Contains([]string{audit.OpIssue, audit.OpReissue, audit.OpReplace, audit.OpRotate}, e.Operation):
				born[e.TokenID]++
			}
		}
		ids := map[string]bool{}
		for _, tok := range tokens {
			id, _, _ := strings.Cut(tok, ":")
			ids[id] = true
		}
		Expect(len(ids)).To(BeNumerically(">", 20))
		orphans := 0
		for id := range ids {
			Expect(born[id]).To(BeNumerically("<=", 1), "token %s was born twice", id)
			if born[id] == 0 {
				Expect(adopted[id]).To(BeNumerically(">=", 1), "token %s has neither an issue nor an adopt line", id)
				orphans++
			}
		}
		AddReportEntry("audit", fmt.Sprintf("%d tokens seen by the suite: each has one issue line, but %d issued by a killed "+
			"leader and known only by the survivor's adopt line", len(ids), orphans))
	})

	It("never writes a token's secret in a log line, an event or a metric", func(ctx SpecContext) {
		seenTokensMu.Lock()
		tokens := slices.Clone(seenTokens)
		seenTokensMu.Unlock()
		secrets := &corev1.SecretList{}
		Expect(k8sClient.List(ctx, secrets, client.MatchingLabels{token.LabelManagedBy: token.ManagedBy})).To(Succeed())
		for _, s := range secrets.Items {
			if tok, ok := s.Data[token.DataToken]; ok { // a TokenRequest's token (HTTP tokens: digests only)
				tokens = append(tokens, string(tok))
			}
		}
		Expect(len(tokens)).To(BeNumerically(">", 300))
		var output strings.Builder
		logs, err := filepath.Glob(filepath.Join(workDir, "replica-*.log"))
		Expect(err).NotTo(HaveOccurred())
		for _, l := range logs {
			b, err := os.ReadFile(l)
			Expect(err).NotTo(HaveOccurred())
			output.Write(b)
		}
		events := &eventsv1.EventList{}
		Expect(k8sClient.List(ctx, events)).To(Succeed())
		for _, e := range events.Items {
			output.WriteString(e.Note + "\n")
		}
		for _, r := range replicas {
			resp, err := httpClient.Get("http://" + r.metricsAddr + "/metrics")
			Expect(err).NotTo(HaveOccurred())
			b, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			output.Write(b)
		}
		all := output.String()
		Expect(len(all)).To(BeNumerically(">", 10000))
		for _, tok := range tokens {
			parsed, err := token.Parse(tok)
			Expect(err).NotTo(HaveOccurred())
			Expect(all).NotTo(ContainSubstring(parsed.Secret))
		}
		AddReportEntry("secrets in output", fmt.Sprintf("%d tokens searched for in %d bytes of logs, events and metrics: none found",
			len(tokens), len(all)))
	})

	It("renders config/default, which the API server accepts in a server-side dry run", func() {
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
func secretFor(ctx context.Context, tok string) *corev1.Secret {
	GinkgoHelper()
	parsed, err := token.Parse(tok)
	Expect(err).NotTo(HaveOccurred())
	list := &corev1.SecretList{}
	Expect(k8sClient.List(ctx, list, client.MatchingLabels{token.LabelTokenID: parsed.ID})).To(Succeed())
	if len(list.Items) == 0 { // a token issued over HTTP: in a slice
		s, _, err := sliceOf(ctx, tok)
		Expect(err).NotTo(HaveOccurred())
		return s
	}
	Expect(list.Items).To(HaveLen(1))
	return &list.Items[0]
}

// secretTokensSeen records every token value each Secret of ns holds until the spec ends (see
// utils.TokenHistory).
func secretTokensSeen(ctx SpecContext, ns string) func() map[string]map[string]bool {
	GinkgoHelper()
	h, err := utils.WatchTokens(ctx, k8sClient, ns)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(h.Stop)
	return h.Seen
}

// auditEvents reads the audit lines every replica has written to its standard output.
func auditEvents(g Gomega) []audit.Event {
	logs, err := filepath.Glob(filepath.Join(workDir, "replica-*.log"))
	g.Expect(err).NotTo(HaveOccurred())
	var events []audit.Event
	for _, l := range logs {
		b, err := os.ReadFile(l)
		g.Expect(err).NotTo(HaveOccurred())
		for line := range strings.SplitSeq(string(b), "\n") {
			if !strings.Contains(line, `"audit":"`+audit.Version+`"`) {
				continue
			}
			var e audit.Event
			g.Expect(json.Unmarshal([]byte(line), &e)).To(Succeed(), line)
			events = append(events, e)
		}
	}
	return events
}

// sliceOf is the token slice that holds the HTTP token tok and its record (the replicas run
// with --http-namespace=default and the shipped layout); a NotFound error when none does.
func sliceOf(ctx context.Context, tok string) (*corev1.Secret, token.SliceRecord, error) {
	id, _, _ := strings.Cut(tok, ":")
	list := &corev1.SecretList{}
	if err := k8sClient.List(ctx, list, client.InNamespace("default"), client.MatchingLabels{token.LabelManagedBy: token.ManagedBy}); err != nil {
		return nil, token.SliceRecord{}, err
	}
	for i := range list.Items {
		if s := &list.Items[i]; token.IsSliceSecret(s) && s.Data[id] != nil {
			r, err := token.ParseSliceRecord(id, s.Data[id])
			return s, r, err
		}
	}
	return nil, token.SliceRecord{}, apierrors.NewNotFound(corev1.Resource("secrets"), "a slice holding "+id)
}

var _ = Describe("The expiry gauges", func() {
	It("show a TokenRequest's expiry as its status says, on every replica, until it is deleted", func(ctx SpecContext) {
		ns := newNamespace(ctx)
		mustKubectl("apply", "-n", ns, "-f", sample)
		mustKubectl("wait", "-n", ns, "--for=condition=Ready", "tokenrequest/password-reset", "--timeout=60s")
		tr := &tokensv1alpha1.TokenRequest{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "password-reset"}, tr)).To(Succeed())
		labels := `name="password-reset",namespace="` + ns + `"`
		for _, r := range replicas {
			Eventually(func() float64 {
				v, _ := r.series("tokenoperator_token_expiration_timestamp_seconds", labels)
				return v
			}).
				Should(Equal(float64(tr.Status.ExpiresAt.Unix())), r.name)
			ready, ok := r.series("tokenoperator_tokenrequest_ready", `condition="True",`+labels+`,reason="Issued"`)
			Expect([]any{ready, ok}).To(Equal([]any{1.0, true}), r.name)
		}
		mustKubectl("delete", "tokenrequest", "password-reset", "-n", ns)
		for _, r := range replicas {
			Eventually(func() bool { _, ok := r.series("tokenoperator_token_expiration_timestamp_seconds", labels); return ok }).
				Should(BeFalse(), r.name)
		}
	})
})
