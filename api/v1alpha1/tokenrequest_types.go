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

import (
	"fmt"
	"hash/fnv"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// TokenRequestSpec is what a user asks for: one token, valid for TTL, written into a Secret.
// The whole spec is immutable: a different TTL, Secret or template means a new TokenRequest.
// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec is immutable: delete and re-create the TokenRequest (or create another) to change its fields"
// +kubebuilder:validation:XValidation:rule="!has(self.rotation) || !has(self.maxUses)",message="rotation and maxUses cannot be combined: a limited-use token is not renewed"
// +kubebuilder:validation:XValidation:rule="!has(self.rotation) || !has(self.rotation.renewBefore) || duration(self.rotation.renewBefore) < (has(self.ttl) ? duration(self.ttl) : duration('60m'))",message="rotation.renewBefore must be shorter than ttl"
type TokenRequestSpec struct {
	// ttl is how long the token is valid after it is issued, as a Go duration string
	// ("90s", "15m", "24h"). Defaults to 60m, the original service's default. At least 1s;
	// at most the operator's --max-ttl (8760h unless the operator is configured otherwise),
	// which the controller enforces with Ready=False, reason InvalidSpec.
	// +kubebuilder:default="60m"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1s')",message="ttl must be at least 1s"
	// +optional
	TTL *metav1.Duration `json:"ttl,omitempty"`

	// secretName is the name of the Secret, in the TokenRequest's namespace, that receives the
	// token. Defaults to the TokenRequest's own name. A DNS subdomain of at most 253 characters.
	// A Secret of that name that this TokenRequest does not own is never touched.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	// +optional
	SecretName string `json:"secretName,omitempty"`

	// secretTemplate holds labels and annotations copied onto the Secret, as cert-manager's
	// Certificate secretTemplate does. Keys the operator sets itself win on conflict.
	// +optional
	SecretTemplate *SecretTemplate `json:"secretTemplate,omitempty"`

	// rotation, when set, keeps the TokenRequest holding a valid token for as long as it exists:
	// before the token expires the controller writes a new one into the Secret and keeps the
	// old one, under previous-token, valid until its own expiry. Unset (the default), the
	// token expires once and the TokenRequest turns Ready=False, reason Expired.
	// +optional
	Rotation *Rotation `json:"rotation,omitempty"`

	// maxUses makes a limited-use token: each POST /app/redeem/{token} spends one use, and the
	// Secret is deleted when the last one is spent (Ready=False, reason Spent). Validation
	// (GET /app/valid/{token}) spends none. Unset (the default), the token has no use limit.
	// From 1 to 1000000; cannot be combined with rotation.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000000
	// +optional
	MaxUses *int64 `json:"maxUses,omitempty"`

	// subject is whom the token is for (a user id, an e-mail address), as POST /app/token's
	// subject: 1 to 256 characters without control characters. It may be personal data: it is kept
	// in the Secret's data, never in a label, an annotation or a metric label, and the audit
	// trail records it as an HMAC.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:XValidation:rule="!self.matches('[\\x00-\\x1f\\x7f-\\x9f]')",message="subject must not hold control characters"
	// +optional
	Subject string `json:"subject,omitempty"`

	// purpose is what the token is for ("password-reset"): 1 to 63 lower-case letters, digits,
	// '.', '_' or '-', starting and ending with a letter or digit. A token with a purpose
	// validates only when asked with it (GET /app/valid/{token}?purpose=...).
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$`
	// +optional
	Purpose string `json:"purpose,omitempty"`

	// metadata is a small string map kept with the token (introspection answers it as ext):
	// at most 8 keys of letters, digits, '.', '_' or '-' (up to 63, starting and ending with a
	// letter or digit), each value 1 to 256 characters without control characters, 1024
	// characters of keys and values in all (the API server counts characters, not bytes).
	// +kubebuilder:validation:MaxProperties=8
	// +kubebuilder:validation:XValidation:rule="self.all(k, k.matches('^[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$'))",message="metadata keys: want 1 to 63 letters, digits, '.', '_' or '-', starting and ending with a letter or digit"
	// +kubebuilder:validation:XValidation:rule="self.all(k, size(k) <= 63) && self.map(k, size(k) + size(self[k])).sum() <= 1024",message="metadata: at most 1024 characters of keys and values in all"
	// +optional
	Metadata map[string]MetadataValue `json:"metadata,omitempty"`
}

// MetadataValue is one value of spec.metadata: 1 to 256 characters without control characters.
// +kubebuilder:validation:MinLength=1
// +kubebuilder:validation:MaxLength=256
// +kubebuilder:validation:XValidation:rule="!self.matches('[\\x00-\\x1f\\x7f-\\x9f]')",message="metadata values must not hold control characters"
type MetadataValue string

// AnnotationRotate on a TokenRequest asks for a new token now, like `cmctl renew`: every new
// value of it is answered by exactly one rotation. With spec.rotation the old token keeps
// validating for the rotation's overlap (renewBefore, or its share of ttl), never beyond its
// own expiry; without, it stops at once (revoke and re-issue). It also renews an Expired or
// Spent TokenRequest.
const AnnotationRotate = "tokens.tokenops.io/rotate"

// SecretTemplate is the metadata a user adds to the issued Secret.
type SecretTemplate struct {
	// labels are added to the Secret. At most 64 entries; the operator's own labels win.
	// +kubebuilder:validation:MaxProperties=64
	// +optional
	Labels map[string]string `json:"labels,omitempty"`

	// annotations are added to the Secret. At most 64 entries; the operator's own
	// annotations win.
	// +kubebuilder:validation:MaxProperties=64
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`
}

// Condition types and reasons of a TokenRequest.
const (
	// ConditionReady is True while the TokenRequest's Secret holds a token that validates.
	ConditionReady = "Ready"

	// ReasonIssued means the token is in the Secret and has not expired.
	ReasonIssued = "Issued"
	// ReasonExpired means the token reached expiresAt; its Secret is deleted and the
	// TokenRequest stays, so that GitOps tools do not re-create it.
	ReasonExpired = "Expired"
	// ReasonSecretConflict means a Secret of spec.secretName exists that this TokenRequest
	// does not own; the operator leaves it alone and retries periodically.
	ReasonSecretConflict = "SecretConflict"
	// ReasonInvalidSpec means the spec passed the API server's validation but breaks a rule
	// of the running operator (a ttl above --max-ttl, template keys the API server refuses).
	ReasonInvalidSpec = "InvalidSpec"
	// ReasonSpent means the last use of a limited-use token was redeemed; its Secret is
	// deleted and the TokenRequest stays.
	ReasonSpent = "Spent"

	// ConditionRolloutOverlap is present with spec.rotation.restartTargets: False (reason
	// OverlapTooShort) when the old token validates for less than MinRolloutOverlap after a
	// rotation, too short for a rollout of the restarted workloads to finish.
	ConditionRolloutOverlap = "RolloutOverlap"
	// ReasonOverlapSufficient and ReasonOverlapTooShort are RolloutOverlap's reasons.
	ReasonOverlapSufficient = "OverlapSufficient"
	ReasonOverlapTooShort   = "OverlapTooShort"

	// ConditionRestartInterval is present with spec.rotation.restartTargets while the operator
	// limits restarts (--min-restart-interval above 0): False (reason RotatesTooOften) when
	// the token rotates more often than one workload may be restarted, so that a restarted
	// workload does not get every new token.
	ConditionRestartInterval = "RestartInterval"
	// ReasonIntervalSufficient and ReasonRotatesTooOften are RestartInterval's reasons.
	ReasonIntervalSufficient = "IntervalSufficient"
	ReasonRotatesTooOften    = "RotatesTooOften"
)

// Annotations the controller sets on the pod template of a restarted workload.
const (
	// AnnotationRestartedAt is when the workload was last restarted for a new token, as
	// kubectl.kubernetes.io/restartedAt is for `kubectl rollout restart`.
	AnnotationRestartedAt = "tokens.tokenops.io/restartedAt"
	// AnnotationRestartRevisionPrefix, followed by the TokenRequest's name, holds the token
	// revision the workload was restarted for (see RestartRevisionKey).
	AnnotationRestartRevisionPrefix = "tokens.tokenops.io/revision-"
)

// TokenRequestStatus is the operator's record of the issued token, and the source of truth
// that a hand-edited Secret is healed from. It never holds the token's secret part.
type TokenRequestStatus struct {
	// observedGeneration is the metadata.generation this status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions describe the TokenRequest's state. Ready is the one to watch: True with
	// reason Issued, or False with reason Expired, Spent, SecretConflict or InvalidSpec.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// tokenID is the public half of the issued token (the part before the colon). It is safe
	// to show and to log; the secret half lives only in the Secret.
	// +optional
	TokenID string `json:"tokenID,omitempty"`

	// secretName is the name of the Secret that holds the token.
	// +optional
	SecretName string `json:"secretName,omitempty"`

	// issuedAt is when the current token was written.
	// +optional
	IssuedAt *metav1.Time `json:"issuedAt,omitempty"`

	// expiresAt is when the token stops validating and its Secret is deleted. A token
	// re-issued because its Secret was deleted or edited by hand keeps this time.
	// +optional
	ExpiresAt *metav1.Time `json:"expiresAt,omitempty"`

	// renewalTime is when the controller will replace the token (spec.rotation only).
	// +optional
	RenewalTime *metav1.Time `json:"renewalTime,omitempty"`

	// previousTokenID is the public id of the token the last rotation replaced, while it
	// still validates.
	// +optional
	PreviousTokenID string `json:"previousTokenID,omitempty"`

	// previousExpiresAt is when the previous token stops validating.
	// +optional
	PreviousExpiresAt *metav1.Time `json:"previousExpiresAt,omitempty"`

	// usesLeft is how many redemptions the current token has left (spec.maxUses only): the
	// count its Secret had when the controller last saw it, never raised for the same token.
	// Validation and redemption believe the lower of it and the Secret's count, so a Secret
	// rolled back to an older version does not regain uses.
	// +optional
	UsesLeft *int64 `json:"usesLeft,omitempty"`

	// revision counts the tokens this TokenRequest has had: 1 for the first, one more for
	// each rotation or re-issue. The Secret carries the same number.
	// +optional
	Revision int64 `json:"revision,omitempty"`

	// lastRotationRequest is the value of the tokens.tokenops.io/rotate annotation that the
	// controller last answered.
	// +optional
	LastRotationRequest string `json:"lastRotationRequest,omitempty"`

	// restartedRevision is the token revision for which every workload of
	// spec.rotation.restartTargets has been handled (restarted, or started after that token);
	// below revision, restarts are pending or failing.
	// +optional
	RestartedRevision int64 `json:"restartedRevision,omitempty"`

	// restarts are the workloads of spec.rotation.restartTargets and what was last done to each.
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=1000
	// +optional
	Restarts []WorkloadRestart `json:"restarts,omitempty"`
}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=tokreq,categories=tokenops
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Secret",type=string,JSONPath=`.status.secretName`
// +kubebuilder:printcolumn:name="Expires",type=string,JSONPath=`.status.expiresAt`
// +kubebuilder:printcolumn:name="Renews",type=string,JSONPath=`.status.renewalTime`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`

// TokenRequest asks the operator for a short-lived random token, written into a Secret that
// pods can mount. It is not the built-in authentication.k8s.io TokenRequest (a service
// account token subresource): this one lives in the tokens.tokenops.io group.
type TokenRequest struct {
	metav1.TypeMeta `json:",inline"`

	// metadata is standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the requested token. Immutable once created.
	// +kubebuilder:default={}
	// +optional
	Spec TokenRequestSpec `json:"spec,omitempty"`

	// status is the issued token's public record.
	// +optional
	Status TokenRequestStatus `json:"status,omitempty"`
}

// SecretNameOrDefault is the name of the Secret that receives the token.
func (tr *TokenRequest) SecretNameOrDefault() string {
	if tr.Spec.SecretName != "" {
		return tr.Spec.SecretName
	}
	return tr.Name
}

// +kubebuilder:object:root=true

// TokenRequestList contains a list of TokenRequest.
type TokenRequestList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitzero"`
	Items           []TokenRequest `json:"items"`
}

func init() {
	SchemeBuilder.Register(func(s *runtime.Scheme) error {
		s.AddKnownTypes(SchemeGroupVersion, &TokenRequest{}, &TokenRequestList{})
		return nil
	})
}

// RestartRevisionKey is the pod-template annotation that records, on a workload restarted
// for the TokenRequest named trName, the token revision it was restarted for: the prefix and
// the name, or for a name too long for an annotation key, its first 45 characters and a hash.
func RestartRevisionKey(trName string) string {
	const maxName = 63 - len(AnnotationRestartRevisionPrefix) + len("tokens.tokenops.io/")
	if len(trName) <= maxName {
		return AnnotationRestartRevisionPrefix + trName
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(trName))
	return fmt.Sprintf("%s%s-%08x", AnnotationRestartRevisionPrefix, trName[:maxName-9], h.Sum32())
}
