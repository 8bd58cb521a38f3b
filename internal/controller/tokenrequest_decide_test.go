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
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	tokensv1alpha1 "github.com/tokenops/token-operator/api/v1alpha1"
	"github.com/tokenops/token-operator/internal/token"
)

// TestDecide covers every outcome of the TokenRequest controller's decision. Each case is
// what the controller observed; the Secret and the Record are made the way the operator
// writes and reads them.
func TestDecide(t *testing.T) {
	at := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
	fresh, other := token.Generate(), token.Generate()
	current := token.Issued{Token: token.Generate(), Lifetime: token.Lifetime{IssuedAt: at, ExpiresAt: at.Add(time.Hour)},
		Source: token.SourceTokenRequest, Revision: 1}

	// tr is a TokenRequest with a 1h ttl and a template label, recording issued (if any).
	tr := func(issued *token.Issued, edit ...func(*tokensv1alpha1.TokenRequest)) *tokensv1alpha1.TokenRequest {
		tr := &tokensv1alpha1.TokenRequest{
			ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "tr", UID: "tr-uid"},
			Spec: tokensv1alpha1.TokenRequestSpec{TTL: &metav1.Duration{Duration: time.Hour},
				SecretTemplate: &tokensv1alpha1.SecretTemplate{Labels: map[string]string{"team": "payments"}}},
		}
		tr.Status.SecretName = "tr"
		for _, e := range edit {
			e(tr)
		}
		if issued != nil {
			recordToken(tr, actIssue, *issued)
		}
		return tr
	}
	renewBefore := func(d time.Duration) func(*tokensv1alpha1.TokenRequest) {
		return func(tr *tokensv1alpha1.TokenRequest) {
			tr.Spec.Rotation = &tokensv1alpha1.Rotation{RenewBefore: &metav1.Duration{Duration: d}}
		}
	}
	maxUses := func(tr *tokensv1alpha1.TokenRequest) { tr.Spec.MaxUses = new(int64(3)) }
	// secret is the Secret the operator writes for issued, edited as given.
	secret := func(owner *tokensv1alpha1.TokenRequest, issued token.Issued, edit ...func(*corev1.Secret)) *corev1.Secret {
		s := newSecret(owner, issued)
		s.UID, s.ResourceVersion = "secret-uid", "7"
		for _, e := range edit {
			e(s)
		}
		return s
	}
	// record is s as the index admits a Secret the operator wrote (sealed).
	record := func(s *corev1.Secret) *token.Record {
		rec, _ := token.RecordOf(s)
		rec.Sealed = true
		return &rec
	}
	// observe is what the controller sees from the index alone; inspected, from the API
	// server (live nil: the Secret is gone).
	observe := func(tr *tokensv1alpha1.TokenRequest, now time.Time, cached *corev1.Secret) observed {
		o := observed{TR: tr, TTL: time.Hour, Now: now, Fresh: fresh}
		if cached != nil {
			o.Cached = record(cached)
		}
		return o
	}
	inspected := func(tr *tokensv1alpha1.TokenRequest, now time.Time, live *corev1.Secret, statusCurrent bool) observed {
		o := observe(tr, now, live)
		o.Inspected, o.Live, o.StatusCurrent, o.LiveTrusted = true, live, statusCurrent, true
		return o
	}
	// untrusted is o with a live Secret that provenance refuses (forged, copied, edited).
	untrusted := func(o observed) observed {
		o.LiveTrusted = false
		o.Cached.Sealed = false
		return o
	}
	// legacy is o with a live Secret of an earlier version: unsealed, vouched for by the status.
	legacy := func(o observed) observed {
		o.Cached.Sealed = false
		return o
	}
	withPrevious := current
	withPrevious.Previous = &token.Previous{Token: other, ExpiresAt: at.Add(10 * time.Minute)}
	spent := func(tr *tokensv1alpha1.TokenRequest) {
		meta.SetStatusCondition(&tr.Status.Conditions, metav1.Condition{Type: tokensv1alpha1.ConditionReady,
			Status: metav1.ConditionFalse, Reason: tokensv1alpha1.ReasonSpent})
	}
	usesLeft := func(v string) func(*corev1.Secret) {
		return func(s *corev1.Secret) { s.Annotations[token.AnnotationUsesLeft] = v }
	}
	limited := current
	limited.UsesLeft = new(int64(3))

	rotateRequested := func(tr *tokensv1alpha1.TokenRequest) *tokensv1alpha1.TokenRequest {
		tr.Annotations = map[string]string{tokensv1alpha1.AnnotationRotate: "now"} // after the token was recorded
		return tr
	}
	plain := tr(&current)
	tests := []struct {
		name string
		o    observed
		want action
		// check looks further at the plan.
		check check
	}{
		{name: "issue: no token recorded, none in the index", o: observe(tr(nil), at, nil), want: actIssue,
			check: all(creates(fresh), issuedAs(at.Add(time.Hour), 1), labeled("team", "payments"), controlledBy(tr(nil)))},
		{name: "issue: no token recorded, and the Secret the index had not seen is gone",
			o: inspected(tr(nil), at, nil, false), want: actIssue},
		{name: "wait: the Secret holds what the status records", o: observe(plain, at.Add(time.Minute), secret(plain, current)),
			want: actWait, check: noWrite},
		{name: "wait: the index lags, the live Secret is settled", o: inspected(plain, at, secret(plain, current), true),
			want: actWait, check: noWrite},
		{name: "inspect: a recorded token is not in the index", o: observe(plain, at, nil), want: actInspect},
		{name: "inspect: the token-id label was edited", o: observe(plain, at, secret(plain, current, func(s *corev1.Secret) {
			s.Labels[token.LabelTokenID] = other.ID
		})), want: actInspect},
		{name: "inspect: a template label was removed", o: observe(plain, at, secret(plain, current, func(s *corev1.Secret) {
			delete(s.Labels, "team")
		})), want: actInspect},
		{name: "inspect: a rotation is due", o: observe(tr(&current, renewBefore(15*time.Minute)), at.Add(45*time.Minute),
			secret(plain, current)), want: actInspect},
		{name: "reissue: the Secret was deleted by hand", o: inspected(plain, at.Add(30*time.Minute), nil, true), want: actReissue,
			check: all(creates(fresh), issuedAs(current.ExpiresAt, 2))},
		{name: "stale: the Secret is gone but the cached status is behind", o: inspected(plain, at, nil, false), want: actStale},
		{name: "rotate into a new Secret: deleted while a rotation is due",
			o: inspected(tr(&current, renewBefore(15*time.Minute)), at.Add(50*time.Minute), nil, true), want: actRotate,
			check: all(creates(fresh), issuedAs(at.Add(110*time.Minute), 2), previous(nil, time.Time{}))},
		{name: "adopt: the Secret holds a newer revision", want: actAdopt,
			o: inspected(plain, at, secret(plain, token.Issued{Token: other, Lifetime: current.Lifetime,
				Source: token.SourceTokenRequest, Revision: 2}), true),
			check: all(noWrite, records(other), issuedAs(current.ExpiresAt, 2))},
		{name: "adopt: written before a restart, no status yet", o: inspected(tr(nil), at, secret(plain, current), false), want: actAdopt,
			check: all(records(current.Token), issuedAs(current.ExpiresAt, 1))},
		{name: "heal: token-id label and expiry edited", want: actHeal,
			o: inspected(plain, at, secret(plain, current, func(s *corev1.Secret) {
				delete(s.Labels, token.LabelTokenID)
				s.Annotations[token.AnnotationExpiresAt] = "2099-01-01T00:00:00Z"
			}), true),
			check: all(writes(current.Token), labeled(token.LabelTokenID, current.ID),
				annotated(token.AnnotationExpiresAt, "2026-11-29T11:00:00Z"))},
		{name: "heal: a template label removed and another changed", want: actHeal,
			o: inspected(tr(&current, func(tr *tokensv1alpha1.TokenRequest) { tr.Spec.SecretTemplate.Labels["tier"] = "gold" }), at,
				secret(plain, current, func(s *corev1.Secret) { delete(s.Labels, "team"); s.Labels["tier"] = "silver" }), true),
			check: all(writes(current.Token), labeled("team", "payments"), labeled("tier", "gold"))},
		{name: "heal, nothing to write: a label added by hand is left alone", want: actHeal,
			o:     inspected(plain, at, secret(plain, current, func(s *corev1.Secret) { s.Labels["added"] = "by hand" }), true),
			check: noWrite},
		{name: "heal: a removed use count of a limited token is written back as none left", want: actHeal,
			o:     inspected(tr(&limited, maxUses), at, secret(plain, current), true),
			check: all(writes(current.Token), annotated(token.AnnotationUsesLeft, "0"))},
		{name: "replace: the token was edited", want: actReplace,
			o: inspected(plain, at.Add(30*time.Minute), secret(plain, current, func(s *corev1.Secret) {
				s.Data[token.DataToken] = []byte(other.String())
			}), true),
			check: all(writes(fresh), issuedAs(current.ExpiresAt, 2))},
		{name: "replace: the token no longer parses, and there is no status yet", want: actReplace,
			o:     inspected(tr(nil), at, secret(plain, current, func(s *corev1.Secret) { s.Data[token.DataToken] = []byte("junk") }), false),
			check: all(writes(fresh), issuedAs(at.Add(time.Hour), 1))},
		{name: "stale: the token was edited but the cached status is behind", want: actStale,
			o: inspected(plain, at, secret(plain, current, func(s *corev1.Secret) { s.Data[token.DataToken] = []byte(other.String()) }), false)},
		{name: "rotate at the renewal time, keeping the old token for the overlap", want: actRotate,
			o:     inspected(tr(&current, renewBefore(15*time.Minute)), at.Add(45*time.Minute), secret(plain, current), true),
			check: all(writes(fresh), issuedAs(at.Add(105*time.Minute), 2), previous(&current.Token, current.ExpiresAt))},
		{name: "rotate on request", want: actRotate,
			o:     inspected(rotateRequested(tr(&current)), at, secret(plain, current), true),
			check: all(writes(fresh), issuedAs(at.Add(time.Hour), 2), previous(nil, time.Time{}))},
		{name: "stale: a rotation is due but the cached status is behind", want: actStale,
			o: inspected(tr(&current, renewBefore(15*time.Minute)), at.Add(45*time.Minute), secret(plain, current), false)},
		{name: "drop previous: its overlap is over", want: actDropPrevious,
			o:     inspected(tr(&withPrevious), at.Add(20*time.Minute), secret(plain, withPrevious), true),
			check: all(writes(current.Token), previous(nil, time.Time{}))},
		{name: "inspect: the previous token's overlap is over", o: observe(tr(&withPrevious), at.Add(20*time.Minute),
			secret(plain, withPrevious)), want: actInspect},
		{name: "mark expired", o: observe(plain, at.Add(time.Hour), secret(plain, current)), want: actMarkExpired},
		{name: "mark spent: the last use was redeemed", want: actMarkSpent,
			o: observe(tr(&limited, maxUses), at, secret(plain, limited, usesLeft("0")))},
		{name: "delete spent: Spent is recorded and the Secret is still there", want: actDeleteSpent,
			o: observe(tr(&limited, maxUses, spent), at, secret(plain, limited, usesLeft("0")))},
		{name: "idle: Spent is recorded and the Secret is gone", o: observe(tr(&limited, maxUses, spent), at, nil), want: actIdle},
		{name: "conflict: the index has a Secret another TokenRequest controls", want: actConflict,
			o: observe(plain, at, secret(plain, current, func(s *corev1.Secret) { s.OwnerReferences[0].UID = "someone-else" }))},
		{name: "replace: the live Secret fails provenance (its token changed under the same id)", want: actReplace,
			o: untrusted(inspected(plain, at, secret(plain, current), true)),
			check: func(t *testing.T, p plan) {
				if p.Issued.ID != fresh.ID {
					t.Errorf("kept token %s of a Secret the operator did not write as it is, want the fresh one", p.Issued.ID)
				}
			}},
		{name: "replace, never adopt: an untrusted Secret with a higher revision", want: actReplace,
			o: untrusted(inspected(plain, at, secret(plain, func() token.Issued { n := current; n.Token, n.Revision = other, 5; return n }()), true))},
		{name: "conflict: an untrusted Secret controlled by the TokenRequest before any status (planted)", want: actConflict,
			o: untrusted(inspected(tr(nil), at, secret(plain, current), false))},
		{name: "heal: an unsealed Secret of an earlier version keeps its token and is written, to be sealed", want: actHeal,
			o: legacy(inspected(plain, at, secret(plain, current), true)),
			check: func(t *testing.T, p plan) {
				if p.Secret == nil || p.Issued.ID != current.ID {
					t.Errorf("plan = %+v, want the recorded token written back (the store seals it)", p)
				}
			}},
		{name: "inspect: the index holds an unsealed Secret of an earlier version", want: actInspect,
			o: func() observed { o := observe(plain, at, secret(plain, current)); o.Cached.Sealed = false; return o }()},
		{name: "conflict: a Secret the index does not see, owned by no one", want: actConflict,
			o: inspected(tr(nil), at, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "tr"}}, false)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := decide(tt.o)
			if p.Action != tt.want {
				t.Fatalf("decide = %v, want %v", p.Action, tt.want)
			}
			if tt.check != nil {
				tt.check(t, p)
			}
		})
	}

	t.Run("every outcome is covered", func(t *testing.T) {
		seen := map[action]bool{}
		for _, tt := range tests {
			seen[tt.want] = true
		}
		for a := range action(len(actionNames)) {
			if !seen[a] {
				t.Errorf("no case decides %v", a)
			}
		}
	})
}

// check looks at a plan beyond its action.
type check func(t *testing.T, p plan)

func all(checks ...check) check {
	return func(t *testing.T, p plan) {
		t.Helper()
		for _, c := range checks {
			c(t, p)
		}
	}
}

func noWrite(t *testing.T, p plan) {
	t.Helper()
	if p.Secret != nil {
		t.Errorf("plan writes the Secret: %+v", p.Secret.ObjectMeta)
	}
}

// creates: the plan creates the Secret, holding tok.
func creates(tok token.Token) check { return saves(true, tok) }

// writes: the plan updates the Secret to hold tok.
func writes(tok token.Token) check { return saves(false, tok) }

func saves(create bool, tok token.Token) check {
	return func(t *testing.T, p plan) {
		t.Helper()
		if p.Secret == nil || p.Create != create {
			t.Fatalf("plan writes %v, creates %v; want a write, create %v", p.Secret != nil, p.Create, create)
		}
		if string(p.Secret.Data[token.DataToken]) != tok.String() {
			t.Errorf("the Secret holds another token than %s", tok.ID)
		}
		records(tok)(t, p)
	}
}

// records: the status records tok.
func records(tok token.Token) check {
	return func(t *testing.T, p plan) {
		t.Helper()
		if p.Issued.Token != tok {
			t.Errorf("records token %s, want %s", p.Issued.ID, tok.ID)
		}
	}
}

func issuedAs(expires time.Time, revision int64) check {
	return func(t *testing.T, p plan) {
		t.Helper()
		if !p.Issued.ExpiresAt.Equal(expires) || p.Issued.Revision != revision {
			t.Errorf("issued expiring %s, revision %d; want %s, %d", p.Issued.ExpiresAt, p.Issued.Revision, expires, revision)
		}
	}
}

// previous: the previous token is tok until expires; none for a nil tok.
func previous(tok *token.Token, expires time.Time) check {
	return func(t *testing.T, p plan) {
		t.Helper()
		got := p.Issued.Previous
		switch {
		case tok == nil && got != nil:
			t.Errorf("previous token %s kept, want none", got.ID)
		case tok == nil && p.Secret != nil && p.Secret.Data[token.DataPreviousToken] != nil:
			t.Error("the previous token is still written")
		case tok != nil && (got == nil || got.Token != *tok || !got.ExpiresAt.Equal(expires)):
			t.Errorf("previous = %+v, want %s until %s", got, tok.ID, expires)
		}
	}
}

func labeled(key, value string) check {
	return func(t *testing.T, p plan) {
		t.Helper()
		if p.Secret == nil || p.Secret.Labels[key] != value {
			t.Errorf("label %s is not %q", key, value)
		}
	}
}

func annotated(key, value string) check {
	return func(t *testing.T, p plan) {
		t.Helper()
		if v, ok := p.Secret.Annotations[key]; p.Secret == nil || !ok || v != value {
			t.Errorf("annotation %s = %q, want %q", key, v, value)
		}
	}
}

func controlledBy(tr *tokensv1alpha1.TokenRequest) check {
	return func(t *testing.T, p plan) {
		t.Helper()
		if p.Secret == nil || !metav1.IsControlledBy(p.Secret, tr) {
			t.Error("the Secret is not controlled by the TokenRequest")
		}
	}
}
