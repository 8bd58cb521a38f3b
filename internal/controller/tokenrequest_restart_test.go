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
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/tokenops/token-operator/api/v1alpha1"
	"github.com/tokenops/token-operator/test/utils"
)

// podSpec is a minimal valid pod template for the workloads of these specs.
func podSpec(labels map[string]string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: labels},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app:1", Env: []corev1.EnvVar{{
			Name: "TOKEN", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
				LocalObjectReference: corev1.LocalObjectReference{Name: "env-token"}, Key: "token"}},
		}}}}},
	}
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
})
