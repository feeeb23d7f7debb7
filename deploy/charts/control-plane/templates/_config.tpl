{{- /*
The configuration files of the control plane (`control-plane.yaml`) and of the four services it
hosts, each in the service's own shape, as the standalone charts render them (ca, registrar,
bundle-notifier and proxy-config `_config.tpl`), with three differences:
  - no `ops` section: the control plane runs one ops server for all (the services' own
    `ops.listen` are not used in this mode);
  - the registrar and the bundle-notifier reach the CA on its admin socket in the same pod, not
    over mTLS: they need no SVID and no bootstrap entry;
  - the CA has no admin IDs by default: nothing calls its admin APIs over mTLS.
*/ -}}

{{/* Paths shared by the containers and the configuration files. */}}
{{- define "controlPlane.caAdminSocketPath" -}}
/run/meshid/ca/admin/admin.sock
{{- end -}}

{{/* The control plane's own settings (before `controlPlane.config` is merged). */}}
{{- define "controlPlane.ownConfig" -}}
{{- $g := .Values.global -}}
{{- range $key, $file := dict "ca" "ca" "registrar" "registrar" "bundleNotifier" "bundle-notifier" "proxyConfig" "proxy-config" }}
{{ $key }}:
  enabled: true
  configFile: {{ printf "/etc/meshid/%s.yaml" $file }}
{{- end }}
ops:
  listen: "0.0.0.0:9090"
logLevel: {{ $g.logLevel }}
{{- end -}}

{{/* The CA settings (before `controlPlane.ca.config`): the ca chart's, SQLite only. */}}
{{- define "controlPlane.caConfig" -}}
{{- $s := .Values.controlPlane.ca -}}
{{- $g := .Values.global -}}
trustDomain: {{ $g.trustDomain | quote }}
listen: "0.0.0.0:8443"
dataDir: /var/lib/meshid/ca
adminSocketPath: {{ include "controlPlane.caAdminSocketPath" . }}
datastore:
  type: sqlite
keyManager: disk
adminIds: {{ toYaml $s.adminIds | nindent 2 }}
psatClusters:
  - name: {{ $g.clusterName | quote }}
    audience: {{ $s.psatAudience | quote }}
    allowedServiceAccounts:
{{- if $s.psatAllowedServiceAccounts }}
{{ toYaml $s.psatAllowedServiceAccounts | indent 6 }}
{{- else }}
      - {{ printf "%s:meshid-agent" .Release.Namespace | quote }}
{{- end }}
{{- with $g.natsUrl }}
natsUrl: {{ . | quote }}
{{- end }}
logLevel: {{ $g.logLevel }}
{{- end -}}

{{/* The registrar settings (before `controlPlane.registrar.config`): CA on the admin socket. */}}
{{- define "controlPlane.registrarConfig" -}}
{{- $g := .Values.global -}}
trustDomain: {{ $g.trustDomain | quote }}
clusterName: {{ $g.clusterName | quote }}
ca:
  adminSocketPath: {{ include "controlPlane.caAdminSocketPath" . }}
{{- with $g.natsUrl }}
natsUrl: {{ . | quote }}
{{- end }}
ownNamespace: {{ .Release.Namespace }}
# One replica, but the Lease still keeps a rolled pod's successor from writing too early.
leaderElection:
  enabled: true
  leaseName: meshid-registrar
  leaseNamespace: {{ .Release.Namespace }}
logLevel: {{ $g.logLevel }}
{{- end -}}

{{/* The bundle-notifier settings (before `controlPlane.bundleNotifier.config`). */}}
{{- define "controlPlane.bundleNotifierConfig" -}}
{{- $s := .Values.controlPlane.bundleNotifier -}}
{{- $g := .Values.global -}}
trustDomain: {{ $g.trustDomain | quote }}
ca:
  adminSocketPath: {{ include "controlPlane.caAdminSocketPath" . }}
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
logLevel: {{ $g.logLevel }}
{{- end -}}

{{/* The proxy-config settings (before `controlPlane.proxyConfig.config`): its own SVID. */}}
{{- define "controlPlane.proxyConfigConfig" -}}
{{- $s := .Values.controlPlane.proxyConfig -}}
{{- $g := .Values.global -}}
trustDomain: {{ $g.trustDomain | quote }}
listen: "0.0.0.0:8445"
adminSocketPath: /run/meshid/proxy-config/admin/admin.sock
{{- with $s.adminIds }}
adminIds: {{ toYaml . | nindent 2 }}
{{- end }}
tls:
  workloadSocketPath: {{ printf "%s/workload.sock" $g.agentSocketDir | quote }}
meshConfig:
  source: kubernetes
  name: meshid
kubernetes:
  enabled: true
{{- with $g.natsUrl }}
natsUrl: {{ . | quote }}
{{- end }}
logLevel: {{ $g.logLevel }}
{{- end -}}

{{/* One configuration file: the chart's settings (`.base`) with `.extra` merged over them. */}}
{{- define "controlPlane.configFile" -}}
{{- mergeOverwrite (.base | fromYaml) (deepCopy (.extra | default dict)) | toYaml -}}
{{- end -}}
