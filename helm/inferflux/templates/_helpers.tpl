{{/* Labels every object carries. Selectors use only name, instance and component. */}}
{{- define "inferflux.labels" -}}
app.kubernetes.io/name: inferflux
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: inferflux
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end }}

{{/* The stable selector of one component (operator or router): never version or chart labels. */}}
{{- define "inferflux.selector" -}}
app.kubernetes.io/name: inferflux
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "inferflux.componentLabels" -}}
{{ include "inferflux.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* registry/repository:tag or @digest; the tag defaults to the chart's appVersion. */}}
{{- define "inferflux.image" -}}
{{- $ref := printf "%s/%s" .image.registry .image.repository -}}
{{- if .image.digest -}}
{{- printf "%s@%s" $ref .image.digest -}}
{{- else -}}
{{- printf "%s:%s" $ref (default .root.Chart.AppVersion .image.tag) -}}
{{- end -}}
{{- end }}

{{/* The imagePullSecrets field; include it only when .Values.imagePullSecrets is set. */}}
{{- define "inferflux.imagePullSecrets" -}}
imagePullSecrets:
{{- range .Values.imagePullSecrets }}
  - name: {{ . }}
{{- end }}
{{- end }}

{{/* Pod Security "restricted", pod level. */}}
{{- define "inferflux.podSecurityContext" -}}
securityContext:
  runAsNonRoot: true
  runAsUser: 65532
  runAsGroup: 65532
  fsGroup: 65532
  seccompProfile:
    type: RuntimeDefault
{{- end }}

{{/* Pod Security "restricted", container level. */}}
{{- define "inferflux.containerSecurityContext" -}}
securityContext:
  allowPrivilegeEscalation: false
  readOnlyRootFilesystem: true
  capabilities:
    drop: [ALL]
{{- end }}

{{/* What the operator may do in each namespace it manages (a Role there, or the ClusterRole). */}}
{{- define "inferflux.operator.namespacedRules" -}}
- apiGroups: [inferflux.io]
  resources: [inferencemodels, prompts]
  verbs: [get, list, watch, patch]
- apiGroups: [inferflux.io]
  resources: [inferencemodels/status, prompts/status]
  verbs: [get, patch, update]
- apiGroups: [apps]
  resources: [deployments]
  verbs: [get, list, watch, create, patch, update, delete]
- apiGroups: [""]
  resources: [services, configmaps]
  verbs: [get, list, watch, create, patch, update, delete]
- apiGroups: [networking.k8s.io]
  resources: [networkpolicies]
  verbs: [get, list, watch, create, patch, update, delete]
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [get, list, watch]
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, watch]
# Read the Secrets a spec references and create/patch each model's admin-token Secret; never
# list or watch, so the operator cannot enumerate Secrets.
- apiGroups: [""]
  resources: [secrets]
  verbs: [get, create, patch]
- apiGroups: [""]
  resources: [events]
  verbs: [create, patch]
- apiGroups: [events.k8s.io]
  resources: [events]
  verbs: [create, patch]
{{- end }}

{{/* The operator's own namespace in namespaced mode: the routing table and the router's egress policy. */}}
{{- define "inferflux.operator.homeRules" -}}
- apiGroups: [""]
  resources: [configmaps]
  verbs: [get, list, watch, create, patch, update, delete]
- apiGroups: [networking.k8s.io]
  resources: [networkpolicies]
  verbs: [get, list, watch, create, patch, update, delete]
- apiGroups: [""]
  resources: [events]
  verbs: [create, patch]
- apiGroups: [events.k8s.io]
  resources: [events]
  verbs: [create, patch]
{{- end }}

{{/* Pods the policies select as peers: ns by its name label, pods by labels. */}}
{{- define "inferflux.peer" -}}
- namespaceSelector:
    matchLabels:
      kubernetes.io/metadata.name: {{ .namespace }}
  podSelector:
    matchLabels:
      {{- toYaml .podLabels | nindent 6 }}
{{- end }}

{{/* A label map as k=v,k2=v2 (sorted), the form the operator's env takes. */}}
{{- define "inferflux.labelList" -}}
{{- $parts := list -}}
{{- range $k, $v := . }}{{ $parts = append $parts (printf "%s=%s" $k $v) }}{{ end -}}
{{- join "," $parts -}}
{{- end }}

{{/* Pod labels of cluster DNS and of the scraper: the values, or the defaults when left empty (Helm
merges maps, so defaults in values.yaml could only be added to, never replaced). */}}
{{- define "inferflux.dnsLabels" -}}
{{- toYaml (.Values.networkPolicy.dns.podLabels | default (dict "k8s-app" "kube-dns")) -}}
{{- end }}

{{- define "inferflux.scraperLabels" -}}
{{- toYaml (.Values.networkPolicy.scraper.podLabels | default (dict "app.kubernetes.io/name" "prometheus")) -}}
{{- end }}

{{/* The Secret with the router's hashing secret, admin token and Redis password. */}}
{{- define "inferflux.authSecret" -}}
{{- .Values.auth.existingSecret | default "inferflux-router-auth" -}}
{{- end }}
