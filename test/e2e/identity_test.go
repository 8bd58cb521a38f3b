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
	"os"
	"path/filepath"
	"slices"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"

	"github.com/tokenops/token-operator/test/utils"
)

// The replicas run as config/default's service account, with config/default's RBAC and
// nothing more: what a cluster install grants is what the suite tests.
const (
	operatorNamespace      = "token-operator-system"
	operatorServiceAccount = "system:serviceaccount:" + operatorNamespace + ":token-operator-controller-manager"
)

// rbacKinds are the kinds of config/default that grant the operator what it may do.
var rbacKinds = []string{"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}

// shippedRBAC renders config/default (with the restart-targets component turned on, as its
// comment says to, when restartTargets) and returns its service account, roles and bindings
// as one YAML stream.
func shippedRBAC(restartTargets bool) string {
	GinkgoHelper()
	dir, err := utils.CopyConfig(filepath.Join("..", "..", "config"), GinkgoT().TempDir(), restartTargets)
	Expect(err).NotTo(HaveOccurred())
	objs, err := utils.DecodeObjects([]byte(mustKubectl("kustomize", dir)))
	Expect(err).NotTo(HaveOccurred())
	var out []string
	for _, u := range objs {
		if slices.Contains(rbacKinds, u.GetKind()) {
			b, err := yaml.Marshal(u.Object)
			Expect(err).NotTo(HaveOccurred())
			out = append(out, string(b))
		}
	}
	return strings.Join(out, "---\n")
}

// applyYAML applies a YAML stream with the real kubectl.
func applyYAML(name, manifest string) string {
	GinkgoHelper()
	file := filepath.Join(workDir, name+".yaml")
	Expect(os.WriteFile(file, []byte(manifest), 0o600)).To(Succeed())
	return mustKubectl("apply", "-f", file)
}

// installOperatorIdentity creates the operator's namespace, service account and RBAC as
// config/default has them, and writes a kubeconfig that acts as that service account (the
// suite's admin credentials impersonating it), for the replicas.
func installOperatorIdentity() string {
	GinkgoHelper()
	mustKubectl("create", "namespace", operatorNamespace)
	applyYAML("rbac", shippedRBAC(false))
	cfg, err := clientcmd.LoadFromFile(cluster.KubeconfigPath)
	Expect(err).NotTo(HaveOccurred())
	for _, auth := range cfg.AuthInfos {
		auth.Impersonate = operatorServiceAccount
	}
	path := filepath.Join(workDir, "operator.kubeconfig")
	Expect(clientcmd.WriteToFile(*cfg, path)).To(Succeed())
	Expect(mustKubectl("--kubeconfig", path, "auth", "whoami", "-o", "jsonpath={.status.userInfo.username}")).
		To(Equal(operatorServiceAccount))
	return path
}

// canI asks the API server whether the operator's service account may do verb on resource.
func canI(verb, resource string) bool {
	out, _ := kubectl("auth", "can-i", verb, resource, "--as", operatorServiceAccount, "-n", "default")
	return strings.HasPrefix(out, "yes")
}
