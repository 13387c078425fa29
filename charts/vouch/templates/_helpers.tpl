{{/* Common names and labels. */}}
{{- define "vouch.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "vouch.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "vouch.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "vouch.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "vouch.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required with serviceAccount.create=false: the ClusterRole would otherwise go to the namespace's default ServiceAccount" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "vouch.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{- define "vouch.tlsSecret" -}}{{ include "vouch.fullname" . }}-tls{{- end -}}

{{- define "vouch.serviceDNS" -}}
{{ include "vouch.fullname" . }}.{{ .Release.Namespace }}.svc
{{- end -}}

{{- define "vouch.apiScheme" -}}{{ if .Values.api.tls }}HTTPS{{ else }}HTTP{{ end }}{{- end -}}

{{/* The namespaces Vouch leaves alone, besides its own: never sent to the
webhook, never evaluated, never snapshotted. One list for the webhook's
namespaceSelector and the server's --exempt-namespaces. */}}
{{- define "vouch.exemptNamespaces" -}}
{{- concat (list "kube-system") .Values.webhook.excludeNamespaces (default (list) .Values.config.exempt_namespaces) | uniq | join "," -}}
{{- end -}}
