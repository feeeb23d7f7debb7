{{/* The CA settings the chart derives from its values (before `ca.config` is merged). */}}
{{- define "ca.baseConfig" -}}
{{- $s := .Values.ca -}}
{{- $g := .Values.global -}}
{{- $ns := .Release.Namespace -}}
trustDomain: {{ $g.trustDomain | quote }}
listen: "0.0.0.0:8443"
dataDir: /var/lib/meshid/ca
adminSocketPath: /run/meshid/ca/admin/admin.sock
datastore:
  type: {{ $s.datastore.type }}
keyManager: disk
{{- if $s.adminIds }}
adminIds: {{ toYaml $s.adminIds | nindent 2 }}
{{- else }}
adminIds:
{{- range list "registrar" "bundle-notifier" "proxy-config" }}
  - {{ printf "spiffe://%s/meshid/%s" $g.trustDomain . | quote }}
{{- end }}
{{- end }}
psatClusters:
  - name: {{ $g.clusterName | quote }}
    audience: {{ $s.psatAudience | quote }}
    allowedServiceAccounts:
{{- if $s.psatAllowedServiceAccounts }}
{{ toYaml $s.psatAllowedServiceAccounts | indent 6 }}
{{- else }}
      - {{ printf "%s:meshid-agent" $ns | quote }}
{{- end }}
{{- with $g.natsUrl }}
natsUrl: {{ . | quote }}
{{- end }}
ops:
  listen: "0.0.0.0:9090"
logLevel: {{ $g.logLevel }}
{{- end -}}

{{/* Settings of the bundle-notifier container in the CA pod (CA admin socket, ConfigMap only). */}}
{{- define "ca.bundleSidecarConfig" -}}
{{- $g := .Values.global -}}
trustDomain: {{ $g.trustDomain | quote }}
ca:
  adminSocketPath: /run/meshid/ca/admin/admin.sock
{{- with $g.natsUrl }}
natsUrl: {{ . | quote }}
{{- end }}
targets:
  configMap:
    enabled: true
    namespace: {{ .Release.Namespace }}
    name: {{ $g.bundleConfigMap }}
ops:
  listen: "0.0.0.0:9093"
logLevel: {{ $g.logLevel }}
{{- end -}}
