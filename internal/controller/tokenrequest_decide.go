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
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	tokensv1alpha1 "github.com/tokenops/token-operator/api/v1alpha1"
	"github.com/tokenops/token-operator/internal/token"
)

// action is what decide asks the controller to do.
type action int

const (
	// actWait: the Secret holds what the status records; nothing to write until the next wake.
	actWait action = iota
	// actInspect: the token index cannot tell; read the Secret and the TokenRequest from the
	// API server, then decide again.
	actInspect
	// actIssue: no token yet; create the Secret with the first one.
	actIssue
	// actReissue: the Secret was deleted before expiry; create it with a new token that keeps
	// the recorded expiry.
	actReissue
	// actAdopt: the Secret holds a newer token than the status records (written before a
	// restart or a lost status patch): record it, never replace it.
	actAdopt
	// actHeal: metadata or token-id was edited, or a secretTemplate key removed; write them
	// back and keep the token.
	actHeal
	// actReplace: the token itself was edited; a new token that keeps the recorded expiry.
	actReplace
	// actRotate: a rotation is due; a new token and lifetime, the old token kept as previous
	// for the overlap.
	actRotate
	// actDropPrevious: the previous token expired; remove it from the Secret.
	actDropPrevious
	// actMarkExpired: the token expired and nothing renews it; mark the TokenRequest Expired
	// (the ExpiryReconciler deletes the Secret).
	actMarkExpired
	// actMarkSpent: the last use was redeemed; mark the TokenRequest Spent. The Secret goes
	// on the next pass (actDeleteSpent), never before the status says so, or a lost status
	// patch would have it re-issued.
	actMarkSpent
	// actDeleteSpent: the status says Spent and the spent Secret is still there; delete it.
	actDeleteSpent
	// actIdle: Expired or Spent, and nothing left to do.
	actIdle
	// actConflict: the Secret's name is taken by a Secret the TokenRequest does not control;
	// it is left untouched and looked at again after conflictRetry.
	actConflict
	// actStale: the cached TokenRequest records an older token than the API server's; a
	// replacement decided on it could undo a token just issued. Write nothing, decide again
	// shortly (the newer TokenRequest's watch event usually comes first).
	actStale
)

var actionNames = [...]string{"wait", "inspect", "issue", "reissue", "adopt", "heal", "replace", "rotate",
	"drop previous", "mark expired", "mark spent", "delete spent", "idle", "conflict", "stale"}

func (a action) String() string { return actionNames[a] }

// observed is everything decide decides from.
type observed struct {
	// TR is the TokenRequest as cached; its status records the current token, if any.
	TR *tokensv1alpha1.TokenRequest
	// TTL is the TokenRequest's ttl, within the operator's limits.
	TTL time.Duration
	// Now is the controller's clock.
	Now time.Time
	// Fresh is a new random token, for the outcomes that issue one.
	Fresh token.Token
	// Cached is the Secret as the token index has it; once Inspected, as the API server has
	// it. Nil when there is none (or, inspected, when Live is not a token Secret).
	Cached *token.Record
	// Inspected is true once Live and StatusCurrent have been read from the API server.
	Inspected bool
	// Live is the Secret as the API server has it (nil: not found); only when Inspected.
	Live *corev1.Secret
	// StatusCurrent is true when the API server's TokenRequest records the same token as TR;
	// only when Inspected and a token is recorded.
	StatusCurrent bool
	// LiveTrusted is true when the token index would admit Live: the operator wrote it as it
	// is (sealed), or it is an unsealed Secret of an earlier version that the status vouches
	// for. Only when Inspected. A Secret the operator did not write as it is never keeps its
	// token nor gives one to adopt.
	LiveTrusted bool
}

// plan is decide's answer.
type plan struct {
	Action action
	// Issued is what the status records afterwards, for the actions that keep a token.
	Issued token.Issued
	// Secret is the Secret to write, nil when nothing is written; Create says whether it is
	// created (no Secret exists) or updated (with the resourceVersion it was read with).
	Secret *corev1.Secret
	Create bool
}

// decide is the TokenRequest controller's one decision: what to do about one TokenRequest and
// its Secret, given what was observed. It makes no call and reads no clock.
func decide(o observed) plan {
	tr := o.TR
	recorded, isRecorded := recordedIssued(tr)
	requested := rotationRequested(tr)
	if isRecorded && !requested {
		switch {
		case spentRecorded(tr):
			if c := o.Cached; c != nil && c.ControlledBy(tr.UID) && c.Spent() && !c.Deleting {
				return plan{Action: actDeleteSpent}
			}
			return plan{Action: actIdle}
		case recorded.Expired(o.Now) && tr.Spec.Rotation == nil:
			return plan{Action: actMarkExpired}
		}
	}

	c := o.Cached
	switch {
	case c == nil && o.Live == nil && !isRecorded:
		// No token and no Secret, as far as the index or the API server knows. Create never
		// overwrites: a Secret the index has not seen is inspected then.
		return issue(o)
	case c != nil && !c.ControlledBy(tr.UID), o.Live != nil && !metav1.IsControlledBy(o.Live, tr):
		return plan{Action: actConflict}
	case c != nil && c.Spent() && !requested:
		return plan{Action: actMarkSpent}
	case c != nil && isRecorded && settled(o, c, recorded):
		return plan{Action: actWait, Issued: recorded}
	case !o.Inspected:
		return plan{Action: actInspect}
	case o.Live == nil:
		return recreate(o, recorded)
	case !isRecorded:
		return takeOver(o)
	}
	return keep(o, recorded)
}

// settled reports whether the Secret, as the Record has it, holds what the status records
// and nothing is due: the steady state, decided without reading the Secret.
func settled(o observed, c *token.Record, recorded token.Issued) bool {
	tr := o.TR
	return c.Sealed && (!o.Inspected || o.LiveTrusted) && c.InStatus(recorded) && c.Limited() == (tr.Spec.MaxUses != nil) &&
		c.Meta == template(tr).Sum() &&
		!rotationDue(tr, recorded, o.Now) && !previousLapsed(recorded, o.Now)
}

// issue is the first token, in a new Secret.
func issue(o observed) plan {
	issued := token.Issued{Token: o.Fresh, Lifetime: token.NewLifetime(o.Now, o.TTL), Source: token.SourceTokenRequest,
		Revision: 1, UsesLeft: maxUses(o.TR)}
	return plan{Action: actIssue, Issued: issued, Secret: newSecret(o.TR, issued), Create: true}
}

// recreate answers a Secret that went away while its token is recorded: a new token, with a
// new lifetime when a rotation is due, else keeping the recorded expiry (deleted by hand).
func recreate(o observed, recorded token.Issued) plan {
	if !o.StatusCurrent {
		return plan{Action: actStale}
	}
	issued := token.Issued{Token: o.Fresh, Source: token.SourceTokenRequest, Revision: recorded.Revision + 1,
		UsesLeft: usesCarried(o.TR)}
	act := actReissue
	if rotationDue(o.TR, recorded, o.Now) {
		// A new lifetime, and with it a fresh use count (a renewal of a Spent token).
		act, issued.Lifetime, issued.UsesLeft = actRotate, token.NewLifetime(o.Now, o.TTL), maxUses(o.TR)
	} else {
		issued.Lifetime = token.Lifetime{IssuedAt: o.Now.UTC().Truncate(time.Second), ExpiresAt: recorded.ExpiresAt}
	}
	return plan{Action: act, Issued: issued, Secret: newSecret(o.TR, issued), Create: true}
}

// liveToken is the token the live Secret holds, as a TokenRequest's: a limit the spec asks
// for but whose count was removed by hand reads as none left (the status does not keep the
// count, and only "none left" is safe to restore; until it is written back, readers see no
// limit, see token.Record.UsesLeft).
func liveToken(o observed) (token.Issued, error) {
	h, err := token.FromSecret(o.Live)
	h.Source = token.SourceTokenRequest
	if o.TR.Spec.MaxUses != nil && h.UsesLeft == nil {
		h.UsesLeft = new(int64(0))
	}
	return h, err
}

// adoptable reports whether the live Secret holds a whole token newer than the status
// records (none recorded, or a higher revision).
func adoptable(h token.Issued, err error, recorded token.Issued, isRecorded bool) bool {
	return err == nil && !h.IssuedAt.IsZero() && !h.ExpiresAt.IsZero() && (!isRecorded || h.Revision > recorded.Revision)
}

// takeOver answers a Secret the TokenRequest controls while its status records no token:
// written just before a restart. A whole token is adopted; a token without its lifetime gets
// one; no usable token is replaced.
func takeOver(o observed) plan {
	if !o.LiveTrusted {
		return plan{Action: actConflict} // not written by the operator as it is: never edited
	}
	h, err := liveToken(o)
	if adoptable(h, err, token.Issued{}, false) {
		h.Revision = max(h.Revision, 1)
		return write(o, actAdopt, h)
	}
	issued := token.Issued{Token: h.Token, Lifetime: token.NewLifetime(o.Now, o.TTL), Source: token.SourceTokenRequest,
		Revision: 1, UsesLeft: maxUses(o.TR)}
	if err != nil {
		issued.Token = o.Fresh
		return write(o, actReplace, issued)
	}
	return write(o, actHeal, issued)
}

// keep makes the live Secret hold what the status records: adopt a newer token, heal edited
// metadata, drop a lapsed previous token, replace an edited token, or rotate.
func keep(o observed, recorded token.Issued) plan {
	h, err := liveToken(o)
	if o.LiveTrusted && adoptable(h, err, recorded, true) {
		return write(o, actAdopt, h)
	}
	desired := recorded
	desired.Token, desired.UsesLeft, desired.Previous = h.Token, h.UsesLeft, nil
	lapsed := previousLapsed(recorded, o.Now)
	if p := recorded.Previous; p != nil && !lapsed && h.Previous != nil && h.Previous.ID == p.ID {
		desired.Previous = &token.Previous{Token: h.Previous.Token, ExpiresAt: p.ExpiresAt}
	}
	// A Secret the operator did not write as it is keeps nothing: its token may be anyone's.
	intact := err == nil && h.ID == recorded.ID && o.LiveTrusted
	switch {
	case rotationDue(o.TR, recorded, o.Now):
		if !o.StatusCurrent {
			return plan{Action: actStale}
		}
		return write(o, actRotate, rotate(o.TR, desired, o.Fresh, intact, o.TTL, o.Now))
	case !intact:
		if !o.StatusCurrent {
			return plan{Action: actStale}
		}
		desired.Token, desired.IssuedAt = o.Fresh, o.Now.UTC().Truncate(time.Second)
		desired.Revision++
		desired.UsesLeft = usesCarried(o.TR)
		return write(o, actReplace, desired)
	case lapsed && o.Cached != nil && o.Cached.InStatus(recorded):
		return write(o, actDropPrevious, desired) // nothing else differs from the status
	}
	return write(o, actHeal, desired)
}

// write is the plan that makes the live Secret hold issued and spec.secretTemplate's keys;
// Secret is nil when it already does.
func write(o observed, act action, issued token.Issued) plan {
	issued = forSpec(o.TR, issued)
	p := plan{Action: act, Issued: issued}
	// An unsealed Secret is written even when nothing else changes: the write seals it.
	if updated, changed := token.Rewrite(o.Live, template(o.TR), issued); changed || o.Cached == nil || !o.Cached.Sealed {
		p.Secret = updated
	}
	return p
}

// newSecret is the Secret a TokenRequest's token is issued into, controlled by it.
func newSecret(tr *tokensv1alpha1.TokenRequest, issued token.Issued) *corev1.Secret {
	issued = forSpec(tr, issued)
	return token.NewSecret(metav1.ObjectMeta{
		Namespace:       tr.Namespace,
		Name:            tr.Status.SecretName,
		OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(tr, tokensv1alpha1.GroupVersion.WithKind("TokenRequest"))},
	}, template(tr), issued)
}

// forSpec is issued saying whom and what it is for as the spec does (subject, purpose,
// metadata): every Secret the controller writes says so. Its issuer is the TokenRequest, read
// from the Secret's controller, never from its data, so none is written.
func forSpec(tr *tokensv1alpha1.TokenRequest, issued token.Issued) token.Issued {
	issued.Subject, issued.Purpose, issued.Metadata = tr.Spec.Subject, tr.Spec.Purpose, nil
	if len(tr.Spec.Metadata) > 0 {
		issued.Metadata = make(map[string]string, len(tr.Spec.Metadata))
		for k, v := range tr.Spec.Metadata {
			issued.Metadata[k] = string(v)
		}
	}
	return issued
}

// template is spec.secretTemplate's labels and annotations (none without one).
func template(tr *tokensv1alpha1.TokenRequest) token.Template {
	if t := tr.Spec.SecretTemplate; t != nil {
		return token.Template{Labels: t.Labels, Annotations: t.Annotations}
	}
	return token.Template{}
}
