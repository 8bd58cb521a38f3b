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
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/tokenops/token-operator/api/v1alpha1"
)

// The API server, not the controller, refuses these: a bad object never reaches etcd.
var _ = Describe("TokenRequest validation", func() {
	var ns string
	BeforeEach(func(ctx SpecContext) { ns = newNamespace(ctx) })

	// create sends spec as raw JSON, so that values Go's types could not hold reach the server,
	// with strict field validation as kubectl apply uses.
	create := func(ctx SpecContext, spec map[string]any) error {
		u := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": tokensv1alpha1.GroupVersion.String(),
			"kind":       "TokenRequest",
			"metadata":   map[string]any{"generateName": "v-", "namespace": ns},
			"spec":       spec,
		}}
		return k8sClient.Create(ctx, u, client.FieldValidation("Strict"))
	}

	DescribeTable("rejects invalid specs with a readable message",
		func(ctx SpecContext, spec map[string]any, message string) {
			err := create(ctx, spec)
			Expect(err).To(MatchError(ContainSubstring(message)))
			list := &tokensv1alpha1.TokenRequestList{}
			Expect(k8sClient.List(ctx, list, client.InNamespace(ns))).To(Succeed())
			Expect(list.Items).To(BeEmpty())
		},
		Entry("ttl 0s", map[string]any{"ttl": "0s"}, "ttl must be at least 1s"),
		Entry("ttl 500ms", map[string]any{"ttl": "500ms"}, "ttl must be at least 1s"),
		Entry("ttl -5m", map[string]any{"ttl": "-5m"}, "spec.ttl: Invalid value"),
		Entry("ttl banana", map[string]any{"ttl": "banana"}, "spec.ttl: Invalid value"),
		Entry("ttl a number", map[string]any{"ttl": 60}, "spec.ttl: Invalid value"),
		Entry("secretName too long", map[string]any{"secretName": strings.Repeat("a", 254)}, "spec.secretName: Too long"),
		Entry("secretName not a DNS name", map[string]any{"secretName": "Not_A_Name"}, "spec.secretName: Invalid value"),
		Entry("unknown field", map[string]any{"tll": "5m"}, "unknown field \"spec.tll\""),
		Entry("rotation and maxUses", map[string]any{"rotation": map[string]any{"renewBefore": "1m"}, "maxUses": 1},
			"rotation and maxUses cannot be combined"),
		Entry("renewBefore as long as ttl", map[string]any{"ttl": "10m", "rotation": map[string]any{"renewBefore": "10m"}},
			"rotation.renewBefore must be shorter than ttl"),
		Entry("renewBefore beyond the default ttl", map[string]any{"rotation": map[string]any{"renewBefore": "2h"}},
			"rotation.renewBefore must be shorter than ttl"),
		Entry("renewBefore 500ms", map[string]any{"rotation": map[string]any{"renewBefore": "500ms"}},
			"renewBefore must be at least 1s"),
		Entry("both rotation fields", map[string]any{"rotation": map[string]any{"renewBefore": "1m", "renewBeforePercentage": 10}},
			"set exactly one of renewBefore and renewBeforePercentage"),
		Entry("empty rotation", map[string]any{"rotation": map[string]any{}},
			"set exactly one of renewBefore and renewBeforePercentage"),
		Entry("renewBeforePercentage 100", map[string]any{"rotation": map[string]any{"renewBeforePercentage": 100}},
			"spec.rotation.renewBeforePercentage: Invalid value"),
		Entry("maxUses 0", map[string]any{"maxUses": 0}, "spec.maxUses: Invalid value"),
		Entry("maxUses too many", map[string]any{"maxUses": 1000001}, "spec.maxUses: Invalid value"),
		Entry("restart target of another kind", restartTargets(map[string]any{"kind": "Pod", "name": "web"}),
			`spec.rotation.restartTargets[0].kind: Unsupported value: "Pod": supported values: "Deployment", "StatefulSet", "DaemonSet"`),
		Entry("restart target with a name and a selector", restartTargets(map[string]any{"kind": "Deployment", "name": "web",
			"selector": map[string]any{"matchLabels": map[string]any{"app": "web"}}}), "set exactly one of name and selector"),
		Entry("restart target with neither", restartTargets(map[string]any{"kind": "Deployment"}), "set exactly one of name and selector"),
		Entry("restart target with an empty selector", restartTargets(map[string]any{"kind": "Deployment", "selector": map[string]any{}}),
			"selector must not be empty (it would match every workload of the namespace)"),
		Entry("restart target with empty matchLabels and matchExpressions", restartTargets(map[string]any{"kind": "StatefulSet",
			"selector": map[string]any{"matchLabels": map[string]any{}, "matchExpressions": []any{}}}), "selector must not be empty"),
		Entry("empty subject", map[string]any{"subject": ""}, "spec.subject: Invalid value"),
		Entry("subject too long", map[string]any{"subject": strings.Repeat("u", 257)}, "spec.subject: Too long"),
		Entry("newline in the subject", map[string]any{"subject": "user\n42"}, "subject must not hold control characters"),
		Entry("NUL in the subject", map[string]any{"subject": "user\x0042"}, "subject must not hold control characters"),
		Entry("purpose with capitals", map[string]any{"purpose": "Password-Reset"}, "spec.purpose: Invalid value"),
		Entry("purpose ending in -", map[string]any{"purpose": "reset-"}, "spec.purpose: Invalid value"),
		Entry("purpose too long", map[string]any{"purpose": strings.Repeat("p", 64)}, "spec.purpose: Too long"),
		Entry("9 metadata keys", map[string]any{"metadata": metadataOf(9, 1)}, "spec.metadata: Too many: 9: must have at most 8 items"),
		Entry("a metadata key with a space", map[string]any{"metadata": map[string]any{"a b": "c"}}, "metadata keys: want 1 to 63 letters"),
		Entry("a metadata value of 257 bytes", map[string]any{"metadata": map[string]any{"ip": strings.Repeat("v", 257)}},
			"spec.metadata.ip: Too long"),
		Entry("an empty metadata value", map[string]any{"metadata": map[string]any{"ip": ""}}, "spec.metadata.ip: Invalid value"),
		Entry("a newline in a metadata value", map[string]any{"metadata": map[string]any{"ip": "1\n2"}}, "metadata values must not hold control characters"),
		Entry("1 025 bytes of metadata", map[string]any{"metadata": metadataOf(5, 204)}, "metadata: at most 1024 characters of keys and values in all"),
		Entry("21 restart targets", restartTargets(slices.Repeat([]any{map[string]any{"kind": "Deployment", "name": "web"}}, 21)...),
			"spec.rotation.restartTargets: Too many: 21: must have at most 20 items"),
	)

	It("accepts the shortest and longest valid forms", func(ctx SpecContext) {
		Expect(create(ctx, map[string]any{"ttl": "1s"})).To(Succeed())
		Expect(create(ctx, map[string]any{"ttl": "1h30m", "secretName": strings.Repeat("a", 253)})).To(Succeed())
		Expect(create(ctx, map[string]any{"ttl": "2s", "rotation": map[string]any{"renewBefore": "1s"}})).To(Succeed())
		Expect(create(ctx, map[string]any{"rotation": map[string]any{"renewBeforePercentage": 99}})).To(Succeed())
		Expect(create(ctx, map[string]any{"maxUses": 1})).To(Succeed())
		Expect(create(ctx, map[string]any{"subject": strings.Repeat("u", 256), "purpose": strings.Repeat("p", 63),
			"metadata": metadataOf(8, 126)})).To(Succeed())
		Expect(create(ctx, map[string]any{"subject": "ünïcode@example.com", "purpose": "a", "metadata": map[string]any{"k": "v"}})).To(Succeed())
		Expect(create(ctx, map[string]any{"maxUses": 1000000})).To(Succeed())
		Expect(create(ctx, restartTargets(slices.Repeat([]any{map[string]any{"kind": "DaemonSet",
			"selector": map[string]any{"matchLabels": map[string]any{"app": "web"}}}}, 20)...))).To(Succeed())
		Expect(create(ctx, restartTargets(map[string]any{"kind": "Deployment", "selector": map[string]any{
			"matchExpressions": []any{map[string]any{"key": "reads-token", "operator": "Exists"}}}}))).To(Succeed())
	})

	It("rejects any change to the spec", func(ctx SpecContext) {
		tr := newTokenRequest(ctx, ns, "immutable", "5m")
		for _, change := range []func(*tokensv1alpha1.TokenRequest){
			func(tr *tokensv1alpha1.TokenRequest) { tr.Spec.TTL.Duration *= 2 },
			func(tr *tokensv1alpha1.TokenRequest) { tr.Spec.SecretName = "elsewhere" },
			func(tr *tokensv1alpha1.TokenRequest) {
				tr.Spec.SecretTemplate = &tokensv1alpha1.SecretTemplate{Labels: map[string]string{"a": "b"}}
			},
			func(tr *tokensv1alpha1.TokenRequest) { tr.Spec.MaxUses = new(int64(3)) },
			func(tr *tokensv1alpha1.TokenRequest) { tr.Spec.Subject = "user-43" },
			func(tr *tokensv1alpha1.TokenRequest) { tr.Spec.Purpose = "login" },
			func(tr *tokensv1alpha1.TokenRequest) {
				tr.Spec.Metadata = map[string]tokensv1alpha1.MetadataValue{"a": "b"}
			},
			func(tr *tokensv1alpha1.TokenRequest) {
				tr.Spec.Rotation = &tokensv1alpha1.Rotation{RenewBeforePercentage: new(int32(10))}
			},
		} {
			// A merge patch carries no resourceVersion: only validation can refuse it.
			patch := client.MergeFrom(tr.DeepCopy())
			changed := tr.DeepCopy()
			change(changed)
			Expect(k8sClient.Patch(ctx, changed, patch)).To(MatchError(ContainSubstring("spec is immutable")))
		}
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(tr), tr)).To(Succeed())
		Expect(tr.Spec.TTL.Duration).To(Equal(5 * time.Minute))
	})
})

// restartTargets is a spec with a rotation and these restart targets.
func restartTargets(targets ...any) map[string]any {
	return map[string]any{"rotation": map[string]any{"renewBefore": "5m", "restartTargets": targets}}
}

// metadataOf is n metadata keys (k0, k1, ...) with values of size bytes: n*(2+size) bytes
// in all for n <= 10.
func metadataOf(n, size int) map[string]any {
	m := map[string]any{}
	for i := range n {
		m[fmt.Sprintf("k%d", i)] = strings.Repeat("v", size)
	}
	return m
}
