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
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/tokenops/token-operator/api/v1alpha1"
	"github.com/tokenops/token-operator/test/utils"
)

// envWorkloads applies a Deployment "web" and a StatefulSet "db" (label tier=db) that read the
// Secret "env-token" through an environment variable, and returns a record of their restarts.
func envWorkloads(ctx SpecContext, ns string) func() map[string][]string {
	GinkgoHelper()
	container := `      containers:
      - name: app
        image: registry.example.com/app:1
        env:
        - name: TOKEN
          valueFrom:
            secretKeyRef: {name: env-token, key: token}
`
	manifest := `apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
` + container + `---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db, labels: {tier: db}}
spec:
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
` + container
	file := filepath.Join(workDir, ns+"-workloads.yaml")
	Expect(os.WriteFile(file, []byte(manifest), 0o600)).To(Succeed())
	mustKubectl("apply", "-n", ns, "-f", file)
	h, err := utils.WatchRestarts(ctx, k8sClient, ns, tokensv1alpha1.RestartRevisionKey("env-token"))
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(h.Stop)
	return h.Seen
}

// applyEnvToken applies the TokenRequest "env-token" with the given ttl and renewBefore and
// both workloads as restart targets, and waits until it is Ready.
func applyEnvToken(ns, ttl, renewBefore string) {
	GinkgoHelper()
	manifest := fmt.Sprintf(`apiVersion: tokens.tokenops.io/v1alpha1
kind: TokenRequest
metadata: {name: env-token}
spec:
  ttl: %s
  rotation:
    renewBefore: %s
    restartTargets:
    - {kind: Deployment, name: web}
    - {kind: StatefulSet, selector: {matchLabels: {tier: db}}}
`, ttl, renewBefore)
	file := filepath.Join(workDir, ns+"-env-token.yaml")
	Expect(os.WriteFile(file, []byte(manifest), 0o600)).To(Succeed())
	mustKubectl("apply", "-n", ns, "-f", file)
	mustKubectl("wait", "-n", ns, "--for=condition=Ready", "tokenrequest/env-token", "--timeout=60s")
}

var _ = Describe("Restart targets", Ordered, func() {
	It("refuses selector: {} at kubectl apply", func(ctx SpecContext) {
		ns := newNamespace(ctx)
		file := filepath.Join(workDir, ns+"-empty-selector.yaml")
		Expect(os.WriteFile(file, []byte(`apiVersion: tokens.tokenops.io/v1alpha1
kind: TokenRequest
metadata: {name: everything}
spec:
  ttl: 2s
  rotation:
    renewBeforePercentage: 50
    restartTargets:
    - {kind: Deployment, selector: {}}
`), 0o600)).To(Succeed())
		out, err := kubectl("apply", "-n", ns, "-f", file)
		Expect(err).To(HaveOccurred(), out)
		Expect(out).To(ContainSubstring("selector must not be empty (it would match every workload of the namespace)"))
		AddReportEntry("kubectl apply of selector: {}", out)
		out, err = kubectl("get", "tokenrequest", "everything", "-n", ns)
		Expect(err).To(HaveOccurred(), "never stored")
		Expect(out).To(ContainSubstring("NotFound"))
	})

	It("without the opt-in RBAC, reports RestartFailed and still rotates the token", func(ctx SpecContext) {
		Expect(canI("patch", "deployments")).To(BeFalse(), "the shipped ClusterRole grants no patch on workloads")
		ns := newNamespace(ctx)
		restarts := envWorkloads(ctx, ns)
		applyEnvToken(ns, "1h", "5m")
		first := secretToken(ns, "env-token")
		remember(first)

		mustKubectl("annotate", "-n", ns, "tokenrequest/env-token", tokensv1alpha1.AnnotationRotate+"=e2e")
		tr := &tokensv1alpha1.TokenRequest{}
		Eventually(func(g Gomega) {
			g.Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "env-token"}, tr)).To(Succeed())
			g.Expect(tr.Status.Revision).To(BeEquivalentTo(2))
			g.Expect(tr.Status.Restarts).To(HaveLen(2))
		}).WithTimeout(30 * time.Second).Should(Succeed())
		for _, e := range tr.Status.Restarts {
			Expect(e.Error).To(ContainSubstring("forbidden: grant the operator get, list and patch on"), e.Kind)
			Expect(e.Error).To(ContainSubstring(operatorServiceAccount), "the API server's own words, naming the user")
		}
		Expect(tr.Status.RestartedRevision).To(BeZero())
		second := secretToken(ns, "env-token")
		remember(second)
		Expect(second).NotTo(Equal(first))
		for _, r := range replicas {
			Eventually(validate).WithArguments(r, second).Should(Equal(answerTrue), r.name)
			Expect(r.running()).To(BeTrue(), r.name+" keeps running")
		}
		failed := mustKubectl("get", "events", "-n", ns, "--field-selector", "reason=RestartFailed", "-o", "jsonpath={.items[0].message}")
		Expect(failed).To(ContainSubstring("forbidden: grant the operator"))
		AddReportEntry("RestartFailed event", failed)
		Expect(mustKubectl("describe", "tokenrequest", "env-token", "-n", ns)).To(ContainSubstring("RestartFailed"))
		seen := restarts()
		Expect(seen["Deployment/web"]).To(Equal([]string{""}), "never changed")
		Expect(seen["StatefulSet/db"]).To(Equal([]string{""}), "never changed")
		Expect(mustKubectl("delete", "tokenrequest", "env-token", "-n", ns)).To(ContainSubstring("deleted"))
	})

	It("with the opt-in RBAC, restarts each target once per revision, across a SIGKILL of the leader", func(ctx SpecContext) {
		By("applying config/default with the restart-targets component")
		applyYAML("rbac-restart-targets", shippedRBAC(true))
		DeferCleanup(func() {
			_, _ = kubectl("delete", "clusterrolebinding", "token-operator-restart-targets-rolebinding")
			_, _ = kubectl("delete", "clusterrole", "token-operator-restart-targets")
		})
		Eventually(func() bool { return canI("patch", "deployments") && canI("list", "statefulsets") }).Should(BeTrue())

		ns := newNamespace(ctx)
		restarts := envWorkloads(ctx, ns)
		old, survivor := leader()
		// Renewed 18 s after issue; the old token validates 12 s more.
		applyEnvToken(ns, "30s", "12s")
		tr := &tokensv1alpha1.TokenRequest{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "env-token"}, tr)).To(Succeed())
		renewal := tr.Status.RenewalTime.Time

		By("killing the leader, " + old.name + ", before the renewal time")
		Expect(time.Until(renewal)).To(BeNumerically(">", 5*time.Second))
		old.kill()
		DeferCleanup(func() {
			if !old.running() {
				old.start()
				old.waitReady()
			}
		})

		By("waiting for the survivor to rotate and restart both workloads")
		Eventually(func(g Gomega) {
			g.Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "env-token"}, tr)).To(Succeed())
			g.Expect(tr.Status.RestartedRevision).To(BeEquivalentTo(2))
		}).WithTimeout(time.Until(renewal) + 30*time.Second).WithPolling(100 * time.Millisecond).Should(Succeed())
		Eventually(survivor.isLeader).Should(BeTrue())
		Expect(tr.Status.Restarts).To(ConsistOf(
			And(HaveField("Kind", "Deployment"), HaveField("Name", "web"), HaveField("Revision", BeEquivalentTo(2)), HaveField("Error", "")),
			And(HaveField("Kind", "StatefulSet"), HaveField("Name", "db"), HaveField("Revision", BeEquivalentTo(2)), HaveField("Error", "")),
		))

		By("restarting the killed replica, which must not restart the workloads again")
		old.start()
		old.waitReady()
		web := &appsv1.Deployment{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web"}, web)).To(Succeed())
		Expect(web.Generation).To(BeEquivalentTo(2), "created, then one pod template change")
		Expect(web.Spec.Template.Annotations).To(HaveKey(tokensv1alpha1.AnnotationRestartedAt))
		Expect(mustKubectl("delete", "tokenrequest", "env-token", "-n", ns)).To(ContainSubstring("deleted"))
		Consistently(func() map[string][]string { return restarts() }).WithTimeout(3*time.Second).Should(Equal(map[string][]string{
			"Deployment/web": {"", "2"},
			"StatefulSet/db": {"", "2"},
		}), "one restart for revision 2, none for the first token, none after the failover")
		Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web"}, web)).To(Succeed())
		Expect(web.Generation).To(BeEquivalentTo(2))
	})
})
