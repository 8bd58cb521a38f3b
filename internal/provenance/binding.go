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

package provenance

import (
	"k8s.io/apimachinery/pkg/api/meta"

	tokensv1alpha1 "github.com/tokenops/token-operator/api/v1alpha1"
	"github.com/tokenops/token-operator/internal/token"
)

// BindingOf is what a TokenRequest's status records of its token, for the token index: the
// status is the one record of a TokenRequest's token that a writer of Secrets in its
// namespace cannot change.
func BindingOf(tr *tokensv1alpha1.TokenRequest) *token.Binding {
	s := tr.Status
	b := &token.Binding{UID: tr.UID, SecretName: s.SecretName, UsesLeft: token.Unlimited}
	if s.UsesLeft != nil {
		b.UsesLeft = *s.UsesLeft
	}
	if id, ok := token.ParseID(s.TokenID); ok && s.ExpiresAt != nil {
		b.Current = token.BoundToken{ID: id, ExpiresAt: s.ExpiresAt.Unix(), Set: true}
	}
	if id, ok := token.ParseID(s.PreviousTokenID); ok && s.PreviousExpiresAt != nil {
		b.Previous = token.BoundToken{ID: id, ExpiresAt: s.PreviousExpiresAt.Unix(), Set: true}
	}
	if s.IssuedAt != nil {
		b.IssuedAt = s.IssuedAt.Unix()
	}
	if c := meta.FindStatusCondition(s.Conditions, tokensv1alpha1.ConditionReady); c != nil && c.Reason == tokensv1alpha1.ReasonSpent {
		b.Dead = true
	}
	return b
}
