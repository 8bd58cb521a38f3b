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
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/util/rand"
	"sigs.k8s.io/yaml"

	tokensv1alpha1 "github.com/tokenops/token-operator/api/v1alpha1"
	"github.com/tokenops/token-operator/internal/token"
	"github.com/tokenops/token-operator/test/utils"
)

// The shipped admission policy as config/default names it, and the start of every refusal.
const (
	admissionPolicy = "token-operator-token-secrets"
	refusedByPolicy = "ValidatingAdmissionPolicy '" + admissionPolicy + "' with binding '" + admissionPolicy +
		"' denied request: only " + operatorServiceAccount + " may create a Secret of type tokens.tokenops.io/token"
	// tenant may do anything with Secrets in the spec's namespace and nothing else (the built-in
	// edit role is empty here: its rules are aggregated by a controller the suite does not run).
	tenant = "tenant@example.com"
)

// shippedAdmissionPolicy renders config/default with the admission-policy component turned on,
// as its comment says to, and returns its ValidatingAdmissionPolicy and binding as one YAML
// stream.
func shippedAdmissionPolicy() string {
	GinkgoHelper()
	dir, err := utils.CopyConfig(filepath.Join("..", "..", "config"), GinkgoT().TempDir(), false)
	Expect(err).NotTo(HaveOccurred())
	Expect(utils.EnableComponent(dir, "admission-policy")).To(Succeed())
	objs, err := utils.DecodeObjects([]byte(mustKubectl("kustomize", dir)))
	Expect(err).NotTo(HaveOccurred())
	var out []string
	for _, u := range objs {
		if slices.Contains([]string{"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"}, u.GetKind()) {
			b, err := yaml.Marshal(u.Object)
			Expect(err).NotTo(HaveOccurred())
			out = append(out, string(b))
		}
	}
	Expect(out).To(HaveLen(2))
	return strings.Join(out, "---\n")
}

// asTenant runs kubectl as the tenant.
func asTenant(args ...string) (string, error) {
	return kubectl(append([]string{"--as", tenant}, args...)...)
}

// applyAsTenant applies one manifest as the tenant in ns.
func applyAsTenant(ns, name, manifest string) (string, error) {
	GinkgoHelper()
	file := filepath.Join(workDir, ns+"-"+name+".yaml")
	Expect(os.WriteFile(file, []byte(manifest), 0o600)).To(Succeed())
	return asTenant("apply", "-n", ns, "-f", file)
}

// tokenTypeDryRun asks the API server, as the tenant and without writing anything, to create a
// Secret of the token type in ns: refused exactly while the policy is in force.
func tokenTypeDryRun(ns string) (string, error) {
	return asTenant("create", "secret", "generic", "dry-run-probe", "-n", ns, "--type=tokens.tokenops.io/token",
		"--from-literal=token=forged", "--dry-run=server")
}

var _ = Describe("The admission policy", Ordered, func() {
	var ns string

	BeforeAll(func(ctx SpecContext) {
		ns = newNamespace(ctx)
		mustKubectl("create", "role", "secrets", "-n", ns, "--verb=get,list,watch,create,update,patch,delete", "--resource=secrets")
		mustKubectl("create", "rolebinding", "tenant-secrets", "-n", ns, "--role=secrets", "--user="+tenant)

		By("applying the ValidatingAdmissionPolicy and its binding as config/default renders them with the component")
		DeferCleanup(func() {
			By("removing the policy, so that every other spec runs without it")
			mustKubectl("delete", "--ignore-not-found", "-f", filepath.Join(workDir, "admission-policy.yaml"))
			Eventually(func() (string, error) { return tokenTypeDryRun(ns) }).
				WithTimeout(30 * time.Second).Should(ContainSubstring("created (server dry run)"))
		})
		applyYAML("admission-policy", shippedAdmissionPolicy())
		// The API server compiles a new policy and sees its binding through informers.
		Eventually(func() string { out, _ := tokenTypeDryRun(ns); return out }).
			WithTimeout(30 * time.Second).Should(ContainSubstring(refusedByPolicy))
	})

	It("refuses a tenant's Secret of the token type or with the operator's labels, and passes others", func() {
		for name, meta := range map[string]string{
			"forged-type":       "type: tokens.tokenops.io/token\nmetadata: {name: forged-type}",
			"forged-managed-by": "metadata: {name: forged-managed-by, labels: {app.kubernetes.io/managed-by: token-operator}}",
			"forged-token-id":   "metadata: {name: forged-token-id, labels: {tokens.tokenops.io/token-id: 0123456789abcdef}}",
			"forged-source":     "metadata: {name: forged-source, labels: {tokens.tokenops.io/source: http}}",
			"forged-code":       "type: tokens.tokenops.io/one-time-code\nmetadata: {name: forged-code}",
			"forged-slice":      "type: tokens.tokenops.io/token-slice\nmetadata: {name: forged-slice}",
		} {
			out, err := applyAsTenant(ns, name, "apiVersion: v1\nkind: Secret\n"+meta+"\nstringData: {token: 0123456789abcdef:FORGED}\n")
			Expect(err).To(HaveOccurred(), name)
			Expect(out).To(ContainSubstring(refusedByPolicy), name)
		}
		Expect(mustKubectl("get", "secrets", "-n", ns, "-o", "name")).NotTo(ContainSubstring("forged"))

		By("a Secret of another type and another tool's managed-by is the tenant's business")
		out, err := applyAsTenant(ns, "helm-like", "apiVersion: v1\nkind: Secret\n"+
			"metadata: {name: helm-like, labels: {app.kubernetes.io/managed-by: Helm}}\nstringData: {a: b}\n")
		Expect(err).NotTo(HaveOccurred(), out)
		out, err = asTenant("label", "secret", "helm-like", "-n", ns, "tier=web")
		Expect(err).NotTo(HaveOccurred(), out)

		By("but putting the operator's label on it is refused")
		out, err = asTenant("label", "secret", "helm-like", "-n", ns, "--overwrite", "app.kubernetes.io/managed-by=token-operator")
		Expect(err).To(HaveOccurred())
		Expect(out).To(ContainSubstring(refusedByPolicy))
	})

	It("passes the operator's writes: a TokenRequest becomes Ready and rotates; HTTP tokens issue and redeem", func() {
		mustKubectl("apply", "-n", ns, "-f", "config/samples/tokens_v1alpha1_tokenrequest.yaml")
		mustKubectl("wait", "-n", ns, "--for=condition=Ready", "tokenrequest/password-reset", "--timeout=60s")
		first := secretToken(ns, "password-reset-token")
		Expect(validate(replicas[1], first)).To(Equal(answerTrue))

		By("a rotation updates the Secret")
		mustKubectl("annotate", "-n", ns, "tokenrequest/password-reset", tokensv1alpha1.AnnotationRotate+"=admission")
		Eventually(func() string { return secretToken(ns, "password-reset-token") }).WithTimeout(30 * time.Second).ShouldNot(Equal(first))
		second := secretToken(ns, "password-reset-token")
		Eventually(func() (string, error) { return validate(replicas[0], second) }).Should(Equal(answerTrue))

		By("an HTTP token issues on one replica and a use is redeemed on the other (an update of its Secret)")
		tok := issue(replicas[0], `{"max_uses":2}`)
		Eventually(func() (string, error) { return validate(replicas[1], tok) }).Should(Equal(answerTrue))
		Expect(redeem(replicas[1], tok)).To(Equal(answerTrue))
		_, record, err := sliceOf(context.Background(), tok)
		Expect(err).NotTo(HaveOccurred())
		Expect(record.UsesLeft).To(BeEquivalentTo(1), "a patch of its record in its slice")

		By("a one-time code issues (a create, then an update of its Secret) and verifies after a wrong one (two updates)")
		subject := "admission-" + rand.String(8)
		firstCode := issueCode(replicas[0], `{"subject":"`+subject+`"}`)
		c := issueCode(replicas[1], `{"subject":"`+subject+`"}`)
		Expect(firstCode).To(MatchRegexp(`^[0-9]{6}$`))
		Expect(verifyCode(replicas[0], subject, "", anotherCode(c))).To(Equal(answerFalse))
		Expect(verifyCode(replicas[1], subject, "", c)).To(Equal(answerTrue))
	})

	It("refuses a tenant's (and an admin's) edit of a real token Secret, and lets the tenant delete it (the operator reissues)", func() {
		tok := secretToken(ns, "password-reset-token")
		version := mustKubectl("get", "secret", "password-reset-token", "-n", ns, "-o", "jsonpath={.metadata.resourceVersion}")
		for what, args := range map[string][]string{
			"a label":                 {"label", "secret", "password-reset-token", "-n", ns, "tier=web"},
			"a later expiry":          {"annotate", "secret", "password-reset-token", "-n", ns, "--overwrite", "tokens.tokenops.io/expires-at=2099-01-01T00:00:00Z"},
			"the managed-by label":    {"label", "secret", "password-reset-token", "-n", ns, "app.kubernetes.io/managed-by-"},
			"a token of its choosing": {"patch", "secret", "password-reset-token", "-n", ns, "-p", `{"stringData":{"token":"` + strings.SplitN(tok, ":", 2)[0] + `:CHOSEN"}}`},
			"a finalizer":             {"patch", "secret", "password-reset-token", "-n", ns, "--type=merge", "-p", `{"metadata":{"finalizers":["example.com/keep"]}}`},
		} {
			out, err := asTenant(args...)
			Expect(err).To(HaveOccurred(), what)
			Expect(out).To(ContainSubstring(refusedByPolicy), what)
		}
		By("a cluster admin is refused too (deleting the binding is the way around it)")
		out, err := kubectl("label", "secret", "password-reset-token", "-n", ns, "tier=web")
		Expect(err).To(HaveOccurred())
		Expect(out).To(ContainSubstring(refusedByPolicy))
		Expect(mustKubectl("get", "secret", "password-reset-token", "-n", ns, "-o", "jsonpath={.metadata.resourceVersion}")).To(Equal(version))
		Expect(validate(replicas[0], tok)).To(Equal(answerTrue))

		By("deleting it is revocation by hand, and the operator reissues the TokenRequest's token")
		out, err = asTenant("delete", "secret", "password-reset-token", "-n", ns)
		Expect(err).NotTo(HaveOccurred(), out)
		Eventually(func() (string, error) { return validate(replicas[1], tok) }).Should(Equal(answerFalse))
		Eventually(func() error {
			_, err := kubectl("get", "secret", "password-reset-token", "-n", ns)
			return err
		}).WithTimeout(30 * time.Second).Should(Succeed())
		reissued := secretToken(ns, "password-reset-token")
		Expect(reissued).NotTo(Equal(tok))
		Eventually(func() (string, error) { return validate(replicas[1], reissued) }).Should(Equal(answerTrue))
	})

	It("lets a Secret writer of --http-namespace remove a token's record from its slice by hand, and change nothing else", func(ctx SpecContext) {
		mustKubectl("create", "role", "tenant-http-secrets", "-n", "default", "--verb=get,list,patch", "--resource=secrets")
		mustKubectl("create", "rolebinding", "tenant-http-secrets", "-n", "default", "--role=tenant-http-secrets", "--user="+tenant)
		DeferCleanup(func() {
			mustKubectl("delete", "-n", "default", "rolebinding/tenant-http-secrets", "role/tenant-http-secrets")
		})
		tok := issue(replicas[0], `{"ttl":"10m"}`)
		Eventually(func() (string, error) { return validate(replicas[1], tok) }).Should(Equal(answerTrue))
		slice, record, err := sliceOf(ctx, tok)
		Expect(err).NotTo(HaveOccurred())
		id := record.ID.String()
		patch := func(op, key string, r token.SliceRecord) (string, error) {
			value := ""
			if op != "remove" {
				value = `,"value":"` + base64.StdEncoding.EncodeToString(token.AppendSliceRecord(nil, r)) + `"`
			}
			return asTenant("patch", "secret", slice.Name, "-n", "default", "--type=json",
				"-p", `[{"op":"`+op+`","path":"/data/`+key+`"`+value+`}]`)
		}

		By("a record edited (a longer life) or added is refused")
		longer := record
		longer.ExpiresAt += 3600
		out, err := patch("replace", id, longer)
		Expect(err).To(HaveOccurred())
		Expect(out).To(ContainSubstring(refusedByPolicy))
		out, err = patch("add", "0123456789abcdef", record)
		Expect(err).To(HaveOccurred())
		Expect(out).To(ContainSubstring(refusedByPolicy))

		By("its record removed: revoked on both replicas")
		out, err = patch("remove", id, record)
		Expect(err).NotTo(HaveOccurred(), out)
		for _, r := range replicas {
			Eventually(func() (string, error) { return validate(r, tok) }).Should(Equal(answerFalse), r.name)
		}
	})
})
