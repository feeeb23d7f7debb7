{{/* The proxy-config settings the chart derives from its values (before `proxyConfig.config`). */}}
{{- define "proxyConfig.baseConfig" -}}
{{- $s := .Values.proxyConfig -}}
{{- $g := .Values.global -}}
{{- $ctx := dict "root" $ "svc" "proxyConfig" "name" "proxy-config" -}}
trustDomain: {{ $g.trustDomain | quote }}
listen: "0.0.0.0:8445"
adminSocketPath: /run/meshid/proxy-config/admin/admin.sock
{{- with $s.adminIds }}
adminIds: {{ toYaml . | nindent 2 }}
{{- end }}
tls:
  workloadSocketPath: {{ include "meshid.workloadSocketPath" $ctx | quote }}
meshConfig:
  source: kubernetes
  name: meshid
kubernetes:
  enabled: true
{{- with $g.natsUrl }}
natsUrl: {{ . | quote }}
{{- end }}
ops:
  listen: "0.0.0.0:9095"
logLevel: {{ $g.logLevel }}
{{- end -}}
