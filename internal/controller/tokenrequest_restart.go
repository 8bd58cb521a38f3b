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

// needsRestart decides for one workload: restart it unless its pod template records this
// revision already (the operator restarted it before a crash, a leader change or another
// reconcile) or the workload was created after the current token was issued (its pods
// started with it).
func needsRestart(recorded string, created metav1.Time, revision int64, issuedAt time.Time) bool {
	if r, err := strconv.ParseInt(recorded, 10, 64); err == nil && r >= revision {
		return false
	}
	return !created.After(issuedAt)
}

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

// restartWorkloads restarts, once for the current revision, each workload restartTargets
// names, and records what it did in the status. It reads the workloads from the API server (not
// a cache: this runs once per new token, and a cache would watch every workload of the
// cluster). It reports how soon to try again when something failed.
func (r *TokenRequestReconciler) restartWorkloads(ctx context.Context, tr *tokensv1alpha1.TokenRequest) (retry time.Duration) {
	prev := map[string]tokensv1alpha1.WorkloadRestart{}
	for _, e := range tr.Status.Restarts {
		prev[e.Kind+"/"+e.Name] = e
	}
	var entries []tokensv1alpha1.WorkloadRestart
	seen := map[string]bool{}
	add := func(e tokensv1alpha1.WorkloadRestart) {
		if key := e.Kind + "/" + e.Name; !seen[key] {
			seen[key] = true
			entries = append(entries, e)
			if e.Error == "" {
				return
			}
			metrics.WorkloadRestarts.WithLabelValues(e.Kind, "failed").Inc()
			if e.Error != prev[key].Error {
				r.eventWarning(tr, EventRestartFailed, "Restart", "Could not restart %s %s for token revision %d: %s",
					e.Kind, e.Name, tr.Status.Revision, e.Error)
			}
		}
	}
	for _, t := range tr.Spec.Rotation.RestartTargets {
		objs, err := r.resolve(ctx, tr.Namespace, t)
		if err != nil {
			name := t.Name
			if t.Selector != nil {
				name = "selector " + metav1.FormatLabelSelector(t.Selector)
			}
			add(tokensv1alpha1.WorkloadRestart{Kind: t.Kind, Name: name, Error: restartError(t.Kind, err)})
			retry = restartRetry
			continue
		}
		for _, obj := range objs {
			e, again := r.restartOne(ctx, tr, t.Kind, obj, prev[t.Kind+"/"+obj.GetName()])
			add(e)
			if again > 0 && (retry == 0 || again < retry) {
				retry = again
			}
		}
	}
	recordRestarts(tr, entries, retry == 0)
	return retry
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

// restartOne restarts one workload for the current revision if it needs it.
func (r *TokenRequestReconciler) restartOne(ctx context.Context, tr *tokensv1alpha1.TokenRequest, kind string, obj client.Object,
	prev tokensv1alpha1.WorkloadRestart) (tokensv1alpha1.WorkloadRestart, time.Duration) {
	rev := tr.Status.Revision
	key := tokensv1alpha1.RestartRevisionKey(tr.Name)
	tmpl := podTemplate(obj)
	e := tokensv1alpha1.WorkloadRestart{Kind: kind, Name: obj.GetName(), Revision: rev}
	if !needsRestart(tmpl.Annotations[key], obj.GetCreationTimestamp(), rev, tr.Status.IssuedAt.Time) {
		if prev.Revision == rev {
			e.Time = prev.Time
		}
		return e, 0
	}
	before := obj.DeepCopyObject().(client.Object)
	now := metav1.NewTime(r.Clock.Now().UTC().Truncate(time.Second))
	if tmpl.Annotations == nil {
		tmpl.Annotations = map[string]string{}
	}
	tmpl.Annotations[tokensv1alpha1.AnnotationRestartedAt] = now.Format(time.RFC3339)
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
		return e, restartRetry
	}
	metrics.WorkloadRestarts.WithLabelValues(kind, "restarted").Inc()
	e.Time = &now
	r.event(tr, EventRestarted, "Restart", "Restarted %s %s for token revision %d", kind, obj.GetName(), rev)
	ctrl.LoggerFrom(ctx).Info("Restarted a workload for the new token", "kind", kind, "workload", obj.GetName(), "revision", rev)
	return e, 0
}

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
