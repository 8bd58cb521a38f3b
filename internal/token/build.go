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

package token

import (
	"strconv"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Template is the labels and annotations a token Secret carries besides the operator's own:
// a TokenRequest's spec.secretTemplate. Keys the operator writes itself (OwnLabel,
// OwnAnnotation) are never taken from it.
type Template struct {
	Labels, Annotations map[string]string
}

// ApplyTo puts the template's keys on secret, restoring any removed or changed by hand,
// except the operator's own keys. Other keys are left alone. It reports whether it changed
// anything.
func (t Template) ApplyTo(secret *corev1.Secret) bool {
	changed := false
	put := func(m *map[string]string, want map[string]string, own func(string) bool) {
		for k, v := range want {
			if cur, ok := (*m)[k]; own(k) || ok && cur == v {
				continue
			}
			if *m == nil {
				*m = map[string]string{}
			}
			(*m)[k], changed = v, true
		}
	}
	put(&secret.Labels, t.Labels, OwnLabel)
	put(&secret.Annotations, t.Annotations, OwnAnnotation)
	return changed
}

// Sum is what Record.Meta is for a Secret that carries exactly the template's keys besides
// the operator's own.
func (t Template) Sum() uint32 {
	return MetaSum(t.Labels, t.Annotations)
}

// NewSecret is a new token Secret: meta (namespace, name, owner), the template's keys, and
// issued written by Issued.ApplyTo.
func NewSecret(meta metav1.ObjectMeta, t Template, issued Issued) *corev1.Secret {
	s := &corev1.Secret{ObjectMeta: meta}
	t.ApplyTo(s)
	issued.ApplyTo(s)
	return s
}

// NewHTTPSecret is the Secret of a token issued over HTTP into namespace.
func NewHTTPSecret(namespace string, issued Issued) *corev1.Secret {
	return NewSecret(metav1.ObjectMeta{Namespace: namespace, Name: HTTPSecretName(issued.ID)}, Template{}, issued)
}

// Rewrite is live made to carry the template's keys and to hold issued, and whether that
// changed anything; live itself is not changed. The copy keeps live's resourceVersion, so an
// update with it fails rather than overwrite a newer write.
func Rewrite(live *corev1.Secret, t Template, issued Issued) (*corev1.Secret, bool) {
	updated := live.DeepCopy()
	changed := t.ApplyTo(updated)
	changed = issued.ApplyTo(updated) || changed
	return updated, changed
}

// WithUsesLeft is live with n uses left (live itself is not changed): the write that spends
// a use of a limited-use token.
func WithUsesLeft(live *corev1.Secret, n int64) *corev1.Secret {
	spent := live.DeepCopy()
	if spent.Annotations == nil {
		spent.Annotations = map[string]string{}
	}
	spent.Annotations[AnnotationUsesLeft] = strconv.FormatInt(n, 10)
	return spent
}
