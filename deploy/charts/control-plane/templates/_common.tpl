{{- /*
Helpers shared by every meshid service chart. This file is identical in each chart
(test/deploy checks it); change it everywhere at once.

Each chart keeps its settings under one top-level key (its "section": ca, agent, registrar,
bundleNotifier, proxyConfig) next to `global`, so helmfile can hand the same values files to
every release. Helpers take a dict: (dict "root" $ "svc" "<section>" "name" "<service>").
*/ -}}

{{/* Resource name of a service: meshid-<service>. */}}
{{- define "meshid.fullname" -}}
{{- printf "meshid-%s" .name -}}
{{- end -}}

{{/* Standard labels. */}}
{{- define "meshid.labels" -}}
app.kubernetes.io/name: {{ include "meshid.fullname" . }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/component: {{ .name }}
app.kubernetes.io/part-of: meshid
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version }}
{{- end -}}

{{/* Selector labels (stable across upgrades). */}}
{{- define "meshid.selectorLabels" -}}
app.kubernetes.io/name: {{ include "meshid.fullname" . }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- end -}}

{{/* Image reference: <image.repository or global.imageRegistry/<service>>:<tag or appVersion>. */}}
{{- define "meshid.image" -}}
{{- $s := index .root.Values .svc -}}
{{- $g := .root.Values.global -}}
{{- $repo := $s.image.repository | default (printf "%s/%s" $g.imageRegistry .name) -}}
{{- $tag := $s.image.tag | default $g.imageTag | default .root.Chart.AppVersion -}}
{{- printf "%s:%s" $repo $tag -}}
{{- end -}}

{{/* The CA's gRPC address: global.caAddress or the CA chart's Service in this namespace. */}}
{{- define "meshid.caAddress" -}}
{{- .root.Values.global.caAddress | default (printf "meshid-ca.%s.svc:8443" .root.Release.Namespace) -}}
{{- end -}}

{{/* The CA's SPIFFE ID. */}}
{{- define "meshid.caServerId" -}}
{{- printf "spiffe://%s/meshid/ca" .root.Values.global.trustDomain -}}
{{- end -}}

{{/* The node agent's Workload API socket inside a pod that mounts the agent socket dir. */}}
{{- define "meshid.workloadSocketPath" -}}
{{- printf "%s/workload.sock" .root.Values.global.agentSocketDir -}}
{{- end -}}

{{/* Pod annotations: Prometheus scraping of /metrics on the ops port, config checksum. */}}
{{- define "meshid.podAnnotations" -}}
prometheus.io/scrape: "true"
prometheus.io/port: {{ .opsPort | quote }}
prometheus.io/path: /metrics
{{- with (index .root.Values .svc).podAnnotations }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Liveness and readiness probes on the ops port. */}}
{{- define "meshid.probes" -}}
livenessProbe:
  httpGet: { path: /healthz, port: ops }
  initialDelaySeconds: 5
  periodSeconds: 10
  timeoutSeconds: 3
  failureThreshold: 6
readinessProbe:
  httpGet: { path: /readyz, port: ops }
  periodSeconds: 5
  timeoutSeconds: 3
  failureThreshold: 3
{{- end -}}

{{/* Scheduling settings and pull secrets of the pod spec. */}}
{{- define "meshid.scheduling" -}}
{{- $s := index .root.Values .svc -}}
{{- with .root.Values.global.imagePullSecrets }}
imagePullSecrets:
{{ toYaml . }}
{{- end }}
{{- with $s.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with $s.nodeSelector }}
nodeSelector:
{{ toYaml . | indent 2 }}
{{- end }}
{{- with $s.tolerations }}
tolerations:
{{ toYaml . }}
{{- end }}
{{- with $s.affinity }}
affinity:
{{ toYaml . | indent 2 }}
{{- end }}
{{- with $s.topologySpreadConstraints }}
topologySpreadConstraints:
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* PodDisruptionBudget, only when the service runs more than one replica. */}}
{{- define "meshid.pdb" -}}
{{- $s := index .root.Values .svc -}}
{{- if and $s.podDisruptionBudget.enabled (gt (int $s.replicaCount) 1) }}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ include "meshid.fullname" . }}
  namespace: {{ .root.Release.Namespace }}
  labels:
{{ include "meshid.labels" . | indent 4 }}
spec:
  maxUnavailable: {{ $s.podDisruptionBudget.maxUnavailable }}
  selector:
    matchLabels:
{{ include "meshid.selectorLabels" . | indent 6 }}
{{- end }}
{{- end -}}

{{/* ServiceAccount of the service. */}}
{{- define "meshid.serviceAccount" -}}
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ include "meshid.fullname" . }}
  namespace: {{ .root.Release.Namespace }}
  labels:
{{ include "meshid.labels" . | indent 4 }}
automountServiceAccountToken: {{ .automount }}
{{- end -}}

{{/*
The service's YAML configuration: the chart's generated settings (`.base`, a YAML string)
with the section's `config` merged over them, so any key of the service's schema can be set.
*/}}
{{- define "meshid.configFile" -}}
{{- $base := .base | fromYaml -}}
{{- $extra := deepCopy ((index .root.Values .svc).config | default dict) -}}
{{- mergeOverwrite $base $extra | toYaml -}}
{{- end -}}

{{/* ConfigMap holding the service's configuration file. */}}
{{- define "meshid.configMap" -}}
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ include "meshid.fullname" . }}-config
  namespace: {{ .root.Release.Namespace }}
  labels:
{{ include "meshid.labels" . | indent 4 }}
data:
  {{ .name }}.yaml: |
{{ include "meshid.configFile" . | indent 4 }}
{{- end -}}

{{/* Environment shared by every container: extraEnv of the section. */}}
{{- define "meshid.extraEnv" -}}
{{- with (index .root.Values .svc).extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}
