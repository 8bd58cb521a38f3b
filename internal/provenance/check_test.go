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
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tokenops/token-operator/internal/token"
)

var (
	since = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	now   = since.Add(time.Hour)
)

func ring(t *testing.T, current string, ids ...string) *Keyring {
	t.Helper()
	masters := map[string][]byte{}
	for _, id := range ids {
		masters[id] = []byte(strings.Repeat(id, 32)[:32])
	}
	k, err := NewKeyring(masters, current, since)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func httpSecret(ns string) *corev1.Secret {
	s := token.NewHTTPSecret(ns, token.Issued{Token: token.Generate(), Lifetime: token.NewLifetime(now, time.Hour),
		Source: token.SourceHTTP})
	s.CreationTimestamp = metav1.NewTime(now)
	return s
}

func trSecret(uses *int64) (*corev1.Secret, token.Issued) {
	issued := token.Issued{Token: token.Generate(), Lifetime: token.NewLifetime(now, time.Hour),
		Source: token.SourceTokenRequest, Revision: 1, UsesLeft: uses}
	s := token.NewSecret(metav1.ObjectMeta{Namespace: "team", Name: "app", OwnerReferences: []metav1.OwnerReference{{
		APIVersion: "tokens.tokenops.io/v1alpha1", Kind: "TokenRequest", Name: "app", UID: "tr-uid", Controller: new(true)}}},
		token.Template{}, issued)
	s.CreationTimestamp = metav1.NewTime(now)
	return s, issued
}

func bindingFor(issued token.Issued, issuedAt time.Time) *token.Binding {
	id, _ := token.ParseID(issued.ID)
	return &token.Binding{UID: "tr-uid", SecretName: "app", UsesLeft: token.Unlimited, IssuedAt: issuedAt.Unix(),
		Current: token.BoundToken{ID: id, ExpiresAt: issued.ExpiresAt.Unix(), Set: true}}
}

func TestCheck(t *testing.T) {
	keys := ring(t, "key-1", "key-1")
	c := NewChecker(keys, "token-operator")
	sealed := func(s *corev1.Secret) *corev1.Secret { keys.Seal(s); return s }
	three := int64(3)
	tests := []struct {
		name    string
		secret  func() (*corev1.Secret, *token.Binding)
		admit   bool
		sealed  bool
		because string
	}{
		{"sealed HTTP token in --http-namespace", func() (*corev1.Secret, *token.Binding) {
			return sealed(httpSecret("token-operator")), nil
		}, true, true, ""},
		{"HTTP token elsewhere, however sealed", func() (*corev1.Secret, *token.Binding) {
			return sealed(httpSecret("tenant")), nil
		}, false, false, ReasonOutsideHTTPNamespace},
		{"sealed HTTP token copied to another name", func() (*corev1.Secret, *token.Binding) {
			s := sealed(httpSecret("token-operator"))
			s.Name += "-copy"
			return s, nil
		}, false, false, ErrBadSeal.Error()},
		{"sealed HTTP token with a later expiry", func() (*corev1.Secret, *token.Binding) {
			s := sealed(httpSecret("token-operator"))
			s.Annotations[token.AnnotationExpiresAt] = "2099-01-01T00:00:00Z"
			return s, nil
		}, false, false, ErrBadSeal.Error()},
		{"unsealed HTTP token created before sealing began (upgrade)", func() (*corev1.Secret, *token.Binding) {
			s := httpSecret("token-operator")
			s.CreationTimestamp = metav1.NewTime(since.Add(-time.Second))
			return s, nil
		}, true, false, ""},
		{"unsealed HTTP token created since", func() (*corev1.Secret, *token.Binding) {
			return httpSecret("token-operator"), nil
		}, false, false, ReasonUnsealed},
		{"seal of an unknown key", func() (*corev1.Secret, *token.Binding) {
			s := httpSecret("token-operator")
			ring(t, "key-9", "key-9").Seal(s)
			return s, nil
		}, false, false, ErrBadSeal.Error()},
		{"garbled seal", func() (*corev1.Secret, *token.Binding) {
			s := httpSecret("token-operator")
			s.Annotations[token.AnnotationSeal] = "key-1.!!"
			return s, nil
		}, false, false, ErrBadSeal.Error()},
		{"sealed TokenRequest Secret", func() (*corev1.Secret, *token.Binding) {
			s, _ := trSecret(nil)
			return sealed(s), nil
		}, true, true, ""},
		{"TokenRequest Secret with its secret half changed", func() (*corev1.Secret, *token.Binding) {
			s, issued := trSecret(nil)
			sealed(s)
			other := token.Generate()
			other.ID = issued.ID
			s.Data[token.DataToken] = []byte(other.String())
			return s, nil
		}, false, false, ErrBadSeal.Error()},
		{"TokenRequest Secret with its use limit removed", func() (*corev1.Secret, *token.Binding) {
			s, _ := trSecret(&three)
			sealed(s)
			delete(s.Annotations, token.AnnotationUsesLeft)
			return s, nil
		}, false, false, ErrBadSeal.Error()},
		{"TokenRequest Secret with more uses: the seal leaves the count to the status", func() (*corev1.Secret, *token.Binding) {
			s, _ := trSecret(&three)
			sealed(s)
			s.Annotations[token.AnnotationUsesLeft] = "9"
			return s, nil
		}, true, true, ""},
		{"TokenRequest-sourced Secret without a controller", func() (*corev1.Secret, *token.Binding) {
			s, _ := trSecret(nil)
			s.OwnerReferences = nil
			return sealed(s), nil
		}, false, false, ReasonNoController},
		{"unsealed TokenRequest Secret whose token the status recorded before sealing began", func() (*corev1.Secret, *token.Binding) {
			s, issued := trSecret(nil)
			return s, bindingFor(issued, since.Add(-time.Minute))
		}, true, false, ""},
		{"unsealed TokenRequest Secret whose token was issued since", func() (*corev1.Secret, *token.Binding) {
			s, issued := trSecret(nil)
			return s, bindingFor(issued, since)
		}, false, false, ReasonUnsealed},
		{"unsealed TokenRequest Secret with a token the status does not record", func() (*corev1.Secret, *token.Binding) {
			s, _ := trSecret(nil)
			_, other := trSecret(nil)
			return s, bindingFor(other, since.Add(-time.Minute))
		}, false, false, ReasonUnsealed},
		{"unsealed TokenRequest Secret without a known TokenRequest", func() (*corev1.Secret, *token.Binding) {
			s, _ := trSecret(nil)
			return s, nil
		}, false, false, ReasonUnsealed},
		{"no token", func() (*corev1.Secret, *token.Binding) {
			s := sealed(httpSecret("token-operator"))
			delete(s.Data, token.DataTokenDigest)
			return s, nil
		}, false, false, ReasonNoToken},
		{"unknown source", func() (*corev1.Secret, *token.Binding) {
			s := httpSecret("token-operator")
			s.Labels[token.LabelSource] = "mine"
			return sealed(s), nil
		}, false, false, ReasonUnknownSource},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, b := tt.secret()
			rec, _ := token.RecordOf(s)
			v := c.Check(s, &rec, b)
			if v.Admit != tt.admit || v.Sealed != tt.sealed || v.Reason != tt.because {
				t.Errorf("Check = %+v, want admit %v sealed %v reason %q", v, tt.admit, tt.sealed, tt.because)
			}
		})
	}
}

func TestKeyRotation(t *testing.T) {
	old := ring(t, "key-1", "key-1")
	both := ring(t, "key-2", "key-1", "key-2")
	byOld, byNew := httpSecret("ns"), httpSecret("ns")
	old.Seal(byOld)
	both.Seal(byNew)
	if KeyOf(byNew) != "key-2" {
		t.Fatalf("sealed with %q, want the current key-2", KeyOf(byNew))
	}
	if err := both.Verify(byOld); err != nil {
		t.Errorf("a Secret sealed with the previous key: %v, want it to verify while that key is kept", err)
	}
	if err := old.Verify(byNew); err != ErrBadSeal {
		t.Errorf("a keyring without key-2: %v, want %v", err, ErrBadSeal)
	}
}

func TestNewKeyringRefuses(t *testing.T) {
	tests := []struct {
		name    string
		masters map[string][]byte
		current string
		want    string
	}{
		{"current missing", map[string][]byte{"key-1": make([]byte, 32)}, "key-2", `the current key "key-2" is not among the keys (key-1)`},
		{"short key", map[string][]byte{"key-1": make([]byte, 16)}, "key-1", `key "key-1" has 16 bytes, want at least 32`},
		{"bad id", map[string][]byte{"key 1": make([]byte, 32)}, "key 1", `key id "key 1"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewKeyring(tt.masters, tt.current, since)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("NewKeyring = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

// TestSubkeys: the audit MAC of a subject stays the same across a key rotation, and no
// use's MAC is another's (HKDF info strings).
func TestSubkeys(t *testing.T) {
	old := ring(t, "key-1", "key-1")
	rotated := ring(t, "key-2", "key-1", "key-2")
	if a, b := old.AuditMAC("user-42"), rotated.AuditMAC("user-42"); a != b {
		t.Errorf("AuditMAC after a rotation = %s, want %s (the audit subkey never rotates)", b, a)
	}
	if old.AuditMAC("user-42") == old.AuditMAC("user-43") {
		t.Error("two subjects share an audit MAC")
	}
	if a, b := old.CodeName("anonymous", "user-42", "login"), rotated.CodeName("anonymous", "user-42", "login"); string(a) != string(b) {
		t.Error("CodeName changed with a rotation; every replica must find one code object by it")
	}
	id, sum := rotated.CodeMAC("anonymous", "user-42", "login", "123456")
	if id != "key-2" {
		t.Errorf("CodeMAC used %q, want the current key-2", id)
	}
	for _, tt := range []struct {
		name  string
		k     *Keyring
		id    string
		parts []string
		want  bool
	}{
		{"the code", rotated, id, []string{"anonymous", "user-42", "login", "123456"}, true},
		{"another code", rotated, id, []string{"anonymous", "user-42", "login", "123457"}, false},
		{"another subject", rotated, id, []string{"anonymous", "user-43", "login", "123456"}, false},
		{"parts shifted", rotated, id, []string{"anonymous", "user-42login", "", "123456"}, false},
		{"another key id", rotated, "key-1", []string{"anonymous", "user-42", "login", "123456"}, false},
		{"a keyring without the key", old, id, []string{"anonymous", "user-42", "login", "123456"}, false},
	} {
		if got := tt.k.VerifyCode(tt.id, sum, tt.parts...); got != tt.want {
			t.Errorf("%s: VerifyCode = %v, want %v", tt.name, got, tt.want)
		}
	}
	seal := httpSecret("ns")
	old.Seal(seal)
	if strings.Contains(seal.Annotations[token.AnnotationSeal], strings.TrimPrefix(old.AuditMAC(string(token.SealInput(seal))), "hmac-sha256:")) {
		t.Error("the seal and audit subkeys are one key")
	}
}
