{{/* The registrar settings the chart derives from its values (before `registrar.config`). */}}
{{- define "registrar.baseConfig" -}}
{{- $g := .Values.global -}}
{{- $ctx := dict "root" $ "svc" "registrar" "name" "registrar" -}}
trustDomain: {{ $g.trustDomain | quote }}
clusterName: {{ $g.clusterName | quote }}
ca:
  address: {{ include "meshid.caAddress" $ctx | quote }}
  serverId: {{ include "meshid.caServerId" $ctx | quote }}
  workloadSocketPath: {{ include "meshid.workloadSocketPath" $ctx | quote }}
{{- with $g.natsUrl }}
natsUrl: {{ . | quote }}
{{- end }}
ownNamespace: {{ .Release.Namespace }}
leaderElection:
  enabled: true
  leaseName: meshid-registrar
  leaseNamespace: {{ .Release.Namespace }}
ops:
  listen: "0.0.0.0:9092"
logLevel: {{ $g.logLevel }}
{{- end -}}
