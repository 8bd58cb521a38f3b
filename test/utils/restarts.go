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

package utils

import (
	"context"
	"fmt"
	"slices"
	"sync"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// RestartHistory records, from watches, every change of the pod template annotations of each
// Deployment and StatefulSet of a namespace (each one a restart), as the value the change left
// in one annotation: how specs prove that a workload was restarted once per token revision.
type RestartHistory struct {
	watches []watch.Interface
	mu      sync.Mutex
	seen    map[string][]string
	last    map[string]string
}

// WatchRestarts starts recording the workloads of ns until Stop; key is the annotation whose
// value each change records (the TokenRequest's revision key).
func WatchRestarts(ctx context.Context, c client.WithWatch, ns, key string) (*RestartHistory, error) {
	h := &RestartHistory{seen: map[string][]string{}, last: map[string]string{}}
	for _, list := range []client.ObjectList{&appsv1.DeploymentList{}, &appsv1.StatefulSetList{}} {
		w, err := c.Watch(ctx, list, client.InNamespace(ns))
		if err != nil {
			h.Stop()
			return nil, err
		}
		h.watches = append(h.watches, w)
		go h.record(w, key)
	}
	return h, nil
}

func (h *RestartHistory) record(w watch.Interface, key string) {
	for ev := range w.ResultChan() {
		var id string
		var tmpl *corev1.PodTemplateSpec
		switch o := ev.Object.(type) {
		case *appsv1.Deployment:
			id, tmpl = "Deployment/"+o.Name, &o.Spec.Template
		case *appsv1.StatefulSet:
			id, tmpl = "StatefulSet/"+o.Name, &o.Spec.Template
		default:
			continue
		}
		if ev.Type == watch.Deleted {
			continue
		}
		all := fmt.Sprint(tmpl.Annotations)
		h.mu.Lock()
		if prev, ok := h.last[id]; !ok || all != prev {
			h.seen[id] = append(h.seen[id], tmpl.Annotations[key])
			h.last[id] = all
		}
		h.mu.Unlock()
	}
}

// Seen returns, per "Kind/name", the key's value after each change of the pod template's
// annotations, the first entry being the workload as it was first seen.
func (h *RestartHistory) Seen() map[string][]string {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make(map[string][]string, len(h.seen))
	for id, values := range h.seen {
		out[id] = slices.Clone(values)
	}
	return out
}

// Stop ends the recording.
func (h *RestartHistory) Stop() {
	for _, w := range h.watches {
		w.Stop()
	}
}
