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
	"fmt"
	"io"
	"path/filepath"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	tokensv1alpha1 "github.com/tokenops/token-operator/api/v1alpha1"
	"github.com/tokenops/token-operator/internal/store"
	"github.com/tokenops/token-operator/internal/token"
)

// newTokenRequest creates a TokenRequest with the given ttl ("" for the default).
func newTokenRequest(ctx context.Context, ns, name, ttl string, mutate ...func(*tokensv1alpha1.TokenRequest)) *tokensv1alpha1.TokenRequest {
	tr := &tokensv1alpha1.TokenRequest{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	if ttl != "" {
		d, err := time.ParseDuration(ttl)
		Expect(err).NotTo(HaveOccurred())
		tr.Spec.TTL = &metav1.Duration{Duration: d}
	}
	for _, m := range mutate {
		m(tr)
	}
	Expect(k8sClient.Create(ctx, tr)).To(Succeed())
	return tr
}

// readyCondition returns the TokenRequest's Ready condition as the API server holds it.
func readyCondition(ctx context.Context, tr *tokensv1alpha1.TokenRequest) func(Gomega) *metav1.Condition {
	return func(g Gomega) *metav1.Condition {
		g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(tr), tr)).To(Succeed())
		c := meta.FindStatusCondition(tr.Status.Conditions, tokensv1alpha1.ConditionReady)
		g.Expect(c).NotTo(BeNil())
		return c
	}
}

// waitFor waits until the TokenRequest's Ready condition has the reason, and returns it fresh.
func waitFor(ctx context.Context, tr *tokensv1alpha1.TokenRequest, reason string) *tokensv1alpha1.TokenRequest {
	GinkgoHelper()
	Eventually(readyCondition(ctx, tr)).Should(HaveField("Reason", reason))
	return tr
}

// tokenOf reads the token a Secret holds.
func tokenOf(s *corev1.Secret) string { return string(s.Data[token.DataToken]) }

var _ = Describe("TokenRequest controller", func() {
	var ns string
	BeforeEach(func(ctx SpecContext) { ns = newNamespace(ctx) })

	It("writes a Secret of the documented shape, owned by the TokenRequest", func(ctx SpecContext) {
		tr := newTokenRequest(ctx, ns, "api-key", "15m", func(tr *tokensv1alpha1.TokenRequest) {
			tr.Spec.SecretName = "api-key-secret"
			tr.Spec.SecretTemplate = &tokensv1alpha1.SecretTemplate{
				Labels:      map[string]string{"team": "payments", token.LabelManagedBy: "helm"},
				Annotations: map[string]string{"note": "for the billing job", token.AnnotationExpiresAt: "never"},
			}
		})
		waitFor(ctx, tr, tokensv1alpha1.ReasonIssued)
		Expect(tr.Status.SecretName).To(Equal("api-key-secret"))
		Expect(tr.Status.ObservedGeneration).To(Equal(tr.Generation))
		Expect(tr.Status.ExpiresAt.Sub(tr.Status.IssuedAt.Time)).To(Equal(15 * time.Minute))
		Expect(readyCondition(ctx, tr)(Default)).To(HaveField("Status", metav1.ConditionTrue))

		s := getSecret(ctx, ns, "api-key-secret")(Default)
		Expect(s.Type).To(Equal(token.SecretType))
		Expect(s.Data).To(HaveLen(2))
		tok, err := token.Parse(tokenOf(s))
		Expect(err).NotTo(HaveOccurred())
		Expect(tok.ID).To(Equal(tr.Status.TokenID))
		Expect(string(s.Data[token.DataTokenID])).To(Equal(tok.ID))
		Expect(s.Labels).To(Equal(map[string]string{
			"team":               "payments",
			token.LabelManagedBy: token.ManagedBy,
			token.LabelTokenID:   tok.ID,
			token.LabelSource:    "tokenrequest",
		}))
		Expect(s.Annotations).To(Equal(map[string]string{
			"note":                    "for the billing job",
			token.AnnotationIssuedAt:  tr.Status.IssuedAt.UTC().Format(time.RFC3339),
			token.AnnotationExpiresAt: tr.Status.ExpiresAt.UTC().Format(time.RFC3339),
			token.AnnotationRevision:  "1",
		}))
		Expect(tr.Status.Revision).To(BeEquivalentTo(1))
		Expect(tr.Status.RenewalTime).To(BeNil())
		Expect(s.OwnerReferences).To(ConsistOf(And(
			HaveField("UID", tr.UID),
			HaveField("Kind", "TokenRequest"),
			HaveField("Controller", HaveValue(BeTrue())),
			HaveField("BlockOwnerDeletion", HaveValue(BeTrue())),
		)))
		Eventually(eventReasons(ctx, tr)).Should(ContainElement(EventTokenIssued))
	})

	It("defaults the ttl to 60m and the Secret name to the TokenRequest's name", func(ctx SpecContext) {
		tr := newTokenRequest(ctx, ns, "defaults", "")
		Expect(tr.Spec.TTL).To(HaveValue(HaveField("Duration", time.Hour)))
		waitFor(ctx, tr, tokensv1alpha1.ReasonIssued)
		Expect(tr.Status.ExpiresAt.Sub(tr.Status.IssuedAt.Time)).To(Equal(time.Hour))
		Expect(tokenOf(getSecret(ctx, ns, "defaults")(Default))).To(HavePrefix(tr.Status.TokenID + ":"))
	})

	It("issues exactly once however often it reconciles", func(ctx SpecContext) {
		tr := waitFor(ctx, newTokenRequest(ctx, ns, "once", "10m"), tokensv1alpha1.ReasonIssued)
		first := getSecret(ctx, ns, "once")(Default)

		By("touching the TokenRequest and the Secret many times")
		for i := range 20 {
			patch := client.MergeFrom(tr.DeepCopy())
			tr.Annotations = map[string]string{"touch": fmt.Sprint(i)}
			Expect(k8sClient.Patch(ctx, tr, patch)).To(Succeed())
		}
		s := first.DeepCopy()
		s.Annotations["unrelated"] = "edit"
		Expect(k8sClient.Update(ctx, s)).To(Succeed())

		By("calling Reconcile directly, around the manager")
		tokens := startIndex(ctx)
		r := &TokenRequestReconciler{Client: k8sClient, Tokens: tokens, Store: store.New(k8sClient, k8sClient, tokens, nil),
			APIReader: k8sClient, Clock: clock.RealClock{}}
		for range 10 {
			_, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(tr)})
			Expect(err).NotTo(HaveOccurred())
		}
		Consistently(getSecret(ctx, ns, "once")).WithTimeout(2 * time.Second).Should(And(
			WithTransform(tokenOf, Equal(tokenOf(first))),
			HaveField("UID", first.UID),
		))
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(tr), tr)).To(Succeed())
		Expect(tr.Status.TokenID).To(Equal(string(first.Data[token.DataTokenID])))
	})

	It("keeps the token across a manager restart, and adopts a Secret written just before a crash", func(ctx SpecContext) {
		issued := waitFor(ctx, newTokenRequest(ctx, ns, "survivor", "10m"), tokensv1alpha1.ReasonIssued)
		before := getSecret(ctx, ns, "survivor")(Default)

		By("stopping the manager")
		stopManager()
		stopManager = nil

		By("creating a TokenRequest whose Secret was written but whose status was not")
		orphan := newTokenRequest(ctx, ns, "crashed", "10m")
		written := token.Issued{Token: token.Generate(), Lifetime: token.NewLifetime(time.Now(), 10*time.Minute),
			Source: token.SourceTokenRequest}
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "crashed"}}
		written.ApplyTo(s)
		Expect(ctrl.SetControllerReference(orphan, s, scheme)).To(Succeed())
		Expect(k8sClient.Create(ctx, s)).To(Succeed())

		By("starting a new manager")
		stopManager = startManager(newManager())
		waitFor(ctx, orphan, tokensv1alpha1.ReasonIssued)
		Expect(orphan.Status.TokenID).To(Equal(written.ID))
		Expect(orphan.Status.ExpiresAt.Time).To(BeTemporally("==", written.ExpiresAt))
		Expect(tokenOf(getSecret(ctx, ns, "crashed")(Default))).To(Equal(written.String()))

		Consistently(getSecret(ctx, ns, "survivor")).WithTimeout(2 * time.Second).Should(And(
			WithTransform(tokenOf, Equal(tokenOf(before))),
			HaveField("ResourceVersion", before.ResourceVersion),
		))
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(issued), issued)).To(Succeed())
		Expect(issued.Status.TokenID).To(Equal(string(before.Data[token.DataTokenID])))
	})

	It("never writes two tokens for one TokenRequest when two managers race", func(ctx SpecContext) {
		By("watching every write to the namespace's Secrets")
		seen := tokensSeen(ctx, ns)

		stopSecond := startManager(newManager())
		defer stopSecond()
		const n = 30
		for i := range n {
			newTokenRequest(ctx, ns, fmt.Sprintf("race-%d", i), "10m")
		}
		Eventually(func(g Gomega) {
			list := &tokensv1alpha1.TokenRequestList{}
			g.Expect(k8sClient.List(ctx, list, client.InNamespace(ns))).To(Succeed())
			g.Expect(list.Items).To(HaveLen(n))
			for _, tr := range list.Items {
				c := meta.FindStatusCondition(tr.Status.Conditions, tokensv1alpha1.ConditionReady)
				g.Expect(c).NotTo(BeNil())
				g.Expect(c.Reason).To(Equal(tokensv1alpha1.ReasonIssued))
				s := getSecret(ctx, ns, tr.Name)(g)
				g.Expect(tokenOf(s)).To(HavePrefix(tr.Status.TokenID + ":"))
			}
		}).Should(Succeed())
		Consistently(seen).WithTimeout(2 * time.Second).Should(And(HaveLen(n), HaveEach(HaveLen(1))))
	})

	It("deletes the Secret and shows Expired within 2s of expires-at", func(ctx SpecContext) {
		tr := waitFor(ctx, newTokenRequest(ctx, ns, "short", "3s"), tokensv1alpha1.ReasonIssued)
		expiresAt := tr.Status.ExpiresAt.Time
		deadline := time.Until(expiresAt.Add(2 * time.Second))

		By("keeping the Secret until expires-at")
		Consistently(getSecret(ctx, ns, "short")).WithTimeout(time.Until(expiresAt.Add(-300 * time.Millisecond))).
			Should(HaveField("Type", token.SecretType))

		By("deleting it by expires-at + 2s")
		Eventually(func() bool {
			err := k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "short"}, &corev1.Secret{})
			return err != nil && client.IgnoreNotFound(err) == nil
		}).WithTimeout(deadline).Should(BeTrue())
		Eventually(readyCondition(ctx, tr)).WithTimeout(time.Until(expiresAt.Add(2 * time.Second))).Should(And(
			HaveField("Reason", tokensv1alpha1.ReasonExpired),
			HaveField("Status", metav1.ConditionFalse),
		))
		Eventually(eventReasons(ctx, tr)).Should(ContainElement(EventTokenExpired))

		By("staying expired: no new Secret, the TokenRequest is kept")
		Consistently(func() error {
			return k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "short"}, &corev1.Secret{})
		}).WithTimeout(2 * time.Second).Should(MatchError(ContainSubstring("not found")))
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(tr), tr)).To(Succeed())
	})

	It("re-issues a new token, keeping the expiry, when the Secret is deleted by hand", func(ctx SpecContext) {
		tr := waitFor(ctx, newTokenRequest(ctx, ns, "deleted", "30m"), tokensv1alpha1.ReasonIssued)
		old := getSecret(ctx, ns, "deleted")(Default)
		oldExpiry := tr.Status.ExpiresAt.Time
		Expect(k8sClient.Delete(ctx, old)).To(Succeed())

		Eventually(getSecret(ctx, ns, "deleted")).Should(And(
			WithTransform(tokenOf, Not(Equal(tokenOf(old)))),
			HaveField("Annotations", HaveKeyWithValue(token.AnnotationExpiresAt, oldExpiry.UTC().Format(time.RFC3339))),
		))
		Eventually(func(g Gomega) {
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(tr), tr)).To(Succeed())
			g.Expect(tr.Status.TokenID).NotTo(Equal(string(old.Data[token.DataTokenID])))
			g.Expect(tokenOf(getSecret(ctx, ns, "deleted")(g))).To(HavePrefix(tr.Status.TokenID + ":"))
		}).Should(Succeed())
		Expect(tr.Status.ExpiresAt.Time).To(BeTemporally("==", oldExpiry))
		Eventually(eventReasons(ctx, tr)).Should(ContainElement(EventTokenReissued))
	})

	It("writes the spec's subject, purpose and metadata into the Secret's data, sealed, and heals an edited subject", func(ctx SpecContext) {
		tr := waitFor(ctx, newTokenRequest(ctx, ns, "reset", "30m", func(tr *tokensv1alpha1.TokenRequest) {
			tr.Spec.Subject, tr.Spec.Purpose = "user-42@example.com", "password-reset"
			tr.Spec.Metadata = map[string]tokensv1alpha1.MetadataValue{"ip": "203.0.113.7"}
		}), tokensv1alpha1.ReasonIssued)
		s := getSecret(ctx, ns, "reset")(Default)
		Expect(s.Data).To(And(
			HaveKeyWithValue(token.DataSubject, []byte("user-42@example.com")),
			HaveKeyWithValue(token.DataPurpose, []byte("password-reset")),
			HaveKeyWithValue(token.DataMetadata, []byte(`{"ip":"203.0.113.7"}`)),
			Not(HaveKey(token.DataIssuer)),
		))
		Expect(s.Labels).NotTo(ContainElement(ContainSubstring("user-42")), "a subject is never a label")
		Expect(s.Annotations).NotTo(ContainElement(ContainSubstring("user-42")), "nor an annotation")

		By("handing the token to another subject by editing the Secret")
		s.Data[token.DataSubject] = []byte("mallory")
		Expect(k8sClient.Update(ctx, s)).To(Succeed())
		Eventually(getSecret(ctx, ns, "reset")).Should(HaveField("Data",
			HaveKeyWithValue(token.DataSubject, []byte("user-42@example.com"))), "healed from the spec, sealed again")
		Expect(tr.Status.TokenID).NotTo(BeEmpty())
	})

	It("heals edited metadata from the status and replaces an edited token", func(ctx SpecContext) {
		tr := waitFor(ctx, newTokenRequest(ctx, ns, "edited", "30m"), tokensv1alpha1.ReasonIssued)
		original := getSecret(ctx, ns, "edited")(Default)
		wantExpiry := original.Annotations[token.AnnotationExpiresAt]

		By("moving expires-at a year later, dropping the token-id label and changing token-id")
		s := original.DeepCopy()
		s.Annotations[token.AnnotationExpiresAt] = time.Now().Add(8760 * time.Hour).UTC().Format(time.RFC3339)
		delete(s.Labels, token.LabelTokenID)
		s.Data[token.DataTokenID] = []byte("0000000000000000")
		Expect(k8sClient.Update(ctx, s)).To(Succeed())
		Eventually(getSecret(ctx, ns, "edited")).Should(And(
			HaveField("Annotations", HaveKeyWithValue(token.AnnotationExpiresAt, wantExpiry)),
			HaveField("Labels", HaveKeyWithValue(token.LabelTokenID, tr.Status.TokenID)),
			HaveField("Data", HaveKeyWithValue(token.DataTokenID, []byte(tr.Status.TokenID))),
			WithTransform(tokenOf, Equal(tokenOf(original))),
		))

		By("overwriting the token itself")
		s = getSecret(ctx, ns, "edited")(Default)
		s.Data[token.DataToken] = []byte("0123456789abcdef:ABCDEFGHIJKLMNOPQRSTUVWXYZ")
		Expect(k8sClient.Update(ctx, s)).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(tr), tr)).To(Succeed())
			cur := getSecret(ctx, ns, "edited")(g)
			g.Expect(tokenOf(cur)).NotTo(Or(Equal(tokenOf(original)), HavePrefix("0123456789abcdef:")))
			g.Expect(tokenOf(cur)).To(HavePrefix(tr.Status.TokenID + ":"))
			g.Expect(cur.Annotations).To(HaveKeyWithValue(token.AnnotationExpiresAt, wantExpiry))
		}).Should(Succeed())
		Eventually(eventReasons(ctx, tr)).Should(ContainElement(EventTokenReissued))
	})

	It("restores secretTemplate labels and annotations removed or changed by hand, and leaves other keys alone", func(ctx SpecContext) {
		tr := waitFor(ctx, newTokenRequest(ctx, ns, "templated", "30m", func(tr *tokensv1alpha1.TokenRequest) {
			tr.Spec.SecretTemplate = &tokensv1alpha1.SecretTemplate{
				Labels:      map[string]string{"team": "payments"},
				Annotations: map[string]string{"note": "for the billing job"},
			}
		}), tokensv1alpha1.ReasonIssued)
		original := getSecret(ctx, ns, "templated")(Default)

		s := original.DeepCopy()
		delete(s.Labels, "team")
		s.Annotations["note"] = "edited"
		s.Labels["added"] = "by-hand"
		Expect(k8sClient.Update(ctx, s)).To(Succeed())
		Eventually(getSecret(ctx, ns, "templated")).Should(And(
			HaveField("Labels", And(HaveKeyWithValue("team", "payments"), HaveKeyWithValue("added", "by-hand"))),
			HaveField("Annotations", HaveKeyWithValue("note", "for the billing job")),
			WithTransform(tokenOf, Equal(tokenOf(original))),
		))
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(tr), tr)).To(Succeed())
		Expect(tr.Status.Revision).To(BeEquivalentTo(1))
	})

	It("never touches a Secret it does not own", func(ctx SpecContext) {
		foreign := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "taken"},
			StringData: map[string]string{"password": "hunter2"},
		}
		Expect(k8sClient.Create(ctx, foreign)).To(Succeed())
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(foreign), foreign)).To(Succeed())

		tr := newTokenRequest(ctx, ns, "wants-taken", "10m", func(tr *tokensv1alpha1.TokenRequest) {
			tr.Spec.SecretName = "taken"
		})
		Eventually(readyCondition(ctx, tr)).Should(And(
			HaveField("Reason", tokensv1alpha1.ReasonSecretConflict),
			HaveField("Status", metav1.ConditionFalse),
		))
		Eventually(eventReasons(ctx, tr)).Should(ContainElement(EventSecretConflict))
		Consistently(getSecret(ctx, ns, "taken")).WithTimeout(2 * time.Second).Should(And(
			HaveField("ResourceVersion", foreign.ResourceVersion),
			HaveField("Data", Equal(map[string][]byte{"password": []byte("hunter2")})),
		))

		By("a token Secret owned by another TokenRequest is a conflict too")
		owner := waitFor(ctx, newTokenRequest(ctx, ns, "owner", "10m"), tokensv1alpha1.ReasonIssued)
		ownersSecret := getSecret(ctx, ns, "owner")(Default)
		second := newTokenRequest(ctx, ns, "second", "10m", func(tr *tokensv1alpha1.TokenRequest) {
			tr.Spec.SecretName = "owner"
		})
		waitFor(ctx, second, tokensv1alpha1.ReasonSecretConflict)
		Consistently(getSecret(ctx, ns, "owner")).WithTimeout(time.Second).
			Should(HaveField("ResourceVersion", ownersSecret.ResourceVersion))
		Expect(owner.Status.TokenID).NotTo(BeEmpty())
	})

	It("refuses a ttl above --max-ttl with InvalidSpec", func(ctx SpecContext) {
		tr := newTokenRequest(ctx, ns, "too-long", "9000h")
		Eventually(readyCondition(ctx, tr)).Should(And(
			HaveField("Reason", tokensv1alpha1.ReasonInvalidSpec),
			HaveField("Message", ContainSubstring("--max-ttl")),
		))
		Consistently(func() error {
			return k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "too-long"}, &corev1.Secret{})
		}).WithTimeout(time.Second).Should(MatchError(ContainSubstring("not found")))
	})

	It("reports template labels the API server refuses as InvalidSpec", func(ctx SpecContext) {
		tr := newTokenRequest(ctx, ns, "bad-template", "10m", func(tr *tokensv1alpha1.TokenRequest) {
			tr.Spec.SecretTemplate = &tokensv1alpha1.SecretTemplate{Labels: map[string]string{"bad key!": "x"}}
		})
		Eventually(readyCondition(ctx, tr)).Should(And(
			HaveField("Reason", tokensv1alpha1.ReasonInvalidSpec),
			HaveField("Message", ContainSubstring("bad key!")),
		))
	})
})

var _ = Describe("The sample TokenRequests", func() {
	It("are accepted by kubectl apply and issued", func(ctx SpecContext) {
		ns := newNamespace(ctx)
		admin, err := testEnv.AddUser(envtest.User{Name: "sample-admin", Groups: []string{"system:masters"}}, nil)
		Expect(err).NotTo(HaveOccurred())
		kubectl, err := admin.Kubectl()
		Expect(err).NotTo(HaveOccurred())
		out, errOut, err := kubectl.Run("apply", "--namespace", ns, "-f",
			filepath.Join("..", "..", "config", "samples", "tokens_v1alpha1_tokenrequest.yaml"))
		Expect(err).NotTo(HaveOccurred(), "stderr: %s", readAll(errOut))
		Expect(readAll(out)).To(ContainSubstring("tokenrequest.tokens.tokenops.io/password-reset created"))

		tr := &tokensv1alpha1.TokenRequest{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "password-reset"}}
		waitFor(ctx, tr, tokensv1alpha1.ReasonIssued)
		s := getSecret(ctx, ns, "password-reset-token")(Default)
		Expect(tokenOf(s)).To(HavePrefix(tr.Status.TokenID + ":"))
		Expect(s.Labels).To(HaveKeyWithValue("app.kubernetes.io/part-of", "accounts"))

		By("applying the rotating and the one-time samples")
		out, errOut, err = kubectl.Run("apply", "--namespace", ns,
			"-f", filepath.Join("..", "..", "config", "samples", "tokens_v1alpha1_tokenrequest_rotating.yaml"),
			"-f", filepath.Join("..", "..", "config", "samples", "tokens_v1alpha1_tokenrequest_onetime.yaml"))
		Expect(err).NotTo(HaveOccurred(), "stderr: %s", readAll(errOut))
		Expect(readAll(out)).To(And(ContainSubstring("service-api-key created"), ContainSubstring("email-confirmation created")))
		rotating := waitFor(ctx, &tokensv1alpha1.TokenRequest{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "service-api-key"}},
			tokensv1alpha1.ReasonIssued)
		Expect(rotating.Status.RenewalTime).To(HaveValue(HaveField("Time",
			BeTemporally("==", rotating.Status.ExpiresAt.Add(-6*time.Hour)))))
		waitFor(ctx, &tokensv1alpha1.TokenRequest{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "email-confirmation"}},
			tokensv1alpha1.ReasonIssued)
		Expect(getSecret(ctx, ns, "email-confirmation")(Default).Annotations).To(HaveKeyWithValue(token.AnnotationUsesLeft, "1"))

		By("showing the renewal time in kubectl get")
		out, errOut, err = kubectl.Run("get", "tokenrequests", "--namespace", ns)
		Expect(err).NotTo(HaveOccurred(), "stderr: %s", readAll(errOut))
		Expect(readAll(out)).To(MatchRegexp(`(?m)^NAME\s+READY\s+STATUS\s+SECRET\s+EXPIRES\s+RENEWS\s+AGE$`))
	})
})

func readAll(r io.Reader) string {
	b, _ := io.ReadAll(r)
	return string(b)
}
