{{/* The agent settings the chart derives from its values (before `agent.config` is merged). */}}
{{- define "agent.baseConfig" -}}
{{- $s := .Values.agent -}}
{{- $g := .Values.global -}}
{{- $ctx := dict "root" $ "svc" "agent" "name" "agent" -}}
trustDomain: {{ $g.trustDomain | quote }}
caAddress: {{ include "meshid.caAddress" $ctx | quote }}
caServerId: {{ include "meshid.caServerId" $ctx | quote }}
bundleFile: /run/meshid/bundle/bundle.crt
dataDir: /var/lib/meshid/agent
attestation:
  type: k8s_psat
  cluster: {{ $g.clusterName | quote }}
  tokenPath: /var/run/secrets/meshid/token
workloadApi:
  socketPath: {{ include "meshid.workloadSocketPath" $ctx | quote }}
{{- with $g.natsUrl }}
natsUrl: {{ . | quote }}
{{- end }}
attestors:
  unix:
    enabled: true
  k8s:
    enabled: true
    # nodeName and kubeletUrl come from the environment (downward API), see the DaemonSet.
    kubeletTokenFile: /var/run/secrets/kubernetes.io/serviceaccount/token
    kubeletCaFile: /var/run/secrets/kubernetes.io/serviceaccount/ca.crt
    insecureSkipVerify: {{ $s.kubelet.insecureSkipVerify }}
procRoot: /proc
ops:
  listen: "0.0.0.0:9091"
logLevel: {{ $g.logLevel }}
{{- end -}}
