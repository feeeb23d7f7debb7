{{/* The bundle-notifier settings the chart derives from its values (before `bundleNotifier.config`). */}}
{{- define "bundleNotifier.baseConfig" -}}
{{- $s := .Values.bundleNotifier -}}
{{- $g := .Values.global -}}
{{- $ctx := dict "root" $ "svc" "bundleNotifier" "name" "bundle-notifier" -}}
trustDomain: {{ $g.trustDomain | quote }}
ca:
  address: {{ include "meshid.caAddress" $ctx | quote }}
  serverId: {{ include "meshid.caServerId" $ctx | quote }}
  workloadSocketPath: {{ include "meshid.workloadSocketPath" $ctx | quote }}
{{- with $g.natsUrl }}
natsUrl: {{ . | quote }}
{{- end }}
targets:
  configMap:
    enabled: true
    namespace: {{ .Release.Namespace }}
    name: {{ $g.bundleConfigMap }}
  webhooks:
    enabled: {{ $s.webhooks.enabled }}
ops:
  listen: "0.0.0.0:9093"
logLevel: {{ $g.logLevel }}
{{- end -}}
