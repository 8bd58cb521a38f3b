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

// The restart decision for one workload of spec.rotation.restartTargets, as pure functions
// of what the controller read (tokenrequest_restart.go reads and patches).

import (
	"fmt"
	"slices"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"

	tokensv1alpha1 "github.com/tokenops/token-operator/api/v1alpha1"
)

// restartAction is what the restart decision answers for one workload.
type restartAction int

const (
	// restartNow: patch the pod template.
	restartNow restartAction = iota
	// restartHandled: the workload has the current token already; nothing to write.
	restartHandled
	// restartSkip: a workload matched by a selector that does not need a restart to see a
	// new token.
	restartSkip
	// restartDefer: due, but the workload was restarted less than the minimum interval ago.
	restartDefer
)

// restartInput is what the restart decision for one workload reads: the workload's pod
// template as the API server holds it, and the TokenRequest's current token.
type restartInput struct {
	Template *corev1.PodTemplateSpec
	Created  time.Time
	// ByName is true for a workload a target names (always restarted); false for one only a
	// selector matched.
	ByName bool
	// Secret is the name of the TokenRequest's Secret; RevisionKey its revision annotation.
	Secret, RevisionKey string
	Revision            int64
	IssuedAt, Now       time.Time
	// MinInterval is --min-restart-interval (0: no limit).
	MinInterval time.Duration
}

// restartVerdict is the decision for one workload: what to do, why, and for a deferral,
// when the restart may happen; RestartedAt is the workload's last restart, if known.
type restartVerdict struct {
	Action      restartAction
	Why         string
	NotBefore   time.Time
	RestartedAt time.Time
}

// restartRules are the steps of decideRestart, in order: the first that answers decides; a
// workload none of them answers for is restarted now. Each reads only its input.
var restartRules = []func(restartInput, time.Time) (restartVerdict, bool){
	restartedForRevision,
	startedWithToken,
	restartedSinceToken,
	readsTokenOnlyLive,
	restartedTooRecently,
}

// decideRestart decides for one workload whether to restart it for the current token now.
// It is pure: everything comes from the workload as the API server holds it, so the answer
// is the same on every replica, across TokenRequests and across operator restarts.
func decideRestart(in restartInput) restartVerdict {
	last := lastRestart(in.Template)
	for _, rule := range restartRules {
		if v, ok := rule(in, last); ok {
			return v
		}
	}
	return restartVerdict{Action: restartNow, RestartedAt: last}
}

// restartedForRevision: the pod template records this revision already (the operator
// restarted it before a crash, a leader change or another reconcile).
func restartedForRevision(in restartInput, last time.Time) (restartVerdict, bool) {
	r, err := strconv.ParseInt(in.Template.Annotations[in.RevisionKey], 10, 64)
	return restartVerdict{Action: restartHandled, RestartedAt: last}, err == nil && r >= in.Revision
}

// startedWithToken: the workload was created after the current token was issued; its pods
// started with it. (Created in the token's own second, it is restarted to be safe.)
func startedWithToken(in restartInput, _ time.Time) (restartVerdict, bool) {
	return restartVerdict{Action: restartHandled}, in.Created.After(in.IssuedAt)
}

// restartedSinceToken: the workload was restarted (for another TokenRequest) after the current
// token was issued; its new pods read it. Both times are whole seconds, so a restart in the
// token's own second does not count.
func restartedSinceToken(in restartInput, last time.Time) (restartVerdict, bool) {
	return restartVerdict{Action: restartHandled, RestartedAt: last}, last.After(in.IssuedAt)
}

// readsTokenOnlyLive: a workload matched by a selector whose pods see a new token without a
// restart (or never read it) is skipped. A workload named by a target is always restarted.
func readsTokenOnlyLive(in restartInput, last time.Time) (restartVerdict, bool) {
	if in.ByName {
		return restartVerdict{}, false
	}
	needs, why := templateNeedsRestart(&in.Template.Spec, in.Secret)
	return restartVerdict{Action: restartSkip, Why: why, RestartedAt: last}, !needs
}

// restartedTooRecently: the workload was restarted less than the minimum interval ago, for
// whatever TokenRequest; the restart waits. The annotation holds whole seconds (rounded
// down), so one second is added: two restarts are never closer than the interval.
func restartedTooRecently(in restartInput, last time.Time) (restartVerdict, bool) {
	if in.MinInterval <= 0 || last.IsZero() {
		return restartVerdict{}, false
	}
	notBefore := last.Add(in.MinInterval + time.Second)
	return restartVerdict{Action: restartDefer, NotBefore: notBefore, RestartedAt: last,
		Why: fmt.Sprintf("restarted at %s, less than --min-restart-interval (%s) ago", last.UTC().Format(time.RFC3339), in.MinInterval),
	}, in.Now.Before(notBefore)
}

// lastRestart is when the operator last restarted the workload, for any TokenRequest (zero
// if never, or if the annotation does not parse).
func lastRestart(tmpl *corev1.PodTemplateSpec) time.Time {
	t, err := time.Parse(time.RFC3339, tmpl.Annotations[tokensv1alpha1.AnnotationRestartedAt])
	if err != nil {
		return time.Time{}
	}
	return t
}

// templateNeedsRestart decides whether pods of spec need a restart to see a new token in the
// Secret named secret: they do if a container reads it at start, through env valueFrom,
// envFrom, or a mount of it with subPath (which the kubelet never updates); a plain volume
// mount is updated by the kubelet. why says which, naming the container.
func templateNeedsRestart(spec *corev1.PodSpec, secret string) (needs bool, why string) {
	volumes := map[string]bool{}
	for _, v := range spec.Volumes {
		if volumeHoldsSecret(v, secret) {
			volumes[v.Name] = true
		}
	}
	containers := slices.Concat(spec.InitContainers, spec.Containers)
	for _, e := range spec.EphemeralContainers {
		containers = append(containers, corev1.Container(e.EphemeralContainerCommon))
	}
	mounted := false
	for _, c := range containers {
		for _, e := range c.Env {
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil && e.ValueFrom.SecretKeyRef.Name == secret {
				return true, fmt.Sprintf("container %s reads Secret %s in environment variable %s", c.Name, secret, e.Name)
			}
		}
		for _, e := range c.EnvFrom {
			if e.SecretRef != nil && e.SecretRef.Name == secret {
				return true, fmt.Sprintf("container %s reads Secret %s through envFrom", c.Name, secret)
			}
		}
		for _, m := range c.VolumeMounts {
			if !volumes[m.Name] {
				continue
			}
			if m.SubPath != "" || m.SubPathExpr != "" {
				return true, fmt.Sprintf("container %s mounts Secret %s with a subPath, which the kubelet does not update", c.Name, secret)
			}
			mounted = true
		}
	}
	if mounted {
		return false, fmt.Sprintf("its pods mount Secret %s as a volume, which the kubelet updates without a restart", secret)
	}
	return false, fmt.Sprintf("its pod template does not read Secret %s", secret)
}

// volumeHoldsSecret reports whether v shows the Secret named secret: a secret volume of it, or
// a projected volume with it among its sources.
func volumeHoldsSecret(v corev1.Volume, secret string) bool {
	if v.Secret != nil && v.Secret.SecretName == secret {
		return true
	}
	if v.Projected != nil {
		for _, src := range v.Projected.Sources {
			if src.Secret != nil && src.Secret.Name == secret {
				return true
			}
		}
	}
	return false
}
