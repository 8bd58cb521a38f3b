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
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/tokenops/token-operator/api/v1alpha1"
	"github.com/tokenops/token-operator/internal/metrics"
)

// MinRolloutOverlap is the shortest overlap (how long the previous token validates after a
// rotation) that restartTargets' rollouts are assumed to fit in; a shorter one is warned of.
const MinRolloutOverlap = 2 * time.Minute

// restartRetry is how soon failed restarts are tried again.
const restartRetry = 30 * time.Second

// DefaultMinRestartInterval is how often one workload may be restarted at most unless
// --min-restart-interval says otherwise.
const DefaultMinRestartInterval = time.Minute

// workloadKinds are the kinds restartTargets may name, each with a new object and list.
var workloadKinds = map[string]func() (client.Object, client.ObjectList){
	"Deployment":  func() (client.Object, client.ObjectList) { return &appsv1.Deployment{}, &appsv1.DeploymentList{} },
	"StatefulSet": func() (client.Object, client.ObjectList) { return &appsv1.StatefulSet{}, &appsv1.StatefulSetList{} },
	"DaemonSet":   func() (client.Object, client.ObjectList) { return &appsv1.DaemonSet{}, &appsv1.DaemonSetList{} },
}

// podTemplate is a workload's pod template.
func podTemplate(obj client.Object) *corev1.PodTemplateSpec {
	switch w := obj.(type) {
	case *appsv1.Deployment:
		return &w.Spec.Template
	case *appsv1.StatefulSet:
		return &w.Spec.Template
	case *appsv1.DaemonSet:
		return &w.Spec.Template
	}
	return nil
}

// workload is one workload restartTargets resolve to; byName is true when a target names it
// (a workload both named and matched by a selector counts as named).
type workload struct {
	kind   string
	obj    client.Object
	byName bool
}

// restartWorkloads restarts, once for the current revision, each workload restartTargets
// resolve to that needs it, and records what it did in the status. It reads the workloads
// from the API server (not a cache: this runs once per new token, and a cache would watch
// every workload of the cluster). It reports how soon to look again when something failed or
// was deferred.
func (r *TokenRequestReconciler) restartWorkloads(ctx context.Context, tr *tokensv1alpha1.TokenRequest) (retry time.Duration) {
	prev := map[string]tokensv1alpha1.WorkloadRestart{}
	for _, e := range tr.Status.Restarts {
		prev[e.Kind+"/"+e.Name] = e
	}
	found, failed := r.resolveTargets(ctx, tr)
	var entries []tokensv1alpha1.WorkloadRestart
	for _, w := range found {
		e, again := r.restartOne(ctx, tr, w, prev[w.kind+"/"+w.obj.GetName()])
		entries = append(entries, e)
		retry = sooner(retry, again)
	}
	for _, e := range failed {
		entries = append(entries, e)
		metrics.WorkloadRestarts.WithLabelValues(e.Kind, resultFailed).Inc()
		if e.Error != prev[e.Kind+"/"+e.Name].Error {
			r.eventWarning(tr, EventRestartFailed, "Restart", "Could not restart %s %s for token revision %d: %s",
				e.Kind, e.Name, tr.Status.Revision, e.Error)
		}
		retry = sooner(retry, restartRetry)
	}
	recordRestarts(tr, entries, retry == 0)
	return retry
}

// sooner is the shorter of two waits, 0 meaning none.
func sooner(a, b time.Duration) time.Duration {
	if a == 0 || (b > 0 && b < a) {
		return b
	}
	return a
}

// resolveTargets finds each workload restartTargets name, once, and an entry with the error
// for each target that could not be resolved.
func (r *TokenRequestReconciler) resolveTargets(ctx context.Context, tr *tokensv1alpha1.TokenRequest) (found []workload,
	failed []tokensv1alpha1.WorkloadRestart) {
	at := map[string]int{}
	for _, t := range tr.Spec.Rotation.RestartTargets {
		objs, err := r.resolve(ctx, tr.Namespace, t)
		if err != nil {
			name := t.Name
			if t.Selector != nil {
				name = "selector " + metav1.FormatLabelSelector(t.Selector)
			}
			if !slices.ContainsFunc(failed, func(e tokensv1alpha1.WorkloadRestart) bool { return e.Kind == t.Kind && e.Name == name }) {
				failed = append(failed, tokensv1alpha1.WorkloadRestart{Kind: t.Kind, Name: name, Error: restartError(t.Kind, err)})
			}
			continue
		}
		for _, obj := range objs {
			key := t.Kind + "/" + obj.GetName()
			if i, ok := at[key]; ok {
				found[i].byName = found[i].byName || t.Selector == nil
				continue
			}
			at[key] = len(found)
			found = append(found, workload{kind: t.Kind, obj: obj, byName: t.Selector == nil})
		}
	}
	return found, failed
}

// resolve finds the workloads one target names; a name that is not found is none.
func (r *TokenRequestReconciler) resolve(ctx context.Context, ns string, t tokensv1alpha1.RestartTarget) ([]client.Object, error) {
	newKind, ok := workloadKinds[t.Kind]
	if !ok {
		return nil, fmt.Errorf("kind %q cannot be restarted", t.Kind)
	}
	obj, list := newKind()
	if t.Selector == nil {
		err := r.APIReader.Get(ctx, client.ObjectKey{Namespace: ns, Name: t.Name}, obj)
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return []client.Object{obj}, err
	}
	sel, err := metav1.LabelSelectorAsSelector(t.Selector)
	if err != nil {
		return nil, err
	}
	if err := r.APIReader.List(ctx, list, client.InNamespace(ns), client.MatchingLabelsSelector{Selector: sel}); err != nil {
		return nil, err
	}
	var objs []client.Object
	err = meta.EachListItem(list, func(o runtime.Object) error {
		objs = append(objs, o.(client.Object))
		return nil
	})
	return objs, err
}

// restartOne restarts one workload for the current revision if decideRestart says so, and
// says how soon to look again (a conflict, an error, a deferral).
func (r *TokenRequestReconciler) restartOne(ctx context.Context, tr *tokensv1alpha1.TokenRequest, w workload,
	prev tokensv1alpha1.WorkloadRestart) (tokensv1alpha1.WorkloadRestart, time.Duration) {
	rev, kind, obj := tr.Status.Revision, w.kind, w.obj
	key := tokensv1alpha1.RestartRevisionKey(tr.Name)
	tmpl := podTemplate(obj)
	now := r.Clock.Now()
	v := decideRestart(restartInput{Template: tmpl, Created: obj.GetCreationTimestamp().Time, ByName: w.byName,
		Secret: tr.SecretNameOrDefault(), RevisionKey: key, Revision: rev, IssuedAt: tr.Status.IssuedAt.Time, Now: now,
		MinInterval: r.MinRestartInterval})
	e := tokensv1alpha1.WorkloadRestart{Kind: kind, Name: obj.GetName(), Revision: rev}
	log := ctrl.LoggerFrom(ctx).WithValues("kind", kind, "workload", obj.GetName(), "revision", rev)
	switch v.Action {
	case restartHandled:
		switch {
		case prev.Revision == rev && prev.Time != nil:
			e.Time = prev.Time
		case !v.RestartedAt.IsZero() && !v.RestartedAt.Before(tr.Status.IssuedAt.Time):
			e.Time = &metav1.Time{Time: v.RestartedAt}
		}
		return e, 0
	case restartSkip:
		e.Revision, e.Time, e.Skipped = prev.Revision, prev.Time, v.Why
		if prev.Skipped != v.Why {
			metrics.WorkloadRestarts.WithLabelValues(kind, resultSkipped).Inc()
			r.event(tr, EventRestartSkipped, "Restart", "Did not restart %s %s, matched by a selector, for token revision %d: %s",
				kind, obj.GetName(), rev, v.Why)
		}
		return e, 0
	case restartDefer:
		e.Revision, e.Time, e.DeferredUntil = prev.Revision, prev.Time, &metav1.Time{Time: v.NotBefore}
		if prev.DeferredUntil == nil || !prev.DeferredUntil.Equal(e.DeferredUntil) {
			metrics.WorkloadRestarts.WithLabelValues(kind, resultDeferred).Inc()
			log.V(1).Info("Deferred the restart of a workload", "until", v.NotBefore, "why", v.Why)
		}
		return e, max(v.NotBefore.Sub(now), time.Second)
	}
	before := obj.DeepCopyObject().(client.Object)
	at := metav1.NewTime(now.UTC().Truncate(time.Second))
	if tmpl.Annotations == nil {
		tmpl.Annotations = map[string]string{}
	}
	tmpl.Annotations[tokensv1alpha1.AnnotationRestartedAt] = at.Format(time.RFC3339)
	tmpl.Annotations[key] = strconv.FormatInt(rev, 10)
	// The patch carries the resourceVersion it read: of two replicas that both see the
	// restart due, one restarts the workload; the other reads its annotation next time.
	err := r.Patch(ctx, obj, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{}))
	switch {
	case apierrors.IsConflict(err):
		e.Revision, e.Time = prev.Revision, prev.Time
		return e, time.Second
	case apierrors.IsNotFound(err):
		return e, 0
	case err != nil:
		e.Revision, e.Time, e.Error = prev.Revision, prev.Time, restartError(kind, err)
		metrics.WorkloadRestarts.WithLabelValues(kind, resultFailed).Inc()
		if e.Error != prev.Error {
			r.eventWarning(tr, EventRestartFailed, "Restart", "Could not restart %s %s for token revision %d: %s",
				kind, obj.GetName(), rev, e.Error)
		}
		return e, restartRetry
	}
	metrics.WorkloadRestarts.WithLabelValues(kind, resultRestarted).Inc()
	e.Time = &at
	r.event(tr, EventRestarted, "Restart", "Restarted %s %s for token revision %d", kind, obj.GetName(), rev)
	log.Info("Restarted a workload for the new token")
	return e, 0
}

// Results of tokenoperator_workload_restarts_total. Only failed is a failure: a deferred
// restart happens later by design, a skipped one is not needed.
const (
	resultRestarted = "restarted"
	resultFailed    = "failed"
	resultDeferred  = "deferred"
	resultSkipped   = "skipped"
)

// restartError is the status and event text of a failed restart; a refusal says which grant
// is missing.
func restartError(kind string, err error) string {
	if apierrors.IsForbidden(err) {
		return fmt.Sprintf("forbidden: grant the operator get, list and patch on %ss in group apps (the restart-targets "+
			"opt-in: kustomize component config/components/restart-targets, or Helm value restartTargets.enabled=true): %v",
			strings.ToLower(kind), err)
	}
	return err.Error()
}
