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
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// prometheusOperatorModule holds the Prometheus Operator's CRDs (ServiceMonitor,
// PrometheusRule) in example/prometheus-operator-crd; the Go module proxy serves it.
const prometheusOperatorModule = "github.com/prometheus-operator/prometheus-operator@v0.88.0"

var _ = Describe("The Helm chart", Ordered, func() {
	BeforeAll(func(ctx SpecContext) {
		By("installing the Prometheus Operator's ServiceMonitor and PrometheusRule CRDs from " + prometheusOperatorModule)
		dir := moduleDir(ctx, prometheusOperatorModule)
		for _, kind := range []string{"servicemonitors", "prometheusrules"} {
			mustKubectl("apply", "--server-side", "-f",
				filepath.Join(dir, "example", "prometheus-operator-crd", "monitoring.coreos.com_"+kind+".yaml"))
		}
		mustKubectl("wait", "--for=condition=Established", "crd/servicemonitors.monitoring.coreos.com",
			"crd/prometheusrules.monitoring.coreos.com", "--timeout=60s")
		mustKubectl("create", "priorityclass", "token-operator-e2e", "--value=1000")
		DeferCleanup(func() {
			_, _ = kubectl("delete", "priorityclass", "token-operator-e2e")
			_, _ = kubectl("delete", "crd", "servicemonitors.monitoring.coreos.com", "prometheusrules.monitoring.coreos.com", "--wait=false")
		})
	})

	DescribeTable("renders objects the API server accepts in a server-side dry run",
		func(ctx SpecContext, release string, helmArgs []string, want []string, absent []string) {
			ns := newNamespace(ctx)
			rendered := mustHelm(append([]string{"template", release, "charts/token-operator", "--namespace", ns}, helmArgs...)...)
			file := filepath.Join(workDir, "chart-"+ns+".yaml")
			Expect(os.WriteFile(file, []byte(rendered), 0o600)).To(Succeed())
			out := mustKubectl("apply", "--dry-run=server", "-f", file)
			for _, kind := range want {
				Expect(out).To(ContainSubstring(kind + "/"))
			}
			for _, kind := range absent {
				Expect(out).NotTo(ContainSubstring(kind + "/"))
			}
		},
		Entry("default values: monitoring off although the cluster serves monitoring.coreos.com (helm template does not ask it)",
			"token-operator", []string{}, []string{"customresourcedefinition.apiextensions.k8s.io", "clusterrole.rbac.authorization.k8s.io",
				"clusterrolebinding.rbac.authorization.k8s.io", "role.rbac.authorization.k8s.io", "rolebinding.rbac.authorization.k8s.io",
				"serviceaccount", "service", "deployment.apps", "poddisruptionbudget.policy", "networkpolicy.networking.k8s.io"},
			[]string{"servicemonitor.monitoring.coreos.com", "prometheusrule.monitoring.coreos.com", "configmap",
				"validatingadmissionpolicy.admissionregistration.k8s.io"}),
		Entry("every optional value on (charts/token-operator/ci/all-values.yaml)",
			"token-operator", []string{"-f", "charts/token-operator/ci/all-values.yaml"},
			[]string{"customresourcedefinition.apiextensions.k8s.io", "deployment.apps", "service", "poddisruptionbudget.policy",
				"networkpolicy.networking.k8s.io", "servicemonitor.monitoring.coreos.com", "prometheusrule.monitoring.coreos.com",
				"configmap", "validatingadmissionpolicy.admissionregistration.k8s.io",
				"validatingadmissionpolicybinding.admissionregistration.k8s.io"}, nil),
		// --dry-run=server asks the cluster for its API versions, as helm install does, and
		// refuses to take over objects it did not create: the CRD is left out, and another
		// release name keeps clear of the suite's own RBAC (config/default's names).
		Entry("monitoring auto, with the cluster's API versions (as helm install sees them), CRD managed elsewhere",
			"e2e", []string{"--dry-run=server", "--set", "crds.enabled=false"},
			[]string{"servicemonitor.monitoring.coreos.com", "prometheusrule.monitoring.coreos.com", "deployment.apps"},
			[]string{"customresourcedefinition.apiextensions.k8s.io", "configmap"}),
	)
})

// mustHelm runs helm (HELM, which make test-e2e sets, else bin/helm) from the repository root
// against the local control plane.
func mustHelm(args ...string) string {
	GinkgoHelper()
	bin := os.Getenv("HELM")
	if bin == "" {
		bin = filepath.Join("bin", "helm")
	}
	cmd := exec.Command(bin, append([]string{"--kubeconfig", cluster.KubeconfigPath}, args...)...)
	cmd.Dir = filepath.Join("..", "..")
	out, err := cmd.Output()
	var stderr []byte
	if exit := (*exec.ExitError)(nil); errors.As(err, &exit) {
		stderr = exit.Stderr
	}
	Expect(err).NotTo(HaveOccurred(), "helm %s: %s", strings.Join(args, " "), stderr)
	return string(out)
}

// moduleDir downloads a Go module (from the module proxy, into the module cache) and returns its
// folder.
func moduleDir(ctx SpecContext, module string) string {
	GinkgoHelper()
	cmd := exec.CommandContext(ctx, "go", "mod", "download", "-json", module)
	cmd.Dir = GinkgoT().TempDir() // outside this module: nothing is added to its go.sum
	out, err := cmd.Output()
	Expect(err).NotTo(HaveOccurred(), string(out))
	var m struct{ Dir string }
	Expect(json.Unmarshal(out, &m)).To(Succeed())
	Expect(m.Dir).NotTo(BeEmpty())
	return m.Dir
}
