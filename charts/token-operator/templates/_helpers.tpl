{{/*
The prefix of every object's name: the release name when it contains the chart's name (so
`helm install token-operator` names objects as config/default does), else release-chart.
*/}}
{{- define "token-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- else if contains .Chart.Name .Release.Name }}
{{- .Release.Name | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 40 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{/* Labels of every object. */}}
{{- define "token-operator.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Labels that select the operator's pods (the kustomize ones plus the release). */}}
{{- define "token-operator.selectorLabels" -}}
control-plane: controller-manager
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Whether an optional Prometheus Operator object is rendered: true, false or auto. */}}
{{- define "token-operator.monitoring" -}}
{{- $enabled := toString .enabled }}
{{- if or (eq $enabled "true") (and (eq $enabled "auto") (.root.Capabilities.APIVersions.Has .api)) }}true{{ end }}
{{- end }}

{{/*
Objects of a kustomize folder that make manifests copied into files/, rendered as config/default
renders them: names prefixed, namespaced kinds in the release namespace, bindings pointing at the
prefixed names (an admission policy binding's parameter, the ServiceAccount, in the release
namespace too), the chart's labels added.
*/}}
{{- define "token-operator.kustomizeObjects" -}}
{{- $root := .root }}
{{- $prefix := printf "%s-" (include "token-operator.fullname" $root) }}
{{- $labels := include "token-operator.labels" $root | fromYaml }}
{{- range $path, $_ := $root.Files.Glob .glob }}
{{- range $doc := regexSplit "(?m)^---\\s*$" ($root.Files.Get $path) -1 }}
{{- $obj := fromYaml $doc }}
{{- if and $obj $obj.kind }}
{{- $_ := set $obj.metadata "name" (print $prefix $obj.metadata.name) }}
{{- $_ := set $obj.metadata "labels" (merge (deepCopy $labels) (omit (default dict $obj.metadata.labels) "app.kubernetes.io/managed-by")) }}
{{- if has $obj.kind (list "ServiceAccount" "Role" "RoleBinding") }}
{{- $_ := set $obj.metadata "namespace" $root.Release.Namespace }}
{{- end }}
{{- if eq $obj.kind "ValidatingAdmissionPolicyBinding" }}
{{- $_ := set $obj.spec "policyName" (print $prefix $obj.spec.policyName) }}
{{- $_ := set $obj.spec.paramRef "name" (print $prefix $obj.spec.paramRef.name) }}
{{- $_ := set $obj.spec.paramRef "namespace" $root.Release.Namespace }}
{{- end }}
{{- if $obj.roleRef }}
{{- $_ := set $obj.roleRef "name" (print $prefix $obj.roleRef.name) }}
{{- range $obj.subjects }}
{{- $_ := set . "name" (print $prefix .name) }}
{{- $_ := set . "namespace" $root.Release.Namespace }}
{{- end }}
{{- end }}
---
{{ toYaml $obj }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
