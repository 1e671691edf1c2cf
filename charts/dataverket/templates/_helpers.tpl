{{/*
The chart name, or nameOverride.
*/}}
{{- define "dataverket.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The full name that prefixes every resource: fullnameOverride, else <release>-<chart> (just the
release name when it already contains the chart name). Short enough to take "-worker-plattform".
*/}}
{{- define "dataverket.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 46 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 46 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 46 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Chart name and version, for the helm.sh/chart label.
*/}}
{{- define "dataverket.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels on every object. Call with (dict "root" $ "component" "api"); component may be empty.
*/}}
{{- define "dataverket.labels" -}}
helm.sh/chart: {{ include "dataverket.chart" .root }}
{{ include "dataverket.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: dataverket
{{- end }}

{{/*
Selector labels. Call with (dict "root" $ "component" "api"); component may be empty.
*/}}
{{- define "dataverket.selectorLabels" -}}
app.kubernetes.io/name: {{ include "dataverket.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- if .component }}
app.kubernetes.io/component: {{ .component }}
{{- end }}
{{- end }}

{{/*
The image reference: repository@digest when a digest is set, else repository:tag (tag defaults
to the chart's appVersion).
*/}}
{{- define "dataverket.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
The kinds of group platform.dataverket.io that the controller reads (plural resource names).
*/}}
{{- define "dataverket.platformResources" -}}
{{- toJson (list "datacenters" "serverpools" "networkpools" "machineclasses" "platformpolicies" "recoverypolicies") }}
{{- end }}

{{/*
The worker services, in a fixed order.
*/}}
{{- define "dataverket.workerServices" -}}
{{- toJson (list "maskin" "nett" "plattform" "objekt") }}
{{- end }}

{{/*
Every enabled component as JSON {"items": [...]}, each item:
  name        api, controller, worker-<service>
  args        the dv command line
  port        the container port of /healthz, /readyz, /metrics (and the API)
  replicas, resources, extraEnv, podAnnotations, nodeSelector, tolerations, affinity,
  topologySpreadConstraints, serviceAccount
  api         true for the API (auth settings, the API Service)
  controller  true for the controller (service-account token, RBAC, NATS)
  nats        true when the component needs NATS_URL
Read it with: fromJson (include "dataverket.components" .)
Numbers come back as float64: wrap them in int.
*/}}
{{- define "dataverket.components" -}}
{{- $items := list }}
{{- $common := list "extraEnv" "podAnnotations" "nodeSelector" "tolerations" "affinity" "topologySpreadConstraints" "serviceAccount" }}
{{- if .Values.api.enabled }}
{{- $c := dict "name" "api" "args" (list "api" "--port" (toString .Values.api.port)) "port" .Values.api.port "replicas" .Values.api.replicas "resources" .Values.api.resources "api" true "controller" false "nats" false }}
{{- range $common }}{{ $_ := set $c . (index $.Values.api .) }}{{ end }}
{{- $items = append $items $c }}
{{- end }}
{{- if .Values.controller.enabled }}
{{- $c := dict "name" "controller" "args" (list "controller" "--port" (toString .Values.controller.port)) "port" .Values.controller.port "replicas" .Values.controller.replicas "resources" .Values.controller.resources "api" false "controller" true "nats" true }}
{{- range $common }}{{ $_ := set $c . (index $.Values.controller .) }}{{ end }}
{{- $items = append $items $c }}
{{- end }}
{{- range $service := fromJsonArray (include "dataverket.workerServices" $) }}
{{- $w := index $.Values.workers.services $service | default dict }}
{{- if get $w "enabled" }}
{{- $replicas := $.Values.workers.replicas }}
{{- if hasKey $w "replicas" }}{{ $replicas = get $w "replicas" }}{{ end }}
{{- $resources := $.Values.workers.resources }}
{{- if hasKey $w "resources" }}{{ $resources = get $w "resources" }}{{ end }}
{{- $c := dict "name" (printf "worker-%s" $service) "args" (list "worker" "--service" $service "--port" (toString $.Values.workers.port)) "port" $.Values.workers.port "replicas" $replicas "resources" $resources "api" false "controller" false "nats" true }}
{{- range $common }}{{ $_ := set $c . (index $.Values.workers .) }}{{ end }}
{{- $items = append $items $c }}
{{- end }}
{{- end }}
{{- toJson (dict "items" $items) }}
{{- end }}

{{/*
Name of a component's objects (Deployment, ServiceAccount, Service, …): <fullname>-<component>.
Call with (dict "root" $ "component" "api").
*/}}
{{- define "dataverket.componentName" -}}
{{- printf "%s-%s" (include "dataverket.fullname" .root) .component | trunc 63 | trimSuffix "-" }}
{{- end }}
