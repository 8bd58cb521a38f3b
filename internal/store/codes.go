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

package store

import (
	"context"
	"errors"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tokenops/token-operator/internal/otp"
	"github.com/tokenops/token-operator/internal/provenance"
)

// CodeFor names a one-time code: who issued it, for whom and what.
type CodeFor struct {
	Issuer, Subject, Purpose string
}

// CodeRequest is a new one-time code: what it is for, its lifetime, length and attempts, and
// the issuing limit of its issuer, subject and purpose.
type CodeRequest struct {
	CodeFor
	TTL                 time.Duration
	Digits, MaxAttempts int
	Limit               otp.Limit
}

// ErrNoKeys: the store has no keyring to make a code's MAC with.
var ErrNoKeys = errors.New("no keys to make one-time codes with")

// codeKey is the Secret of the codes of f in namespace, and the keyring that named it.
func (s *Store) codeKey(namespace string, f CodeFor) (types.NamespacedName, *provenance.Keyring, error) {
	if s.Tokens.Trust == nil {
		return types.NamespacedName{}, nil, ErrNoKeys
	}
	keys := s.Tokens.Trust.Keys()
	name := otp.SecretName(keys.CodeName(f.Issuer, f.Subject, f.Purpose))
	return types.NamespacedName{Namespace: namespace, Name: name}, keys, nil
}

// CodeName is the name of the Secret of the codes of f.
func (s *Store) CodeName(f CodeFor) (string, error) {
	key, _, err := s.codeKey("", f)
	return key.Name, err
}

// IssueCode writes a new one-time code for req into namespace, replacing any live one of the
// same issuer, subject and purpose, and returns it; or, when req.Limit's window has issued its
// codes already, how long to wait instead (no code, nothing written). The code's Secret is
// read from the API server and written with that read's resourceVersion (created when there
// is none), so that of racing issues each counts once against the limit and the last one
// written is the live code.
func (s *Store) IssueCode(ctx context.Context, namespace string, req CodeRequest) (string, time.Duration, error) {
	key, keys, err := s.codeKey(namespace, req.CodeFor)
	if err != nil {
		return "", 0, err
	}
	var issued string
	var wait time.Duration
	err = retry.OnError(spendBackoff, retriable, func() error {
		live, prev, err := s.readCode(ctx, key)
		if err != nil {
			return err
		}
		now := s.Clock.Now()
		c, expiresAt := otp.Generate(req.Digits), now.Add(req.TTL).Truncate(time.Second)
		keyID, mac := keys.CodeMAC(otp.Parts(req.Issuer, req.Subject, req.Purpose, expiresAt, req.MaxAttempts, c)...)
		next, w := otp.Issue(prev, now, req.Limit, keyID, mac, expiresAt, req.MaxAttempts)
		if w > 0 {
			issued, wait = "", w
			return nil
		}
		if live == nil {
			err = s.Client.Create(ctx, otp.NewSecret(key.Namespace, key.Name, next))
		} else {
			otp.Write(live, next)
			err = s.writeBack(ctx, live)
		}
		issued, wait = c, 0
		return err
	})
	if err != nil {
		return "", 0, err
	}
	return issued, wait, nil
}

// VerifyCode checks presented against the live one-time code of f in namespace: Valid spends
// it, Wrong spends one attempt, Dead (no live code) writes nothing. Each write carries the
// resourceVersion of the read it decided on, so of racing verifications each wrong code spends
// exactly one attempt and a right code verifies once, whatever the number of replicas; a
// verification that lost the race reads again and decides again. It also answers the
// attempts left.
func (s *Store) VerifyCode(ctx context.Context, namespace string, f CodeFor, presented string) (otp.Verdict, int, error) {
	key, keys, err := s.codeKey(namespace, f)
	if err != nil {
		return otp.Dead, 0, err
	}
	verdict, left := otp.Dead, 0
	err = retry.OnError(spendBackoff, retriable, func() error {
		live, st, err := s.readCode(ctx, key)
		if err != nil || st == nil {
			verdict, left = otp.Dead, 0
			return err
		}
		now := s.Clock.Now()
		matches := st.MAC != nil &&
			keys.VerifyCode(st.KeyID, st.MAC, otp.Parts(f.Issuer, f.Subject, f.Purpose, st.ExpiresAt, st.MaxAttempts, presented)...)
		v, next, write := otp.Verify(*st, now, matches)
		verdict, left = v, next.AttemptsLeft(now)
		if !write {
			return nil
		}
		otp.Write(live, next)
		err = s.writeBack(ctx, live)
		if apierrors.IsNotFound(err) {
			verdict, left = otp.Dead, 0 // deleted since the read: no code is live
			return nil
		}
		return err
	})
	return verdict, left, err
}

// readCode reads the code Secret of key from the API server: nil and nil when there is none,
// and a nil State for a Secret whose data does not parse (it verifies nothing; an issue
// overwrites it).
func (s *Store) readCode(ctx context.Context, key types.NamespacedName) (*corev1.Secret, *otp.State, error) {
	live := &corev1.Secret{}
	if err := s.Reader.Get(ctx, key, live); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil, nil
		}
		return nil, nil, err
	}
	st, err := otp.Read(live)
	if err != nil {
		return live, nil, nil
	}
	return live, &st, nil
}

// retriable: another writer changed the code's Secret since it was read (or created it).
func retriable(err error) bool {
	return apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err)
}

// SweepCodes deletes the code Secrets in namespace that no longer count for anything
// (otp.State.Removable at the store's clock), each with its UID and resourceVersion as
// preconditions so that a code issued since the list is never deleted, and answers how many it
// deleted. It lists from the API server in pages: codes are few, and no replica watches them.
func (s *Store) SweepCodes(ctx context.Context, namespace string) (int, error) {
	deleted := 0
	opts := []client.ListOption{client.InNamespace(namespace), client.MatchingLabelsSelector{Selector: otp.Selector()}, client.Limit(500)}
	for {
		var page corev1.SecretList
		if err := s.Reader.List(ctx, &page, opts...); err != nil {
			return deleted, err
		}
		now := s.Clock.Now()
		for i := range page.Items {
			secret := &page.Items[i]
			if secret.Type != otp.SecretType {
				continue // not ours, whatever its labels say
			}
			if st, err := otp.Read(secret); err == nil && !st.Removable(now) {
				continue
			}
			err := s.deleteSecret(ctx, client.ObjectKeyFromObject(secret), secret.UID, secret.ResourceVersion)
			if done, err := tookEffect(err); err != nil {
				return deleted, err
			} else if done {
				deleted++
			}
		}
		if page.Continue == "" {
			return deleted, nil
		}
		opts = append(opts[:3], client.Continue(page.Continue))
	}
}
