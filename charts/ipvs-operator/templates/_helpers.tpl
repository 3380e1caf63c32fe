{{/* The chart name, or nameOverride. */}}
{{- define "ipvs-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The prefix of every object's name: fullnameOverride, else the release name when it already holds the
chart name, else "<release>-<chart>". Cluster-scoped objects (ClusterRole, ClusterRoleBinding) carry
it too, so two releases do not collide.
*/}}
{{- define "ipvs-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "ipvs-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels that select the agent pods (never change them in an upgrade: selectors are immutable). */}}
{{- define "ipvs-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ipvs-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The standard labels of every object. */}}
{{- define "ipvs-operator.labels" -}}
helm.sh/chart: {{ include "ipvs-operator.chart" . }}
{{ include "ipvs-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: ipvs-operator
{{- end }}

{{- define "ipvs-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "ipvs-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The port of agent.httpAddress ("0.0.0.0:9796" -> 9796); "" when the HTTP server is off. */}}
{{- define "ipvs-operator.httpPort" -}}
{{- if .Values.agent.httpAddress }}
{{- $port := regexFind "[0-9]+$" .Values.agent.httpAddress }}
{{- if not $port }}
{{- fail (printf "agent.httpAddress %q must be host:port" .Values.agent.httpAddress) }}
{{- end }}
{{- $port }}
{{- end }}
{{- end }}
