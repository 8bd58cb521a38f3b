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
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	tokensv1alpha1 "github.com/tokenops/token-operator/api/v1alpha1"
)

func TestDecideRestart(t *testing.T) {
	issued := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
	const key = "tokens.tokenops.io/revision-env-token"
	// template is a pod template reading env-token from the environment, or through a plain
	// volume mount, with these annotations (key=value pairs).
	template := func(env bool, kv ...string) *corev1.PodTemplateSpec {
		tmpl := &corev1.PodTemplateSpec{}
		tmpl.Annotations = map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			tmpl.Annotations[kv[i]] = kv[i+1]
		}
		c := corev1.Container{Name: "app"}
		if env {
			c.EnvFrom = []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "env-token"}}}}
		} else {
			tmpl.Spec.Volumes = []corev1.Volume{{Name: "t", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "env-token"}}}}
			c.VolumeMounts = []corev1.VolumeMount{{Name: "t", MountPath: "/token"}}
		}
		tmpl.Spec.Containers = []corev1.Container{c}
		return tmpl
	}
	at := func(d time.Duration) string { return issued.Add(d).Format(time.RFC3339) }
	restartedAt := tokensv1alpha1.AnnotationRestartedAt
	for _, tc := range []struct {
		name     string
		tmpl     *corev1.PodTemplateSpec
		byName   bool
		created  time.Duration // relative to the token's issue
		now      time.Duration
		want     restartAction
		deferred time.Duration // NotBefore, relative to the token's issue
	}{
		{name: "never restarted, created before the token", tmpl: template(true), created: -time.Hour, want: restartNow},
		{name: "restarted for an older revision long ago", tmpl: template(true, key, "2", restartedAt, at(-time.Hour)),
			created: -2 * time.Hour, want: restartNow},
		{name: "restarted for this revision (a retry, a restart, a new leader)", tmpl: template(true, key, "3"),
			created: -time.Hour, want: restartHandled},
		{name: "restarted for a later revision", tmpl: template(true, key, "4"), created: -time.Hour, want: restartHandled},
		{name: "created after the token: its pods have it", tmpl: template(true), created: time.Second, want: restartHandled},
		{name: "created in the token's second: restarted to be safe", tmpl: template(true), created: 0, want: restartNow},
		{name: "garbage in the annotations", tmpl: template(true, key, "three", restartedAt, "yesterday"),
			created: -time.Hour, want: restartNow},
		{name: "restarted for another TokenRequest after this token: its pods have it",
			tmpl: template(true, restartedAt, at(time.Second)), created: -time.Hour, now: 5 * time.Second, want: restartHandled},
		{name: "restarted in the token's second: not counted", tmpl: template(true, restartedAt, at(0)),
			created: -time.Hour, now: 2 * time.Minute, want: restartNow},
		{name: "selected, reads the Secret only through a plain volume", tmpl: template(false), created: -time.Hour,
			want: restartSkip},
		{name: "named, reads the Secret only through a plain volume: always restarted", tmpl: template(false), byName: true,
			created: -time.Hour, want: restartNow},
		{name: "selected, reads it from the environment", tmpl: template(true), created: -time.Hour, want: restartNow},
		{name: "restarted 30 s before the token: waits until a minute and a second after that",
			tmpl: template(true, key, "2", restartedAt, at(-30*time.Second)), created: -time.Hour, now: time.Second,
			want: restartDefer, deferred: 31 * time.Second},
		{name: "named targets wait too", tmpl: template(false, key, "2", restartedAt, at(-30*time.Second)), byName: true,
			created: -time.Hour, now: time.Second, want: restartDefer, deferred: 31 * time.Second},
		{name: "one second short of the interval and a second", tmpl: template(true, restartedAt, at(-30*time.Second)),
			created: -time.Hour, now: 30*time.Second + 999*time.Millisecond, want: restartDefer, deferred: 31 * time.Second},
		{name: "the interval and a second have passed", tmpl: template(true, restartedAt, at(-30*time.Second)),
			created: -time.Hour, now: 31 * time.Second, want: restartNow},
	} {
		in := restartInput{Template: tc.tmpl, Created: issued.Add(tc.created), ByName: tc.byName, Secret: "env-token",
			RevisionKey: key, Revision: 3, IssuedAt: issued, Now: issued.Add(tc.now), MinInterval: time.Minute}
		got := decideRestart(in)
		if got.Action != tc.want {
			t.Errorf("%s: action %d, want %d (%+v)", tc.name, got.Action, tc.want, got)
		}
		if tc.want == restartDefer && !got.NotBefore.Equal(issued.Add(tc.deferred)) {
			t.Errorf("%s: deferred until %s, want %s", tc.name, got.NotBefore, issued.Add(tc.deferred))
		}
		if in.MinInterval = 0; tc.want == restartDefer && decideRestart(in).Action != restartNow {
			t.Errorf("%s: deferred with --min-restart-interval=0 (no limit)", tc.name)
		}
	}
}

func TestTemplateNeedsRestart(t *testing.T) {
	const secret = "env-token"
	secretVolume := corev1.Volume{Name: "t", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: secret}}}
	projected := corev1.Volume{Name: "t", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
		Sources: []corev1.VolumeProjection{{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: secret}}}}}}}
	otherVolume := corev1.Volume{Name: "t", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "other"}}}
	ref := func(name string) corev1.LocalObjectReference { return corev1.LocalObjectReference{Name: name} }
	envOf := func(name string) corev1.EnvVar {
		return corev1.EnvVar{Name: "TOKEN", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: ref(name), Key: "token"}}}
	}
	mount := corev1.VolumeMount{Name: "t", MountPath: "/token"}
	withSubPath := corev1.VolumeMount{Name: "t", MountPath: "/token", SubPath: "token"}
	withSubPathExpr := corev1.VolumeMount{Name: "t", MountPath: "/token", SubPathExpr: "$(POD)"}
	pod := func(volumes []corev1.Volume, containers ...corev1.Container) *corev1.PodSpec {
		return &corev1.PodSpec{Volumes: volumes, Containers: containers}
	}
	for _, tc := range []struct {
		name  string
		spec  *corev1.PodSpec
		needs bool
		why   string
	}{
		{"env valueFrom", pod(nil, corev1.Container{Name: "app", Env: []corev1.EnvVar{{Name: "A", Value: "b"}, envOf(secret)}}), true,
			"container app reads Secret env-token in environment variable TOKEN"},
		{"env valueFrom of another Secret", pod(nil, corev1.Container{Name: "app", Env: []corev1.EnvVar{envOf("other")}}), false,
			"does not read Secret env-token"},
		{"env valueFrom a ConfigMap", pod(nil, corev1.Container{Name: "app", Env: []corev1.EnvVar{{Name: "A", ValueFrom: &corev1.EnvVarSource{
			ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: ref(secret), Key: "token"}}}}}), false, "does not read"},
		{"envFrom", pod(nil, corev1.Container{Name: "app", EnvFrom: []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: ref(secret)}}}}),
			true, "container app reads Secret env-token through envFrom"},
		{"envFrom a ConfigMap of that name", pod(nil, corev1.Container{Name: "app", EnvFrom: []corev1.EnvFromSource{
			{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: ref(secret)}}}}), false, "does not read"},
		{"an init container's env", &corev1.PodSpec{InitContainers: []corev1.Container{{Name: "init", Env: []corev1.EnvVar{envOf(secret)}}},
			Containers: []corev1.Container{{Name: "app"}}}, true, "container init reads"},
		{"plain volume mount", pod([]corev1.Volume{secretVolume}, corev1.Container{Name: "app", VolumeMounts: []corev1.VolumeMount{mount}}), false,
			"its pods mount Secret env-token as a volume, which the kubelet updates without a restart"},
		{"projected volume mount", pod([]corev1.Volume{projected}, corev1.Container{Name: "app", VolumeMounts: []corev1.VolumeMount{mount}}), false,
			"as a volume"},
		{"subPath mount", pod([]corev1.Volume{secretVolume}, corev1.Container{Name: "app", VolumeMounts: []corev1.VolumeMount{withSubPath}}), true,
			"container app mounts Secret env-token with a subPath, which the kubelet does not update"},
		{"subPathExpr mount of a projected volume", pod([]corev1.Volume{projected}, corev1.Container{Name: "app",
			VolumeMounts: []corev1.VolumeMount{withSubPathExpr}}), true, "with a subPath"},
		{"subPath mount of another Secret", pod([]corev1.Volume{otherVolume}, corev1.Container{Name: "app",
			VolumeMounts: []corev1.VolumeMount{withSubPath}}), false, "does not read"},
		{"a plain mount in one container, a subPath in another", pod([]corev1.Volume{secretVolume},
			corev1.Container{Name: "a", VolumeMounts: []corev1.VolumeMount{mount}}, corev1.Container{Name: "b", VolumeMounts: []corev1.VolumeMount{withSubPath}}),
			true, "container b mounts"},
		{"volume declared, never mounted", pod([]corev1.Volume{secretVolume}, corev1.Container{Name: "app"}), false, "does not read"},
		{"nothing", pod(nil, corev1.Container{Name: "app"}), false, "its pod template does not read Secret env-token"},
	} {
		needs, why := templateNeedsRestart(tc.spec, secret)
		if needs != tc.needs || !strings.Contains(why, tc.why) {
			t.Errorf("%s: templateNeedsRestart = %v, %q; want %v, %q", tc.name, needs, why, tc.needs, tc.why)
		}
	}
}

func TestRestartsDue(t *testing.T) {
	targets := []tokensv1alpha1.RestartTarget{{Kind: "Deployment", Name: "web"}}
	tr := func(targets []tokensv1alpha1.RestartTarget, revision, restarted int64) *tokensv1alpha1.TokenRequest {
		x := &tokensv1alpha1.TokenRequest{}
		x.Spec.Rotation = &tokensv1alpha1.Rotation{RestartTargets: targets}
		x.Status.Revision, x.Status.RestartedRevision, x.Status.IssuedAt = revision, restarted, &metav1.Time{}
		return x
	}
	for _, tc := range []struct {
		name string
		tr   *tokensv1alpha1.TokenRequest
		want bool
	}{
		{"first token: workloads start with it", tr(targets, 1, 0), false},
		{"rotated, not yet restarted", tr(targets, 2, 0), true},
		{"rotated twice, restarted for the first", tr(targets, 3, 2), true},
		{"restarted for this revision", tr(targets, 3, 3), false},
		{"no targets", tr(nil, 3, 0), false},
		{"no rotation", &tokensv1alpha1.TokenRequest{Status: tokensv1alpha1.TokenRequestStatus{Revision: 3}}, false},
	} {
		if got := restartsDue(tc.tr); got != tc.want {
			t.Errorf("%s: restartsDue = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestOverlapCondition(t *testing.T) {
	withRotation := func(rot tokensv1alpha1.Rotation) *tokensv1alpha1.TokenRequest {
		tr := &tokensv1alpha1.TokenRequest{}
		tr.Spec.TTL = &metav1.Duration{Duration: time.Hour}
		tr.Spec.Rotation = &rot
		return tr
	}
	targets := []tokensv1alpha1.RestartTarget{{Kind: "Deployment", Name: "web"}}
	for _, tc := range []struct {
		name   string
		tr     *tokensv1alpha1.TokenRequest
		status metav1.ConditionStatus
		reason string
	}{
		{"no targets: no condition", withRotation(tokensv1alpha1.Rotation{RenewBefore: &metav1.Duration{Duration: time.Second}}), "", ""},
		{"renewBefore 30s", withRotation(tokensv1alpha1.Rotation{RenewBefore: &metav1.Duration{Duration: 30 * time.Second},
			RestartTargets: targets}), metav1.ConditionFalse, tokensv1alpha1.ReasonOverlapTooShort},
		{"renewBefore 2m", withRotation(tokensv1alpha1.Rotation{RenewBefore: &metav1.Duration{Duration: 2 * time.Minute},
			RestartTargets: targets}), metav1.ConditionTrue, tokensv1alpha1.ReasonOverlapSufficient},
		{"3% of 1h", withRotation(tokensv1alpha1.Rotation{RenewBeforePercentage: new(int32(3)), RestartTargets: targets}),
			metav1.ConditionFalse, tokensv1alpha1.ReasonOverlapTooShort},
		{"10% of 1h", withRotation(tokensv1alpha1.Rotation{RenewBeforePercentage: new(int32(10)), RestartTargets: targets}),
			metav1.ConditionTrue, tokensv1alpha1.ReasonOverlapSufficient},
	} {
		c := overlapCondition(tc.tr)
		switch {
		case tc.status == "" && c != nil:
			t.Errorf("%s: condition %+v, want none", tc.name, c)
		case tc.status != "" && (c == nil || c.Status != tc.status || c.Reason != tc.reason):
			t.Errorf("%s: condition %+v, want %s %s", tc.name, c, tc.status, tc.reason)
		}
	}
}

func TestRestartRevisionKey(t *testing.T) {
	long := strings.Repeat("a", 60)
	for _, tc := range []struct{ name, want string }{
		{"api-key", "tokens.tokenops.io/revision-api-key"},
		{strings.Repeat("b", 54), "tokens.tokenops.io/revision-" + strings.Repeat("b", 54)},
		{long, "tokens.tokenops.io/revision-" + long[:45] + "-"},
	} {
		got := tokensv1alpha1.RestartRevisionKey(tc.name)
		if !strings.HasPrefix(got, tc.want) {
			t.Errorf("RestartRevisionKey(%q) = %q, want %q...", tc.name, got, tc.want)
		}
		if n := len(got) - len("tokens.tokenops.io/"); n > 63 {
			t.Errorf("RestartRevisionKey(%q) = %q: name part of %d characters, over 63", tc.name, got, n)
		}
	}
	if tokensv1alpha1.RestartRevisionKey(long) == tokensv1alpha1.RestartRevisionKey(long+"b") {
		t.Error("two long names share a key")
	}
}

func TestRestartIntervalCondition(t *testing.T) {
	tr := func(ttl string, rot tokensv1alpha1.Rotation) *tokensv1alpha1.TokenRequest {
		x := &tokensv1alpha1.TokenRequest{}
		d, _ := time.ParseDuration(ttl)
		x.Spec.TTL = &metav1.Duration{Duration: d}
		x.Spec.Rotation = &rot
		return x
	}
	targets := []tokensv1alpha1.RestartTarget{{Kind: "Deployment", Name: "web"}}
	before := func(d time.Duration) *metav1.Duration { return &metav1.Duration{Duration: d} }
	for _, tc := range []struct {
		name        string
		tr          *tokensv1alpha1.TokenRequest
		minInterval time.Duration
		status      metav1.ConditionStatus
		reason      string
	}{
		{"the issue's case: ttl 2s, 50%", tr("2s", tokensv1alpha1.Rotation{RenewBeforePercentage: new(int32(50)), RestartTargets: targets}),
			time.Minute, metav1.ConditionFalse, tokensv1alpha1.ReasonRotatesTooOften},
		{"ttl 24h, renewBefore 1h", tr("24h", tokensv1alpha1.Rotation{RenewBefore: before(time.Hour), RestartTargets: targets}),
			time.Minute, metav1.ConditionTrue, tokensv1alpha1.ReasonIntervalSufficient},
		{"rotations exactly the interval apart", tr("90s", tokensv1alpha1.Rotation{RenewBefore: before(30 * time.Second), RestartTargets: targets}),
			time.Minute, metav1.ConditionTrue, tokensv1alpha1.ReasonIntervalSufficient},
		{"a second closer", tr("90s", tokensv1alpha1.Rotation{RenewBefore: before(31 * time.Second), RestartTargets: targets}),
			time.Minute, metav1.ConditionFalse, tokensv1alpha1.ReasonRotatesTooOften},
		{"no limit: no condition", tr("2s", tokensv1alpha1.Rotation{RenewBeforePercentage: new(int32(50)), RestartTargets: targets}), 0, "", ""},
		{"no targets: no condition", tr("2s", tokensv1alpha1.Rotation{RenewBeforePercentage: new(int32(50))}), time.Minute, "", ""},
		{"no rotation: no condition", &tokensv1alpha1.TokenRequest{}, time.Minute, "", ""},
	} {
		c := restartIntervalCondition(tc.tr, tc.minInterval)
		switch {
		case tc.status == "" && c != nil:
			t.Errorf("%s: condition %+v, want none", tc.name, c)
		case tc.status != "" && (c == nil || c.Status != tc.status || c.Reason != tc.reason):
			t.Errorf("%s: condition %+v, want %s %s", tc.name, c, tc.status, tc.reason)
		}
	}
}
