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

// Package chart_test checks that the Helm chart and the kustomize configuration render the
// same operator: make test runs it with helm (HELM) and kubectl (in KUBEBUILDER_ASSETS).
package chart_test

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/tokenops/token-operator/test/utils"
)

const (
	root      = "../.."
	chart     = root + "/charts/token-operator"
	release   = "token-operator"
	namespace = "token-operator-system"
)

// compared are, per kind, the fields that must be equal in both renderings: what the
// operator runs with and what it may do. Labels and selectors differ by design (Helm's
// standard labels, an instance label in the chart's selectors).
var compared = map[string][][]string{
	"CustomResourceDefinition": {{"spec"}},
	"ClusterRole":              {{"rules"}},
	"Role":                     {{"rules"}},
	"ClusterRoleBinding":       {{"roleRef"}, {"subjects"}},
	"RoleBinding":              {{"roleRef"}, {"subjects"}},
	"ServiceAccount":           nil,
	"Service":                  {{"spec", "ports"}},
	"PodDisruptionBudget":      {{"spec", "minAvailable"}},
	"NetworkPolicy":            {{"spec", "policyTypes"}, {"spec", "ingress"}},
	"Deployment": {
		{"spec", "replicas"}, {"spec", "strategy"},
		{"spec", "template", "spec", "securityContext"},
		{"spec", "template", "spec", "serviceAccountName"},
		{"spec", "template", "spec", "terminationGracePeriodSeconds"},
		{"spec", "template", "metadata", "annotations"},
	},
	"ServiceMonitor": {{"spec", "endpoints"}},
	"PrometheusRule": {{"spec"}},

	// The whole admission policy and binding: the binding's paramRef is the operator's
	// ServiceAccount, so a wrong name or namespace shows here.
	"ValidatingAdmissionPolicy":        {{"spec"}},
	"ValidatingAdmissionPolicyBinding": {{"spec"}},
}

// containerFields are compared for each container of a Deployment, by container name.
var containerFields = [][]string{
	{"command"}, {"args"}, {"env"}, {"image"}, {"ports"}, {"securityContext"},
	{"livenessProbe"}, {"readinessProbe"}, {"resources"},
}

// readInputs reads every file both tools render from, so that go test's cache (which sees
// only the files the test opens, not helm's or kubectl's) reruns the tests when one changes.
func readInputs(t *testing.T) {
	t.Helper()
	for _, dir := range []string{chart, root + "/config"} {
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			_, err = os.ReadFile(path)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestChartMatchesKustomize(t *testing.T) {
	readInputs(t)
	for _, tc := range []struct {
		name      string
		kustomize string
		helmArgs  []string
		// onlyKustomize are kinds the chart leaves to Helm itself (the namespace:
		// helm install --create-namespace).
		onlyKustomize []string
	}{
		{name: "config/default and the default values", kustomize: root + "/config/default",
			onlyKustomize: []string{"Namespace"}},
		{name: "config/default with the restart-targets component and restartTargets.enabled", kustomize: withRestartTargets(t),
			helmArgs: []string{"--set", "restartTargets.enabled=true"}, onlyKustomize: []string{"Namespace"}},
		{name: "config/default with the admission-policy component and admissionPolicy.enabled", kustomize: withComponent(t, "admission-policy"),
			helmArgs: []string{"--set", "admissionPolicy.enabled=true"}, onlyKustomize: []string{"Namespace"}},
		{name: "config/prometheus and the monitoring values", kustomize: prometheusOverlay(t),
			helmArgs: []string{"--set", "metrics.serviceMonitor.enabled=true", "--set", "metrics.prometheusRule.enabled=true",
				"--show-only", "templates/servicemonitor.yaml", "--show-only", "templates/prometheusrule.yaml"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fromKustomize := decode(t, run(t, kubectl(t), "kustomize", tc.kustomize))
			fromHelm := decode(t, run(t, helm(t), append([]string{"template", release, chart, "--namespace", namespace}, tc.helmArgs...)...))

			for key, k := range fromKustomize {
				if slices.Contains(tc.onlyKustomize, k.GetKind()) {
					delete(fromKustomize, key)
				}
			}
			if diff := cmp.Diff(sortedKeys(fromKustomize), sortedKeys(fromHelm)); diff != "" {
				t.Fatalf("the objects differ (-kustomize +helm):\n%s", diff)
			}
			for key, k := range fromKustomize {
				h := fromHelm[key]
				fields, ok := compared[k.GetKind()]
				if !ok {
					t.Errorf("%s: kind %s has no comparison; add it to compared", key, k.GetKind())
				}
				for _, f := range fields {
					compareField(t, key+" "+strings.Join(f, "."), k.Object, h.Object, f)
				}
				if k.GetKind() == "Deployment" {
					compareContainers(t, key, k, h)
				}
			}
		})
	}
}

// TestChartDriftIsSeen checks that the comparison sees a drift: a chart value that changes an
// argument the kustomize configuration sets.
func TestChartDriftIsSeen(t *testing.T) {
	readInputs(t)
	fromKustomize := decode(t, run(t, kubectl(t), "kustomize", root+"/config/default"))
	fromHelm := decode(t, run(t, helm(t), "template", release, chart, "--namespace", namespace, "--set", "http.auth=none"))
	key := "Deployment/" + namespace + "/token-operator-controller-manager"
	k, h := fromKustomize[key], fromHelm[key]
	if k == nil || h == nil {
		t.Fatalf("%s missing: kustomize %v, helm %v", key, k != nil, h != nil)
	}
	if cmp.Equal(containers(t, k)["manager"]["args"], containers(t, h)["manager"]["args"]) {
		t.Error("--http-auth=none in the chart renders the same arguments as config/default")
	}
}

// TestAdmissionPolicyFollowsServiceAccount checks that the admission policy's binding names the
// operator's ServiceAccount as its parameter after an overlay above config/default moves and
// renames everything, as the component's kustomizeconfig.yaml makes kustomize do.
func TestAdmissionPolicyFollowsServiceAccount(t *testing.T) {
	readInputs(t)
	dir := t.TempDir()
	rel, err := filepath.Rel(dir, withComponent(t, "admission-policy"))
	if err != nil {
		t.Fatal(err)
	}
	k := "namespace: tokens\nnamePrefix: acme-\nresources:\n- " + rel + "\n"
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(k), 0o600); err != nil {
		t.Fatal(err)
	}
	objs := decode(t, run(t, kubectl(t), "kustomize", dir))
	const sa, policy = "acme-token-operator-controller-manager", "acme-token-operator-token-secrets"
	if objs["ServiceAccount/tokens/"+sa] == nil {
		t.Fatalf("no ServiceAccount tokens/%s in %v", sa, sortedKeys(objs))
	}
	if objs["ValidatingAdmissionPolicy//"+policy] == nil {
		t.Fatalf("no ValidatingAdmissionPolicy %s in %v", policy, sortedKeys(objs))
	}
	b := objs["ValidatingAdmissionPolicyBinding//"+policy]
	if b == nil {
		t.Fatalf("no ValidatingAdmissionPolicyBinding %s in %v", policy, sortedKeys(objs))
	}
	got, _, _ := unstructured.NestedStringMap(b.Object, "spec", "paramRef")
	want := map[string]string{"name": sa, "namespace": "tokens", "parameterNotFoundAction": "Allow"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("spec.paramRef (-want +got):\n%s", diff)
	}
	if name, _, _ := unstructured.NestedString(b.Object, "spec", "policyName"); name != policy {
		t.Errorf("spec.policyName = %q, want %q", name, policy)
	}
}

func compareContainers(t *testing.T, key string, k, h *unstructured.Unstructured) {
	t.Helper()
	kc, hc := containers(t, k), containers(t, h)
	if diff := cmp.Diff(sortedKeys(kc), sortedKeys(hc)); diff != "" {
		t.Errorf("%s: containers differ (-kustomize +helm):\n%s", key, diff)
	}
	for name, c := range kc {
		for _, f := range containerFields {
			// The image is set at deploy time by either tool (kustomize edit set image, --set image.tag).
			if f[0] == "image" {
				continue
			}
			compareField(t, key+" container "+name+" "+strings.Join(f, "."), c, hc[name], f)
		}
	}
}

func containers(t *testing.T, u *unstructured.Unstructured) map[string]map[string]any {
	t.Helper()
	list, _, err := unstructured.NestedSlice(u.Object, "spec", "template", "spec", "containers")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]any{}
	for _, c := range list {
		m := c.(map[string]any)
		out[m["name"].(string)] = m
	}
	return out
}

func compareField(t *testing.T, what string, k, h map[string]any, path []string) {
	t.Helper()
	kv, _, _ := unstructured.NestedFieldNoCopy(k, path...)
	hv, _, _ := unstructured.NestedFieldNoCopy(h, path...)
	if diff := cmp.Diff(kv, hv); diff != "" {
		t.Errorf("%s differs (-kustomize +helm):\n%s", what, diff)
	}
}

// prometheusOverlay writes a kustomization that renders config/prometheus as config/default
// would (its namespace and name prefix) and returns its folder.
func prometheusOverlay(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	abs, err := filepath.Abs(root + "/config/prometheus")
	if err != nil {
		t.Fatal(err)
	}
	rel, err := filepath.Rel(dir, abs)
	if err != nil {
		t.Fatal(err)
	}
	k := "namespace: " + namespace + "\nnamePrefix: " + release + "-\nresources:\n- " + rel + "\n"
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(k), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// withRestartTargets copies config/ with the restart-targets component turned on in
// config/default, as its comment says to, and returns the copy's default folder.
func withRestartTargets(t *testing.T) string {
	t.Helper()
	dir, err := utils.CopyConfig(root+"/config", t.TempDir(), true)
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// withComponent copies config/ with the opt-in component name turned on in config/default, as
// its comment says to, and returns the copy's default folder.
func withComponent(t *testing.T, name string) string {
	t.Helper()
	dir, err := utils.CopyConfig(root+"/config", t.TempDir(), false)
	if err != nil {
		t.Fatal(err)
	}
	if err := utils.EnableComponent(dir, name); err != nil {
		t.Fatal(err)
	}
	return dir
}

// kustomizeNamespaces are cluster-scoped kinds that kustomize v5.8 does not know to be
// (kubernetes-sigs/kustomize#6051): its namespace transformer gives them a namespace, which the
// API server drops. decode drops it too.
var kustomizeNamespaces = []string{"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"}

// decode reads rendered YAML into objects keyed Kind/namespace/name.
func decode(t *testing.T, rendered []byte) map[string]*unstructured.Unstructured {
	t.Helper()
	objs, err := utils.DecodeObjects(rendered)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*unstructured.Unstructured{}
	for _, u := range objs {
		if slices.Contains(kustomizeNamespaces, u.GetKind()) {
			u.SetNamespace("")
		}
		key := u.GetKind() + "/" + u.GetNamespace() + "/" + u.GetName()
		if _, dup := out[key]; dup {
			t.Fatalf("%s rendered twice", key)
		}
		out[key] = u
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func run(t *testing.T, bin string, args ...string) []byte {
	t.Helper()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(t.Context(), bin, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", bin, strings.Join(args, " "), err, stderr.String())
	}
	return out
}

// helm is $HELM (make test sets it), else bin/helm.
func helm(t *testing.T) string {
	t.Helper()
	if h := os.Getenv("HELM"); h != "" {
		return h
	}
	return tool(t, filepath.Join(root, "bin", "helm"), "helm: run make helm, or set HELM")
}

// kubectl is the one built with the control-plane binaries (make test sets KUBEBUILDER_ASSETS).
func kubectl(t *testing.T) string {
	t.Helper()
	return tool(t, filepath.Join(os.Getenv("KUBEBUILDER_ASSETS"), "kubectl"), "kubectl: set KUBEBUILDER_ASSETS (make test does)")
}

func tool(t *testing.T, path, hint string) string {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("%s (%v)", hint, err)
	}
	return path
}
