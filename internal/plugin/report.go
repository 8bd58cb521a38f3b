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

// Package plugin is kubectl-tokenops, the kubectl plugin for TokenRequests: issue, status,
// rotate and check api. Decisions and output are pure functions of what was read (report.go);
// the commands (commands.go) read, write and wait.
package plugin

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/duration"

	tokensv1alpha1 "github.com/tokenops/token-operator/api/v1alpha1"
	"github.com/tokenops/token-operator/internal/token"
)

// issueOptions are the flags of `kubectl tokenops issue`.
type issueOptions struct {
	ttl          time.Duration
	rotateBefore time.Duration
	maxUses      int64
	secretName   string
	subject      string
	purpose      string
	metadata     map[string]string
}

// newTokenRequest is the TokenRequest `issue` creates, or why the flags cannot make one.
func newTokenRequest(namespace, name string, o issueOptions) (*tokensv1alpha1.TokenRequest, error) {
	var errs []error
	if o.ttl <= 0 {
		errs = append(errs, fmt.Errorf("--ttl must be a positive duration (got %s)", o.ttl))
	}
	if o.rotateBefore < 0 || (o.rotateBefore > 0 && o.rotateBefore >= o.ttl) {
		errs = append(errs, fmt.Errorf("--rotate-before must be positive and shorter than --ttl (got %s with --ttl %s)", o.rotateBefore, o.ttl))
	}
	if o.maxUses < 0 {
		errs = append(errs, fmt.Errorf("--max-uses must be at least 1 (got %d)", o.maxUses))
	}
	if o.rotateBefore > 0 && o.maxUses > 0 {
		errs = append(errs, errors.New("--rotate-before and --max-uses cannot be combined: a limited-use token does not rotate"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	tr := &tokensv1alpha1.TokenRequest{
		TypeMeta:   metav1.TypeMeta{APIVersion: tokensv1alpha1.GroupVersion.String(), Kind: "TokenRequest"},
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec: tokensv1alpha1.TokenRequestSpec{TTL: &metav1.Duration{Duration: o.ttl}, SecretName: o.secretName,
			Subject: o.subject, Purpose: o.purpose},
	}
	if len(o.metadata) > 0 {
		tr.Spec.Metadata = make(map[string]tokensv1alpha1.MetadataValue, len(o.metadata))
		for k, v := range o.metadata {
			tr.Spec.Metadata[k] = tokensv1alpha1.MetadataValue(v)
		}
	}
	if o.rotateBefore > 0 {
		tr.Spec.Rotation = &tokensv1alpha1.Rotation{RenewBefore: &metav1.Duration{Duration: o.rotateBefore}}
	}
	if o.maxUses > 0 {
		tr.Spec.MaxUses = &o.maxUses
	}
	return tr, nil
}

// ready is the TokenRequest's Ready condition, if the controller has seen this generation.
func ready(tr *tokensv1alpha1.TokenRequest) *metav1.Condition {
	c := meta.FindStatusCondition(tr.Status.Conditions, tokensv1alpha1.ConditionReady)
	if c == nil || c.ObservedGeneration < tr.Generation {
		return nil
	}
	return c
}

// settled reports whether waiting for a TokenRequest is over: Ready=True is success; a
// Ready=False the controller will not leave by itself is failure (err).
func settled(tr *tokensv1alpha1.TokenRequest) (done bool, err error) {
	c := ready(tr)
	switch {
	case c == nil:
		return false, nil
	case c.Status == metav1.ConditionTrue:
		return true, nil
	case c.Status == metav1.ConditionFalse && slices.Contains(terminal, c.Reason):
		return true, fmt.Errorf("tokenrequest %s is not Ready: %s: %s", tr.Name, c.Reason, c.Message)
	}
	return false, nil
}

// terminal are the Ready=False reasons waiting does not end.
var terminal = []string{tokensv1alpha1.ReasonExpired, tokensv1alpha1.ReasonSpent, tokensv1alpha1.ReasonInvalidSpec,
	tokensv1alpha1.ReasonSecretConflict}

// rotated reports whether the rotation asked for with the rotate annotation value has been
// answered with a new revision.
func rotated(tr *tokensv1alpha1.TokenRequest, request string, before int64) bool {
	return tr.Status.LastRotationRequest == request && tr.Status.Revision > before && ready(tr) != nil
}

// writeStatus prints a TokenRequest as `kubectl tokenops status` shows it. secret may be nil
// (not readable, or gone); events are the TokenRequest's, in any order. Never a token.
func writeStatus(w io.Writer, tr *tokensv1alpha1.TokenRequest, secret *corev1.Secret, events []corev1.Event, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	line := func(k, v string) { _, _ = fmt.Fprintf(tw, "%s:\t%s\n", k, v) }
	line("Name", tr.Name)
	line("Namespace", tr.Namespace)
	if c := meta.FindStatusCondition(tr.Status.Conditions, tokensv1alpha1.ConditionReady); c != nil {
		line("Ready", fmt.Sprintf("%s (%s): %s", c.Status, c.Reason, c.Message))
	} else {
		line("Ready", "Unknown (the operator has not reconciled it yet)")
	}
	line("Secret", orDash(tr.Status.SecretName))
	if tr.Spec.Subject != "" {
		line("Subject", tr.Spec.Subject)
	}
	if tr.Spec.Purpose != "" {
		line("Purpose", tr.Spec.Purpose)
	}
	line("Token ID", orDash(tr.Status.TokenID))
	line("Revision", orDash(fmt.Sprint(tr.Status.Revision)))
	line("Expires", when(tr.Status.ExpiresAt, now))
	renews := "never (no spec.rotation)"
	if tr.Spec.Rotation != nil {
		renews = when(tr.Status.RenewalTime, now)
	}
	line("Renews", renews)
	if tr.Status.PreviousTokenID != "" {
		line("Previous token", fmt.Sprintf("%s, valid until %s", tr.Status.PreviousTokenID, when(tr.Status.PreviousExpiresAt, now)))
	}
	line("Uses left", usesLeft(tr, secret))
	if len(tr.Status.Restarts) > 0 {
		_, _ = fmt.Fprintln(tw, "Restarts:")
		for _, e := range tr.Status.Restarts {
			_, _ = fmt.Fprintf(tw, "  %s/%s\t%s\n", e.Kind, e.Name, restart(e, now))
		}
	}
	_, _ = fmt.Fprintln(tw, "Events:")
	if len(events) == 0 {
		_, _ = fmt.Fprintln(tw, "  <none>")
	}
	events = slices.Clone(events)
	slices.SortStableFunc(events, func(a, b corev1.Event) int { return eventTime(a).Compare(eventTime(b)) })
	if len(events) > maxEvents {
		events = events[len(events)-maxEvents:]
	}
	for _, e := range events {
		_, _ = fmt.Fprintf(tw, "  %s ago\t%s\t%s\t%s\n", duration.HumanDuration(now.Sub(eventTime(e))), e.Type, e.Reason, e.Message)
	}
	return tw.Flush()
}

// restart is what the controller last did to one restart target.
func restart(e tokensv1alpha1.WorkloadRestart, now time.Time) string {
	switch {
	case e.Error != "":
		return "failed: " + e.Error
	case e.Skipped != "":
		return "not restarted: " + e.Skipped
	case e.DeferredUntil != nil:
		return "restart deferred until " + when(e.DeferredUntil, now) + " (--min-restart-interval)"
	case e.Time == nil:
		return fmt.Sprintf("revision %d, started with it (no restart needed)", e.Revision)
	}
	return fmt.Sprintf("restarted for revision %d, %s", e.Revision, when(e.Time, now))
}

// maxEvents is how many of the latest events status shows.
const maxEvents = 10

func eventTime(e corev1.Event) time.Time {
	switch {
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	}
	return e.CreationTimestamp.Time
}

// usesLeft reads the Secret's uses-left annotation for a limited-use token.
func usesLeft(tr *tokensv1alpha1.TokenRequest, secret *corev1.Secret) string {
	c := meta.FindStatusCondition(tr.Status.Conditions, tokensv1alpha1.ConditionReady)
	switch {
	case tr.Spec.MaxUses == nil:
		return "unlimited"
	case c != nil && c.Reason == tokensv1alpha1.ReasonSpent:
		return fmt.Sprintf("0 of %d (spent)", *tr.Spec.MaxUses)
	case secret == nil:
		return fmt.Sprintf("unknown (no readable Secret), of %d", *tr.Spec.MaxUses)
	}
	if n, limited := token.UsesLeftOf(secret); limited {
		return fmt.Sprintf("%d of %d", n, *tr.Spec.MaxUses)
	}
	return fmt.Sprintf("%d of %d", *tr.Spec.MaxUses, *tr.Spec.MaxUses)
}

// when is a time with how far it is from now: "2026-11-29T10:05:00Z (in 5m)", "(2m ago)".
func when(t *metav1.Time, now time.Time) string {
	if t == nil {
		return "-"
	}
	d := t.Sub(now)
	rel := "in " + duration.HumanDuration(d)
	if d < 0 {
		rel = duration.HumanDuration(-d) + " ago"
	}
	return fmt.Sprintf("%s (%s)", t.UTC().Format(time.RFC3339), rel)
}

func orDash(s string) string {
	if s == "" || s == "0" {
		return "-"
	}
	return s
}

// checkLease tells whether the operator's leader election Lease shows a live leader at now.
func checkLease(lease *coordinationv1.Lease, now time.Time) error {
	s := lease.Spec
	if s.HolderIdentity == nil || *s.HolderIdentity == "" {
		return fmt.Errorf("lease %s/%s has no holder: no operator replica leads", lease.Namespace, lease.Name)
	}
	if s.RenewTime == nil || s.LeaseDurationSeconds == nil {
		return fmt.Errorf("lease %s/%s has never been renewed", lease.Namespace, lease.Name)
	}
	age := now.Sub(s.RenewTime.Time)
	if limit := time.Duration(*s.LeaseDurationSeconds) * time.Second; age > limit {
		return fmt.Errorf("lease %s/%s was last renewed %s ago by %s, over its %s duration: the leader is gone",
			lease.Namespace, lease.Name, duration.HumanDuration(age), *s.HolderIdentity, limit)
	}
	return nil
}

// holder names a lease's holder without the random suffix controller-runtime adds.
func holder(lease *coordinationv1.Lease) string {
	h := *lease.Spec.HolderIdentity
	if i := strings.LastIndex(h, "_"); i > 0 {
		h = h[:i]
	}
	return h
}
