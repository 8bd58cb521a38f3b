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
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	tokensv1alpha1 "github.com/tokenops/token-operator/api/v1alpha1"
	"github.com/tokenops/token-operator/internal/metrics"
	"github.com/tokenops/token-operator/internal/provenance"
	"github.com/tokenops/token-operator/internal/token"
)

// A tenant: a user with every right on Secrets in one namespace and none elsewhere (no
// TokenRequest rights, no HTTP issuing), as the built-in edit role gives. Its namespace holds
// a TokenRequest that someone with TokenRequest rights created there.
var _ = Describe("Provenance: a tenant with Secret rights in its own namespace", Ordered, func() {
	var (
		tenant        client.Client
		ns            string
		victim        *tokensv1alpha1.TokenRequest
		trToken       string // the real TokenRequest's token
		httpToken     string // a real token issued over HTTP
		planted       []*corev1.Secret
		refusedBefore float64
	)

	BeforeAll(func(ctx SpecContext) {
		victim = &tokensv1alpha1.TokenRequest{ObjectMeta: metav1.ObjectMeta{Name: "victim"},
			Spec: tokensv1alpha1.TokenRequestSpec{MaxUses: new(int64(3))}}
		trToken = createTokenRequest(ctx, victim)
		ns = victim.Namespace
		httpToken = issue(apiURL, "")
		Eventually(valid).WithArguments(apiURL, trToken).Should(Equal(answerTrue))

		user, err := testEnv.AddUser(envtest.User{Name: "tenant"}, nil)
		Expect(err).NotTo(HaveOccurred())
		Expect(k8sClient.Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "secrets"},
			Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"*"}}}})).To(Succeed())
		Expect(k8sClient.Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "tenant"},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "secrets"},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, Name: "tenant"}}})).To(Succeed())
		tenant, err = client.New(user.Config(), client.Options{Scheme: scheme})
		Expect(err).NotTo(HaveOccurred())
		Expect(tenant.List(ctx, &tokensv1alpha1.TokenRequestList{}, client.InNamespace(ns))).NotTo(Succeed(), "no TokenRequest rights")
		refusedBefore = testutil.ToFloat64(metrics.UntrustedSecrets.WithLabelValues(ns))
	})

	// plant creates s as the tenant and remembers it.
	plant := func(ctx context.Context, s *corev1.Secret) {
		GinkgoHelper()
		s.ResourceVersion, s.UID = "", ""
		Expect(tenant.Create(ctx, s)).To(Succeed())
		planted = append(planted, s)
	}
	real := func(ctx context.Context) *corev1.Secret {
		GinkgoHelper()
		s, err := secretOf(ctx, ns, "victim")
		Expect(err).NotTo(HaveOccurred())
		return s
	}
	expectRealTokensIntact := func() {
		GinkgoHelper()
		Expect(valid(apiURL, trToken)).To(Equal(answerTrue))
		Expect(valid(apiURL, httpToken)).To(Equal(answerTrue))
		for _, tok := range []string{trToken, httpToken} {
			code, body, _ := call(apiURL, "GET", "/app/token/"+tok[:token.IDLength], "")
			Expect(code).To(Equal(200), body)
			Expect(body).NotTo(ContainSubstring("2099"), "lookup answers the real token, never a planted one")
		}
	}

	It("forges tokens that validate, redeem and shadow nothing", func(ctx SpecContext) {
		chosen := token.Generate()
		trID, httpID := trToken[:token.IDLength], httpToken[:token.IDLength]
		withID := func(id string) token.Token { t := token.Generate(); t.ID = id; return t }
		later := token.Lifetime{IssuedAt: time.Now().UTC().Truncate(time.Second), ExpiresAt: time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC)}
		owner := []metav1.OwnerReference{*metav1.NewControllerRef(victim, tokensv1alpha1.GroupVersion.WithKind("TokenRequest"))}
		forgeries := map[string]token.Token{"forged-tr": chosen, "forged-tr-real-id": withID(trID)}
		for name, tok := range forgeries {
			plant(ctx, token.NewSecret(metav1.ObjectMeta{Namespace: ns, Name: name, OwnerReferences: owner}, token.Template{},
				token.Issued{Token: tok, Lifetime: later, Source: token.SourceTokenRequest, Revision: 9}))
		}
		forgedHTTP := withID(httpID)
		plant(ctx, token.NewHTTPSecret(ns, token.Issued{Token: forgedHTTP, Lifetime: later, Source: token.SourceHTTP}))

		By("copying the real TokenRequest's Secret, sealed as it is, with a later expiry and more uses")
		copied := real(ctx).DeepCopy()
		copied.ObjectMeta = metav1.ObjectMeta{Namespace: ns, Name: "victim-copy", Labels: copied.Labels,
			Annotations: copied.Annotations, OwnerReferences: copied.OwnerReferences}
		copied.Annotations[token.AnnotationExpiresAt] = "2099-01-01T00:00:00Z"
		copied.Annotations[token.AnnotationUsesLeft] = "1000"
		plant(ctx, copied)
		verbatim := real(ctx).DeepCopy()
		verbatim.ObjectMeta = metav1.ObjectMeta{Namespace: ns, Name: "victim-verbatim", Labels: verbatim.Labels,
			Annotations: verbatim.Annotations, OwnerReferences: verbatim.OwnerReferences}
		plant(ctx, verbatim)

		Eventually(func() float64 {
			return testutil.ToFloat64(metrics.UntrustedSecrets.WithLabelValues(ns)) - refusedBefore
		}).Should(BeNumerically(">=", len(planted)), "every planted Secret is counted in its namespace")
		for _, tok := range []token.Token{chosen, forgeries["forged-tr-real-id"], forgedHTTP} {
			Expect(valid(apiURL, tok.String())).To(Equal(answerFalse), "a forged token")
			Expect(redeem(apiURL, tok.String())).To(Equal(answerFalse), "a forged token")
		}
		code, _, _ := call(apiURL, "GET", "/app/token/"+chosen.ID, "")
		Expect(code).To(Equal(404))
		expectRealTokensIntact()
	})

	It("rolls the real Secret back to before a redemption, and restores it after its last use: no use is regained", func(ctx SpecContext) {
		Expect(redeem(apiURL, trToken)).To(Equal(answerTrue))
		Eventually(func(g Gomega) *int64 {
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(victim), victim)).To(Succeed())
			return victim.Status.UsesLeft
		}).Should(HaveValue(BeEquivalentTo(2)))

		By("restoring the Secret to its version before the redemption (3 uses left)")
		live := real(ctx)
		older := live.DeepCopy()
		older.Annotations[token.AnnotationUsesLeft] = "3"
		Expect(tenant.Update(ctx, older)).To(Succeed())
		Expect(redeem(apiURL, trToken)).To(Equal(answerTrue))
		Expect(redeem(apiURL, trToken)).To(Equal(answerTrue))
		Expect(redeem(apiURL, trToken)).To(Equal(answerFalse), "3 uses in all, as the status counts them, whatever the Secret says")
		Eventually(valid).WithArguments(apiURL, trToken).Should(Equal(answerFalse))

		By("restoring the spent token's Secret after the operator deleted it")
		Eventually(func() error { _, err := secretOf(ctx, ns, "victim"); return err }).ShouldNot(Succeed())
		restored := older.DeepCopy()
		restored.ObjectMeta = metav1.ObjectMeta{Namespace: ns, Name: "victim", Labels: older.Labels,
			Annotations: older.Annotations, OwnerReferences: older.OwnerReferences}
		plant(ctx, restored)
		Consistently(func() []string {
			return []string{valid(apiURL, trToken), redeem(apiURL, trToken)}
		}).WithTimeout(2*time.Second).Should(HaveEach(answerFalse), "a spent token stays spent: its status says so")
	})

	It("never changes or deletes a Secret it did not write as it is", func(ctx SpecContext) {
		versions := map[string]string{}
		for _, s := range planted {
			versions[s.Name] = s.ResourceVersion
		}
		Consistently(func(g Gomega) {
			for name, rv := range versions {
				s := &corev1.Secret{}
				g.Expect(k8sClient.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, s)).To(Succeed())
				g.Expect(s.ResourceVersion).To(Equal(rv), name)
			}
		}).WithTimeout(3 * time.Second).Should(Succeed())
		Expect(valid(apiURL, httpToken)).To(Equal(answerTrue))
		code, _, _ := call(apiURL, "DELETE", "/app/clear/all/tokens", "")
		Expect(code).To(Equal(200))
		for name := range versions {
			Expect(k8sClient.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, &corev1.Secret{})).To(Succeed(), "clear leaves %s", name)
		}
	})
})

var _ = Describe("The key Secret", func() {
	It("is created on the first start, admits the unsealed HTTP Secrets created before it, and is never made anew while sealed tokens exist", func(ctx SpecContext) {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "keys-"}}
		Expect(k8sClient.Create(ctx, ns)).To(Succeed())
		legacy := token.NewHTTPSecret(ns.Name, token.Issued{Token: token.Generate(), Lifetime: token.NewLifetime(time.Now(), time.Hour),
			Source: token.SourceHTTP})
		Expect(k8sClient.Create(ctx, legacy)).To(Succeed(), "as a version before sealing wrote it")
		// The API server's clock has whole seconds: the key Secret must be a second younger.
		Eventually(func() bool { return time.Since(legacy.CreationTimestamp.Time) > time.Second }).WithTimeout(3 * time.Second).Should(BeTrue())

		// The namespace's half of the evidence: the other specs' TokenRequests, sealed by the
		// suite's key, are evidence of that key (see the end).
		keys := &provenance.Keys{Client: k8sClient, Secret: types.NamespacedName{Namespace: ns.Name, Name: provenance.DefaultKeySecretName},
			Evidence: provenance.HTTPEvidence(k8sClient, ns.Name), Log: GinkgoLogr}
		ring, err := keys.Load(ctx)
		Expect(err).NotTo(HaveOccurred(), "the first start: no sealed token anywhere it looks")
		check := provenance.NewChecker(ring, ns.Name)
		verdict := func(s *corev1.Secret) provenance.Verdict {
			rec, _ := token.RecordOf(s)
			return check.Check(s, &rec, nil)
		}
		Expect(verdict(legacy)).To(HaveField("Admit", true), "an HTTP Secret of the earlier version keeps validating")
		planted := token.NewHTTPSecret(ns.Name, token.Issued{Token: token.Generate(), Lifetime: token.NewLifetime(time.Now(), time.Hour),
			Source: token.SourceHTTP})
		Expect(k8sClient.Create(ctx, planted)).To(Succeed())
		Expect(verdict(planted)).To(HaveField("Reason", provenance.ReasonUnsealed), "an unsealed one created since is not")

		By("deleting the key Secret once a sealed token exists")
		sealed := token.NewHTTPSecret(ns.Name, token.Issued{Token: token.Generate(), Lifetime: token.NewLifetime(time.Now(), time.Hour),
			Source: token.SourceHTTP})
		ring.Seal(sealed)
		Expect(k8sClient.Create(ctx, sealed)).To(Succeed())
		Expect(k8sClient.Delete(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: provenance.DefaultKeySecretName}})).To(Succeed())
		_, err = keys.Load(ctx)
		Expect(err).To(MatchError(provenance.ErrKeysLost))
		Expect(err.Error()).To(ContainSubstring("Secret " + ns.Name + "/" + sealed.Name))
		Expect(k8sClient.Get(ctx, keys.Secret, &corev1.Secret{})).NotTo(Succeed(), "no key made anew")

		By("recovering on purpose with --key-secret-recreate")
		keys.Recreate = true
		fresh, err := keys.Load(ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(fresh.Verify(sealed)).To(MatchError(provenance.ErrBadSeal), "tokens sealed with the lost key stop validating")

		By("finding a TokenRequest's sealed Secret as evidence too")
		createTokenRequest(ctx, &tokensv1alpha1.TokenRequest{ObjectMeta: metav1.ObjectMeta{Name: "evidence"}})
		found, err := provenance.Evidence(k8sClient, ns.Name+"-none")(ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(found).To(ContainSubstring(" of TokenRequest "))
	})
})
