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
	"fmt"
	"slices"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus/testutil"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/tokenops/token-operator/api/v1alpha1"
	"github.com/tokenops/token-operator/internal/metrics"
	"github.com/tokenops/token-operator/test/utils"
)

// specRestartInterval is the suite manager's --min-restart-interval: short, so that the
// specs see a restart deferred and then done without waiting a minute.
const specRestartInterval = 3 * time.Second

// podSpec is a minimal valid pod template for the workloads of these specs, reading the
// Secrets named (env-token if none) through environment variables.
func podSpec(labels map[string]string, secrets ...string) corev1.PodTemplateSpec {
	if len(secrets) == 0 {
		secrets = []string{"env-token"}
	}
	var env []corev1.EnvVar
	for i, s := range secrets {
		env = append(env, corev1.EnvVar{Name: fmt.Sprintf("TOKEN_%d", i), ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: s}, Key: "token"}}})
	}
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: labels},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app:1", Env: env}}},
	}
}

// deployment is a Deployment of one pod template.
func deployment(ns, name string, labels map[string]string, tmpl corev1.PodTemplateSpec) *appsv1.Deployment {
	tmpl.Labels = map[string]string{"app": name}
	return &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels}, Spec: appsv1.DeploymentSpec{
		Selector: &metav1.LabelSelector{MatchLabels: tmpl.Labels}, Template: tmpl}}
}

var _ = Describe("Restart targets", func() {
	var ns string
	BeforeEach(func(ctx SpecContext) { ns = newNamespace(ctx) })

	It("restarts a Deployment by name and a StatefulSet by selector once per revision, across a manager restart", func(ctx SpecContext) {
		web := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"}, Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}, Template: podSpec(map[string]string{"app": "web"})}}
		db := &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "db", Labels: map[string]string{"tier": "db"}},
			Spec: appsv1.StatefulSetSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}},
				Template: podSpec(map[string]string{"app": "db"})}}
		other := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "other"}, Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "other"}}, Template: podSpec(map[string]string{"app": "other"})}}
		for _, o := range []client.Object{web, db, other} {
			Expect(k8sClient.Create(ctx, o)).To(Succeed())
		}
		h, err := utils.WatchRestarts(ctx, k8sClient, ns, tokensv1alpha1.RestartRevisionKey("env-token"))
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(h.Stop)
		changes := h.Seen

		// A 10 s token renewed 5 s before expiry: a scheduled rotation every 5 s.
		tr := waitFor(ctx, newTokenRequest(ctx, ns, "env-token", "10s", func(tr *tokensv1alpha1.TokenRequest) {
			tr.Spec.Rotation = &tokensv1alpha1.Rotation{RenewBefore: &metav1.Duration{Duration: 5 * time.Second},
				RestartTargets: []tokensv1alpha1.RestartTarget{
					{Kind: "Deployment", Name: "web"},
					{Kind: "StatefulSet", Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"tier": "db"}}},
					{Kind: "Deployment", Name: "missing"},
				}}
		}), tokensv1alpha1.ReasonIssued)
		Expect(meta.FindStatusCondition(tr.Status.Conditions, tokensv1alpha1.ConditionRolloutOverlap)).To(And(
			HaveField("Status", metav1.ConditionFalse), HaveField("Reason", tokensv1alpha1.ReasonOverlapTooShort)))

		By("restarting both targets after the scheduled rotation, not after the first token")
		Expect(tr.Status.Restarts).To(BeEmpty())
		restarted := func(rev int64) func(Gomega) {
			return func(g Gomega) {
				g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(tr), tr)).To(Succeed())
				g.Expect(tr.Status.RestartedRevision).To(BeNumerically(">=", rev))
				for _, o := range []client.Object{&appsv1.Deployment{}, &appsv1.StatefulSet{}} {
					name := "web"
					if _, ok := o.(*appsv1.StatefulSet); ok {
						name = "db"
					}
					g.Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, o)).To(Succeed())
					g.Expect(podTemplate(o).Annotations).To(HaveKey(tokensv1alpha1.AnnotationRestartedAt))
					g.Expect(podTemplate(o).Annotations[tokensv1alpha1.RestartRevisionKey("env-token")]).
						To(Equal(fmt.Sprint(tr.Status.RestartedRevision)))
				}
			}
		}
		Eventually(restarted(2)).WithTimeout(15 * time.Second).Should(Succeed())
		Expect(tr.Status.Restarts).To(ConsistOf(
			And(HaveField("Kind", "Deployment"), HaveField("Name", "web"), HaveField("Time", Not(BeNil())), HaveField("Error", "")),
			And(HaveField("Kind", "StatefulSet"), HaveField("Name", "db"), HaveField("Time", Not(BeNil())), HaveField("Error", "")),
		), "a missing workload by name is nothing to restart")
		Eventually(eventReasons(ctx, tr)).Should(ContainElement(EventRestarted))

		By("restarting the manager, and losing the status of a restart as a crashed leader would")
		// Past the restart's second, so that a second restart would change restartedAt.
		restartedAt := tr.Status.Restarts[0].Time.Time
		Eventually(time.Now).WithTimeout(3 * time.Second).WithPolling(100 * time.Millisecond).Should(BeTemporally(">", restartedAt.Add(time.Second)))
		stopManager()
		stopManager = nil
		lost := tr.DeepCopy()
		handled := lost.Status.RestartedRevision
		lost.Status.RestartedRevision = 1
		Expect(k8sClient.Status().Update(ctx, lost)).To(Succeed())
		stopManager = startManager(newManager())
		Eventually(restarted(handled)).WithTimeout(15*time.Second).Should(Succeed(), "handled again, from the workloads' annotations")

		By("rotating on demand")
		current := tr.Status.Revision
		annotate(ctx, tr, tokensv1alpha1.AnnotationRotate, "now")
		Eventually(restarted(current + 1)).WithTimeout(15 * time.Second).Should(Succeed())

		By("re-issuing after the Secret is deleted by hand")
		current = tr.Status.Revision
		Expect(k8sClient.Delete(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "env-token"}})).To(Succeed())
		Eventually(restarted(current + 1)).WithTimeout(15 * time.Second).Should(Succeed())

		By("stopping the rotations, then counting the restarts")
		final := fmt.Sprint(tr.Status.RestartedRevision)
		Expect(k8sClient.Delete(ctx, tr)).To(Succeed())
		for _, id := range []string{"Deployment/web", "StatefulSet/db"} {
			Eventually(func() []string { return changes()[id] }).Should(ContainElement(final), id)
		}
		seen := changes()
		for _, id := range []string{"Deployment/web", "StatefulSet/db"} {
			values := seen[id]
			Expect(len(values)).To(BeNumerically(">=", 3), fmt.Sprintf("%s: created, then at least two restarts: %q", id, values))
			Expect(values[0]).To(BeEmpty(), id+": not restarted for the first token")
			for i := 2; i < len(values); i++ {
				Expect(values[i]).NotTo(Equal(values[i-1]), id)
			}
			unique := map[string]int{}
			for _, v := range values[1:] {
				unique[v]++
			}
			for v, n := range unique {
				Expect(n).To(Equal(1), fmt.Sprintf("%s restarted %d times for revision %s: %v", id, n, v, values))
			}
		}
		Expect(seen["Deployment/other"]).To(Equal([]string{""}), "a Deployment no target names is never touched")
	})

	It("restarts a workload a selector matches only if it reads the Secret at start, and says why not (RestartSkipped)", func(ctx SpecContext) {
		reads := map[string]string{"reads": "env-token"}
		volume := podSpec(nil, "unrelated")
		volume.Spec.Volumes = []corev1.Volume{{Name: "token", VolumeSource: corev1.VolumeSource{
			Secret: &corev1.SecretVolumeSource{SecretName: "env-token"}}}}
		volume.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "token", MountPath: "/var/run/token"}}
		subPath := *volume.DeepCopy()
		subPath.Spec.Containers[0].VolumeMounts[0].SubPath = "token"
		for _, o := range []client.Object{
			deployment(ns, "env", reads, podSpec(nil)),
			deployment(ns, "volume", reads, volume),
			deployment(ns, "subpath", reads, subPath),
			deployment(ns, "named-volume", nil, volume),
		} {
			Expect(k8sClient.Create(ctx, o)).To(Succeed())
		}
		h, err := utils.WatchRestarts(ctx, k8sClient, ns, tokensv1alpha1.RestartRevisionKey("env-token"))
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(h.Stop)

		tr := waitFor(ctx, newTokenRequest(ctx, ns, "env-token", "1h", func(tr *tokensv1alpha1.TokenRequest) {
			tr.Spec.Rotation = &tokensv1alpha1.Rotation{RenewBefore: &metav1.Duration{Duration: 5 * time.Minute},
				RestartTargets: []tokensv1alpha1.RestartTarget{
					{Kind: "Deployment", Selector: &metav1.LabelSelector{MatchLabels: reads}},
					{Kind: "Deployment", Name: "named-volume"},
				}}
		}), tokensv1alpha1.ReasonIssued)
		annotate(ctx, tr, tokensv1alpha1.AnnotationRotate, "now")
		Eventually(func(g Gomega) {
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(tr), tr)).To(Succeed())
			g.Expect(tr.Status.RestartedRevision).To(BeEquivalentTo(2))
		}).Should(Succeed())
		Expect(tr.Status.Restarts).To(ConsistOf(
			And(HaveField("Name", "env"), HaveField("Revision", BeEquivalentTo(2)), HaveField("Skipped", "")),
			And(HaveField("Name", "subpath"), HaveField("Revision", BeEquivalentTo(2)), HaveField("Skipped", "")),
			And(HaveField("Name", "named-volume"), HaveField("Revision", BeEquivalentTo(2)), HaveField("Skipped", "")),
			And(HaveField("Name", "volume"), HaveField("Revision", BeZero()), HaveField("Time", BeNil()),
				HaveField("Skipped", ContainSubstring("mount Secret env-token as a volume, which the kubelet updates"))),
		))
		Eventually(func(g Gomega) []string {
			list := &eventsv1.EventList{}
			g.Expect(k8sClient.List(ctx, list, client.InNamespace(ns))).To(Succeed())
			var notes []string
			for _, e := range list.Items {
				if e.Reason == EventRestartSkipped {
					notes = append(notes, e.Note)
				}
			}
			return notes
		}).Should(ConsistOf(ContainSubstring("Did not restart Deployment volume, matched by a selector, for token revision 2: " +
			"its pods mount Secret env-token as a volume")))

		By("rotating again at once: the restarts wait for the minimum interval, then happen with nothing else to wake them")
		byName := func(name string) func(tokensv1alpha1.WorkloadRestart) bool {
			return func(e tokensv1alpha1.WorkloadRestart) bool { return e.Name == name }
		}
		restartedAt := tr.Status.Restarts[slices.IndexFunc(tr.Status.Restarts, byName("env"))].Time.Time
		annotate(ctx, tr, tokensv1alpha1.AnnotationRotate, "again")
		Eventually(func(g Gomega) {
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(tr), tr)).To(Succeed())
			g.Expect(tr.Status.Revision).To(BeEquivalentTo(3))
			g.Expect(tr.Status.RestartedRevision).To(BeEquivalentTo(2), "pending")
			g.Expect(tr.Status.Restarts).To(ContainElement(And(HaveField("Name", "env"), HaveField("Revision", BeEquivalentTo(2)),
				HaveField("DeferredUntil", Not(BeNil())), HaveField("Error", ""))))
		}).Should(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(tr), tr)).To(Succeed())
			g.Expect(tr.Status.RestartedRevision).To(BeEquivalentTo(3))
		}).WithTimeout(specRestartInterval + 5*time.Second).Should(Succeed())
		env := tr.Status.Restarts[slices.IndexFunc(tr.Status.Restarts, byName("env"))]
		Expect(env.DeferredUntil).To(BeNil())
		Expect(env.Time.Sub(restartedAt)).To(BeNumerically(">=", specRestartInterval+time.Second))

		Expect(k8sClient.Delete(ctx, tr)).To(Succeed())
		Consistently(h.Seen).WithTimeout(time.Second).Should(Equal(map[string][]string{
			"Deployment/env":          {"", "2", "3"},
			"Deployment/subpath":      {"", "2", "3"},
			"Deployment/named-volume": {"", "2", "3"},
			"Deployment/volume":       {""},
		}), "a plain volume mount updates itself: restarted only when named")
	})

	It("under a 2-second rotation of two TokenRequests restarts a workload once per minimum interval, never counted as failing", func(ctx SpecContext) {
		Expect(k8sClient.Create(ctx, deployment(ns, "web", nil, podSpec(nil, "fast-a", "fast-b")))).To(Succeed())
		h, err := utils.WatchRestarts(ctx, k8sClient, ns, tokensv1alpha1.AnnotationRestartedAt)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(h.Stop)
		failed := testutil.ToFloat64(metrics.WorkloadRestarts.WithLabelValues("Deployment", resultFailed))
		deferred := testutil.ToFloat64(metrics.WorkloadRestarts.WithLabelValues("Deployment", resultDeferred))

		// The case: a 2 s token renewed at 50%, a rotation every second; twice.
		var trs []*tokensv1alpha1.TokenRequest
		for _, name := range []string{"fast-a", "fast-b"} {
			trs = append(trs, newTokenRequest(ctx, ns, name, "2s", func(tr *tokensv1alpha1.TokenRequest) {
				tr.Spec.Rotation = &tokensv1alpha1.Rotation{RenewBeforePercentage: new(int32(50)),
					RestartTargets: []tokensv1alpha1.RestartTarget{{Kind: "Deployment", Name: "web"}}}
			}))
		}
		const restarts = 4
		Eventually(func() []string { return h.Seen()["Deployment/web"] }).WithTimeout(restarts*(specRestartInterval+3*time.Second)).
			Should(HaveLen(1+restarts), "created, then restarted once per interval")
		tr := trs[0]
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(tr), tr)).To(Succeed())
		Expect(tr.Status.Revision).To(BeNumerically(">", 2*restarts), "rotated about every second")
		Expect(meta.FindStatusCondition(tr.Status.Conditions, tokensv1alpha1.ConditionRestartInterval)).To(And(
			HaveField("Status", metav1.ConditionFalse), HaveField("Reason", tokensv1alpha1.ReasonRotatesTooOften),
			HaveField("Message", ContainSubstring("rotates as often as every 1s, but a workload is restarted at most once per 3s"))))
		for _, tr := range trs {
			Expect(k8sClient.Delete(ctx, tr)).To(Succeed())
		}

		values := h.Seen()["Deployment/web"]
		AddReportEntry("restartedAt of Deployment web under two 2-second rotations", values)
		Expect(values[0]).To(BeEmpty())
		for i := 2; i < len(values); i++ {
			prev, err := time.Parse(time.RFC3339, values[i-1])
			Expect(err).NotTo(HaveOccurred())
			at, err := time.Parse(time.RFC3339, values[i])
			Expect(err).NotTo(HaveOccurred())
			// Whole seconds: a gap of interval + 1 s in the annotation is at least the interval.
			Expect(at.Sub(prev)).To(And(BeNumerically(">=", specRestartInterval+time.Second),
				BeNumerically("<=", specRestartInterval+3*time.Second)), "restart %d: once per interval, not less often: %v", i, values)
		}
		Expect(testutil.ToFloat64(metrics.WorkloadRestarts.WithLabelValues("Deployment", resultFailed))).To(Equal(failed),
			"a deferred restart is not a failure: the restarts-failing alert counts failed only")
		Expect(testutil.ToFloat64(metrics.WorkloadRestarts.WithLabelValues("Deployment", resultDeferred))).To(
			BeNumerically(">=", deferred+restarts-1))
		for _, tr := range trs {
			Expect(eventReasons(ctx, tr)(Default)).NotTo(ContainElement(EventRestartFailed), tr.Name)
		}
	})
})
