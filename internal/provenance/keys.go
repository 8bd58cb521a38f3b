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
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/tokenops/token-operator/api/v1alpha1"
	"github.com/tokenops/token-operator/internal/metrics"
	"github.com/tokenops/token-operator/internal/token"
)

// The key Secret: where the operator keeps its master keys, in its own namespace.
const (
	// KeySecretType is the key Secret's type.
	KeySecretType corev1.SecretType = "tokens.tokenops.io/keys" //nolint:gosec // a Secret type, not a credential
	// AnnotationCurrentKey names the data key of the master key new seals use.
	AnnotationCurrentKey = "tokens.tokenops.io/current-key"
	// AnnotationAuditKey names the data key of the master key the audit subkey comes from; it
	// never changes, so that audit lines stay correlatable across key rotations. Without it
	// (a key Secret of an earlier version), FirstKeyID's.
	AnnotationAuditKey = "tokens.tokenops.io/audit-key"
	// FirstKeyID is the id of the key the operator creates.
	FirstKeyID = "key-1"
	// DefaultKeySecretName is --key-secret's default.
	DefaultKeySecretName = "token-operator-keys"
)

// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;create

// Keys reads the key Secret, and creates it only on the operator's first start.
type Keys struct {
	Client client.Client
	// Secret is the key Secret's namespace (the operator's own) and name.
	Secret types.NamespacedName
	// Evidence looks for tokens sealed with keys that are gone: the names of one or more
	// (empty when there is none). It is asked only when the key Secret is missing.
	Evidence func(ctx context.Context) (string, error)
	// Recreate, from --key-secret-recreate, creates a new key even though Evidence found
	// sealed tokens: every token sealed with the old keys stops validating.
	Recreate bool
	Log      logr.Logger
}

// ErrKeysLost is Load's answer when the key Secret is gone while tokens sealed with it exist.
var ErrKeysLost = errors.New("key Secret missing")

// Load reads the keyring, creating the key Secret with one new key if there is none and no
// token was sealed before. It never creates a key while sealed tokens exist (that would
// invalidate every one of them): it fails with ErrKeysLost, naming what it found.
func (k *Keys) Load(ctx context.Context) (*Keyring, error) {
	secret := &corev1.Secret{}
	err := k.Client.Get(ctx, k.Secret, secret)
	if apierrors.IsNotFound(err) {
		if err := k.create(ctx); err != nil {
			return nil, err
		}
		err = k.Client.Get(ctx, k.Secret, secret)
	}
	if err != nil {
		return nil, fmt.Errorf("reading the key Secret %s: %w", k.Secret, err)
	}
	return KeyringOf(secret)
}

func (k *Keys) create(ctx context.Context) error {
	if found, err := k.Evidence(ctx); err != nil {
		return fmt.Errorf("looking for tokens sealed before: %w", err)
	} else if found != "" && !k.Recreate {
		return fmt.Errorf("%w: %s does not exist, but tokens sealed with its keys do (%s): restore it from a backup, "+
			"or start once with --key-secret-recreate to make a new key (every HTTP token then stops validating and "+
			"every TokenRequest is given a new token)", ErrKeysLost, k.Secret, found)
	}
	master := make([]byte, MasterKeyBytes)
	if _, err := rand.Read(master); err != nil {
		return err
	}
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: k.Secret.Namespace, Name: k.Secret.Name,
			Annotations: map[string]string{AnnotationCurrentKey: FirstKeyID, AnnotationAuditKey: FirstKeyID}},
		Type: KeySecretType,
		Data: map[string][]byte{FirstKeyID: master},
	}
	err := k.Client.Create(ctx, secret)
	if err == nil {
		k.Log.Info("Created the key Secret that seals token Secrets", "secret", k.Secret, "key", FirstKeyID)
	}
	if apierrors.IsAlreadyExists(err) {
		return nil // another replica created it first
	}
	return err
}

// KeyringOf reads a key Secret: every data entry is a master key, AnnotationCurrentKey names
// the one that seals, and the Secret's creation is when sealing began.
func KeyringOf(s *corev1.Secret) (*Keyring, error) {
	current := s.Annotations[AnnotationCurrentKey]
	if current == "" {
		return nil, fmt.Errorf("key Secret %s/%s: no %s annotation", s.Namespace, s.Name, AnnotationCurrentKey)
	}
	k, err := NewKeyring(s.Data, current, s.CreationTimestamp.Time)
	if id := s.Annotations[AnnotationAuditKey]; err == nil && id != "" {
		k, err = k.WithAuditKey(s.Data, id)
	}
	if err != nil {
		return nil, fmt.Errorf("key Secret %s/%s: %w", s.Namespace, s.Name, err)
	}
	return k, nil
}

// Refresh re-reads the key Secret every period until ctx ends, so that a key added for a
// rotation is used by every replica, and keeps the keys it has when the Secret is gone or
// unreadable (tokenoperator_key_secret_missing says so).
func (k *Keys) Refresh(ctx context.Context, c *Checker, period time.Duration) {
	wait.UntilWithContext(ctx, func(ctx context.Context) {
		secret := &corev1.Secret{}
		err := k.Client.Get(ctx, k.Secret, secret)
		metrics.KeySecretMissing.Set(map[bool]float64{true: 1, false: 0}[apierrors.IsNotFound(err)])
		if err != nil {
			k.Log.Error(err, "Cannot read the key Secret; sealing and checking with the keys read before", "secret", k.Secret)
			return
		}
		next, err := KeyringOf(secret)
		if err != nil {
			k.Log.Error(err, "The key Secret is not usable; sealing and checking with the keys read before")
			return
		}
		if cur := c.Keys(); cur == nil || cur.current != next.current || len(cur.seal) != len(next.seal) {
			k.Log.Info("Keys changed", "current", next.current, "keys", len(next.seal))
		}
		c.SetKeys(next)
	}, period)
}

// Runnable refreshes the keys of c every period on every replica (a manager runnable).
func (k *Keys) Runnable(c *Checker, period time.Duration) *Refresher {
	return &Refresher{keys: k, checker: c, period: period}
}

// Refresher is Keys.Refresh as a manager runnable.
type Refresher struct {
	keys    *Keys
	checker *Checker
	period  time.Duration
}

// Start refreshes until ctx ends.
func (r *Refresher) Start(ctx context.Context) error {
	r.keys.Refresh(ctx, r.checker, r.period)
	return nil
}

// NeedLeaderElection is false: every replica refreshes its own keys.
func (r *Refresher) NeedLeaderElection() bool { return false }

// maxEvidenceReads bounds the TokenRequest Secrets Evidence reads.
const maxEvidenceReads = 20

// Evidence looks, through reader, for a sealed token where only the operator writes: a
// sealed Secret in httpNamespace (the operator's own), or a sealed Secret that a
// TokenRequest's status records. Either means the key Secret existed: it must not be made
// anew. A tenant cannot produce this evidence where the key Secret never existed, except by
// putting a seal annotation on its own TokenRequest's Secret before the first start that
// seals (an upgrade): --key-secret-recreate answers that.
func Evidence(reader client.Reader, httpNamespace string) func(ctx context.Context) (string, error) {
	inHTTP, ofTokenRequests := HTTPEvidence(reader, httpNamespace), tokenRequestEvidence(reader)
	return func(ctx context.Context) (string, error) {
		if found, err := inHTTP(ctx); found != "" || err != nil {
			return found, err
		}
		return ofTokenRequests(ctx)
	}
}

// HTTPEvidence is the half of Evidence that looks in httpNamespace only.
func HTTPEvidence(reader client.Reader, httpNamespace string) func(ctx context.Context) (string, error) {
	return func(ctx context.Context) (string, error) {
		secrets := &corev1.SecretList{}
		opts := []client.ListOption{client.InNamespace(httpNamespace), client.MatchingLabelsSelector{Selector: token.Selector()},
			client.Limit(500)}
		for {
			if err := reader.List(ctx, secrets, opts...); err != nil {
				return "", err
			}
			for i := range secrets.Items {
				if s := &secrets.Items[i]; KeyOf(s) != "" {
					return "Secret " + s.Namespace + "/" + s.Name, nil
				}
			}
			if secrets.Continue == "" {
				return "", nil
			}
			opts = append(opts[:3:3], client.Continue(secrets.Continue))
		}
	}
}

// tokenRequestEvidence is the half of Evidence that looks at the TokenRequests' Secrets.
func tokenRequestEvidence(reader client.Reader) func(ctx context.Context) (string, error) {
	return func(ctx context.Context) (string, error) {
		trs := &tokensv1alpha1.TokenRequestList{}
		if err := reader.List(ctx, trs, client.Limit(500)); err != nil {
			return "", err
		}
		reads := 0
		for i := range trs.Items {
			tr := &trs.Items[i]
			if tr.Status.TokenID == "" || tr.Status.SecretName == "" || reads == maxEvidenceReads {
				continue
			}
			reads++
			s := &corev1.Secret{}
			if err := reader.Get(ctx, types.NamespacedName{Namespace: tr.Namespace, Name: tr.Status.SecretName}, s); err != nil {
				continue
			}
			if KeyOf(s) != "" && string(s.Data[token.DataTokenID]) == tr.Status.TokenID {
				return "Secret " + s.Namespace + "/" + s.Name + " of TokenRequest " + tr.Name, nil
			}
		}
		return "", nil
	}
}
