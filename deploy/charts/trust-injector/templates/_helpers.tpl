{{/*
Names. With the release named `trust-injector` the objects carry the names of
k8s/webhook (trust-injector-webhook, MutatingWebhookConfiguration trust-injector), so
the kustomize and the chart install are the same objects; another release name is
prefixed so two releases never collide.
*/}}
{{- define "ti.fullname" -}}
{{- if contains "trust-injector" .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-trust-injector" .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "ti.webhookName" -}}
{{- printf "%s-webhook" (include "ti.fullname" .) -}}
{{- end -}}

{{- define "ti.tlsSecretName" -}}
{{- if eq .Values.tls.mode "secret" -}}
{{- required "tls.existingSecret.name is required with tls.mode=secret" .Values.tls.existingSecret.name -}}
{{- else -}}
{{- printf "%s-tls" (include "ti.webhookName" .) -}}
{{- end -}}
{{- end -}}

{{/* The labels the Deployment selects its Pods by (never changed by an upgrade). */}}
{{- define "ti.selectorLabels" -}}
app.kubernetes.io/name: trust-injector-webhook
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "ti.labels" -}}
{{ include "ti.selectorLabels" . }}
app.kubernetes.io/part-of: trust-injector
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- with .Values.podLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* The webhook's image, which is also the injected sidecar's unless set apart. */}}
{{- define "ti.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/*
The sidecar mode: as set, else native where the cluster runs native sidecars
(restartPolicy Always init containers, on by default from 1.29), classic before.
*/}}
{{- define "ti.mode" -}}
{{- if .Values.sidecar.mode -}}
{{- .Values.sidecar.mode -}}
{{- else if semverCompare ">=1.29.0-0" .Capabilities.KubeVersion.Version -}}
native
{{- else -}}
classic
{{- end -}}
{{- end -}}

{{/* The serving certificate's DNS names: the Service's, short to fully qualified. */}}
{{- define "ti.dnsNames" -}}
{{- $svc := include "ti.webhookName" . -}}
- {{ $svc }}
- {{ $svc }}.{{ .Release.Namespace }}
- {{ $svc }}.{{ .Release.Namespace }}.svc
- {{ $svc }}.{{ .Release.Namespace }}.svc.cluster.local
{{- end -}}

{{/* Labels every monitoring object carries (what a Prometheus selects them by). */}}
{{- define "ti.monitoringLabels" -}}
{{ include "ti.labels" . }}
{{- with .Values.monitoring.labels }}
{{ toYaml . }}
{{- end }}
{{- end -}}
