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
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/tokenops/token-operator/api/v1alpha1"
)

var _ = Describe("The kubectl plugin", func() {
	var pluginDir string

	BeforeEach(func() {
		pluginDir = filepath.Join(workDir, "plugins")
		build := exec.Command("go", "build", "-o", filepath.Join(pluginDir, "kubectl-tokenops"), "./cmd/kubectl-tokenops")
		build.Dir = filepath.Join("..", "..")
		build.Stdout, build.Stderr = GinkgoWriter, GinkgoWriter
		Expect(build.Run()).To(Succeed())
	})

	// plugin runs the real kubectl with the plugin's folder on PATH, as a user who installed it;
	// kubectl passes only the arguments after the plugin's name, so the kubeconfig comes from
	// KUBECONFIG.
	plugin := func(args ...string) (string, error) {
		cmd := exec.Command(filepath.Join(binDir, "kubectl"), args...)
		cmd.Dir = filepath.Join("..", "..")
		cmd.Env = append(os.Environ(), "KUBECONFIG="+cluster.KubeconfigPath, "PATH="+pluginDir+":"+os.Getenv("PATH"))
		out, err := cmd.CombinedOutput()
		GinkgoWriter.Printf("$ kubectl %s\n%s", strings.Join(args, " "), out)
		return string(out), err
	}
	mustPlugin := func(args ...string) string {
		GinkgoHelper()
		out, err := plugin(args...)
		Expect(err).NotTo(HaveOccurred(), out)
		return out
	}

	It("is found by kubectl and issues, shows, rotates and checks", func(ctx SpecContext) {
		Expect(mustPlugin("plugin", "list")).To(ContainSubstring(filepath.Join(pluginDir, "kubectl-tokenops")))

		ns := newNamespace(ctx)
		out := mustPlugin("tokenops", "issue", "demo", "--ttl", "5m", "--wait", "-n", ns)
		Expect(out).To(MatchRegexp(`^tokenrequest.tokens.tokenops.io/demo ready: secret/demo holds the token, expires \S+ \(in 4m5\ds\)\n$`))
		tr := &tokensv1alpha1.TokenRequest{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "demo"}, tr)).To(Succeed())
		Expect(tr.Spec.TTL.Duration.String()).To(Equal("5m0s"))
		first := secretToken(ns, "demo")
		remember(first)

		out = mustPlugin("tokenops", "status", "demo", "-n", ns)
		Expect(out).To(MatchRegexp(`Ready:\s+True \(Issued\)`))
		Expect(out).To(MatchRegexp(`Token ID:\s+` + tr.Status.TokenID))
		Expect(out).To(MatchRegexp(`Revision:\s+1\n`))
		Expect(out).To(MatchRegexp(`Renews:\s+never \(no spec.rotation\)`))
		Expect(out).To(MatchRegexp(`Events:\n\s+\S+ ago\s+Normal\s+\w+`))
		Expect(out).NotTo(ContainSubstring(first))

		out = mustPlugin("tokenops", "rotate", "demo", "-n", ns)
		Expect(out).To(HavePrefix("tokenrequest.tokens.tokenops.io/demo rotated: revision 2, secret/demo"))
		Expect(secretToken(ns, "demo")).NotTo(Equal(first))
		remember(secretToken(ns, "demo"))
		Expect(mustPlugin("tokenops", "status", "demo", "-n", ns)).To(MatchRegexp(`Revision:\s+2\n`))

		out = mustPlugin("tokenops", "check", "api", "-n", ns, "--operator-namespace", operatorNamespace)
		Expect(out).To(ContainSubstring("The token-operator API is ready"))
		Expect(out).To(MatchRegexp(`operator leader \S+`))

		By("a limited-use token for a subject and purpose printed for a script, and bad flags refused by name")
		tok := strings.TrimSpace(mustPlugin("tokenops", "issue", "reset", "--ttl", "10m", "--max-uses", "1", "--subject", "user-42",
			"--purpose", "password-reset", "--metadata", "ip=203.0.113.7", "--print-token", "-n", ns))
		remember(tok)
		Expect(tok).To(Equal(secretToken(ns, "reset")))
		Expect(mustPlugin("tokenops", "status", "reset", "-n", ns)).To(And(MatchRegexp(`Uses left:\s+1 of 1\n`),
			MatchRegexp(`Subject:\s+user-42\n`), MatchRegexp(`Purpose:\s+password-reset\n`)))
		Eventually(call).WithArguments(replicas[0], http.MethodGet, "/app/valid/"+tok+"?purpose=password-reset", "", "").
			Should(Equal(`{"status_code":200,"status":true}`))
		Expect(call(replicas[1], http.MethodGet, "/app/valid/"+tok, "", "")).To(Equal(`{"status_code":200,"status":false}`),
			"a password-reset token asked without its purpose")
		out, err := plugin("tokenops", "issue", "bad-purpose", "--purpose", "Password Reset", "-n", ns)
		Expect(err).To(HaveOccurred())
		Expect(out).To(ContainSubstring("spec.purpose: Invalid value"))
		out, err = plugin("tokenops", "issue", "bad", "--ttl", "1m", "--rotate-before", "2m", "-n", ns)
		Expect(err).To(HaveOccurred())
		Expect(out).To(ContainSubstring("--rotate-before must be positive and shorter than --ttl"))
		out, err = plugin("tokenops", "check", "api", "--operator-namespace", "nowhere", "--timeout", "2s")
		Expect(err).To(HaveOccurred())
		Expect(out).To(ContainSubstring("not ready after 2s: no operator leader election Lease"))
	})

	It("revokes a token issued over HTTP by its id, on every replica", func() {
		tok := issue(replicas[0], `{"ttl":"10m"}`)
		id, _, _ := strings.Cut(tok, ":")
		Eventually(validate).WithArguments(replicas[1], tok).Should(Equal(answerTrue))
		Expect(mustPlugin("tokenops", "revoke", id, "-n", "default")).To(MatchRegexp(`^token ` + id + ` revoked \(secret/slice-[0-9a-f]{16}-\d+-\d+\)\n$`))
		for _, r := range replicas {
			Eventually(validate).WithArguments(r, tok).Should(Equal(answerFalse), r.name)
		}
		out, err := plugin("tokenops", "revoke", id, "-n", "default")
		Expect(err).To(HaveOccurred())
		Expect(out).To(ContainSubstring("no token with this id in namespace default: " + id))
		out, err = plugin("tokenops", "revoke", tok, "-n", "default")
		Expect(err).To(HaveOccurred())
		Expect(out).To(ContainSubstring("is not a token id"))
	})
})
