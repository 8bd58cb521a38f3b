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

package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// Rotation says when a token is replaced before it expires: set exactly one field.
// +kubebuilder:validation:XValidation:rule="has(self.renewBefore) != has(self.renewBeforePercentage)",message="set exactly one of renewBefore and renewBeforePercentage"
type Rotation struct {
	// renewBefore is how long before expiresAt the token is replaced, as a Go duration string
	// ("10m"). At least 1s and shorter than ttl: the old and the new token both validate for
	// this long.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1s')",message="renewBefore must be at least 1s"
	// +optional
	RenewBefore *metav1.Duration `json:"renewBefore,omitempty"`

	// renewBeforePercentage is the share of ttl, from 1 to 99, left when the token is
	// replaced: 25 with a ttl of 60m renews 15 minutes before expiry.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=99
	// +optional
	RenewBeforePercentage *int32 `json:"renewBeforePercentage,omitempty"`

	// restartTargets are workloads in the TokenRequest's namespace that read the token through
	// environment variables (env, envFrom) and so only see a new one when their pods restart.
	// After each rotation and each re-issue the controller restarts them as `kubectl rollout
	// restart` does, at once, while the previous token still validates: it sets the
	// tokens.tokenops.io/restartedAt annotation and the token revision on each one's pod
	// template, exactly once per revision, and one workload at most once per the operator's
	// --min-restart-interval (default 1m; a restart due sooner waits). Workloads that mount
	// the Secret as a volume need no restart. Patching workloads needs the opt-in RBAC (see
	// the README); without it the controller reports RestartFailed and the token still
	// rotates. At most 20.
	// +kubebuilder:validation:MaxItems=20
	// +listType=atomic
	// +optional
	RestartTargets []RestartTarget `json:"restartTargets,omitempty"`
}

// RestartTarget names workloads to restart after a new token: one by name, or every one of
// its kind whose labels match a selector. Set exactly one of name and selector.
// +kubebuilder:validation:XValidation:rule="has(self.name) != has(self.selector)",message="set exactly one of name and selector"
type RestartTarget struct {
	// kind is Deployment, StatefulSet or DaemonSet (group apps).
	// +kubebuilder:validation:Enum=Deployment;StatefulSet;DaemonSet
	// +required
	Kind string `json:"kind"`

	// name is one workload of that kind in the TokenRequest's namespace.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +optional
	Name string `json:"name,omitempty"`

	// selector matches the workloads of that kind in the TokenRequest's namespace by label. It
	// may not be empty (an empty selector matches every workload): give matchLabels or
	// matchExpressions. A workload it matches is restarted only if its pod template needs a
	// restart to see a new token (env valueFrom, envFrom or a subPath mount of the Secret);
	// one that mounts the Secret as a plain volume is skipped (event RestartSkipped).
	// +kubebuilder:validation:XValidation:rule="(has(self.matchLabels) && size(self.matchLabels) > 0) || (has(self.matchExpressions) && size(self.matchExpressions) > 0)",message="selector must not be empty (it would match every workload of the namespace): give matchLabels or matchExpressions, or name the workload"
	// +optional
	Selector *metav1.LabelSelector `json:"selector,omitempty"`
}

// WorkloadRestart is what the controller last did to one workload of spec.rotation.restartTargets.
type WorkloadRestart struct {
	// kind is the workload's kind: Deployment, StatefulSet or DaemonSet.
	Kind string `json:"kind"`
	// name is the workload's name.
	Name string `json:"name"`
	// revision is the token revision the workload was last restarted for (0: never).
	// +optional
	Revision int64 `json:"revision,omitempty"`
	// time is when it was restarted for that revision.
	// +optional
	Time *metav1.Time `json:"time,omitempty"`
	// error says why the last restart failed (RBAC, a missing workload); empty when it worked.
	// +optional
	Error string `json:"error,omitempty"`
	// deferredUntil is set while the restart for the current token waits: the workload was
	// restarted (for any TokenRequest) less than the operator's --min-restart-interval ago.
	// A deferred restart is not a failure.
	// +optional
	DeferredUntil *metav1.Time `json:"deferredUntil,omitempty"`
	// skipped says why a workload matched by a selector is not restarted: its pod template
	// does not need a restart to see a new token (it mounts the Secret as a plain volume,
	// which the kubelet updates, or does not use the Secret at all).
	// +optional
	Skipped string `json:"skipped,omitempty"`
}
