{{/* Names, labels and shared fragments used by every template of the chart. */}}

{{- define "huimin.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* "<release>-huimin", or the release name alone when it already says huimin. */}}
{{- define "huimin.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := include "huimin.name" . -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The name of one part's Deployment, Service, ServiceAccount...: "<fullname>-<part>". */}}
{{- define "huimin.partName" -}}
{{- printf "%s-%s" (include "huimin.fullname" .root) .part | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "huimin.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels of every object of the release. */}}
{{- define "huimin.labels" -}}
helm.sh/chart: {{ include "huimin.chart" . }}
{{ include "huimin.releaseSelector" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: huimin
{{- end -}}

{{/* Selects every pod of the release (the default-deny NetworkPolicy). */}}
{{- define "huimin.releaseSelector" -}}
app.kubernetes.io/name: {{ include "huimin.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Selects the pods of one part; called with (dict "root" $ "part" "health"). */}}
{{- define "huimin.selector" -}}
{{ include "huimin.releaseSelector" .root }}
app.kubernetes.io/component: {{ .part }}
{{- end -}}

{{- define "huimin.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* The Secret holding every secret value: the operator's, or the one the chart renders. */}}
{{- define "huimin.secretName" -}}
{{- default (printf "%s-secrets" (include "huimin.fullname" .)) .Values.secrets.existingSecret -}}
{{- end -}}

{{/* The port every part listens on inside its container (docker/Dockerfile). */}}
{{- define "huimin.port" -}}8000{{- end -}}

{{/* Refuse values that would render a release unable to start, with a message saying why. */}}
{{- define "huimin.validate" -}}
{{- if not .Values.oidc.issuer -}}
{{- fail "oidc.issuer is required: the Keycloak realm URL that issues the tokens" -}}
{{- end -}}
{{- if and (eq .Values.env "production") (hasPrefix "http://127.0.0.1" .Values.oidc.issuer) -}}
{{- fail "oidc.issuer is the dev issuer; production needs the real Keycloak realm URL" -}}
{{- end -}}
{{- if not .Values.mongodb.hosts -}}
{{- fail "mongodb.hosts is required: the services' stores live in MongoDB (SQLite cannot be shared by replicas)" -}}
{{- end -}}
{{- if not .Values.secrets.existingSecret -}}
{{- if not .Values.secrets.mongodbPassword -}}
{{- fail "secrets.mongodbPassword is required when secrets.existingSecret is empty" -}}
{{- end -}}
{{- if and .Values.redis.enabled .Values.redis.auth (not .Values.secrets.redisPassword) -}}
{{- fail "secrets.redisPassword is required when redis.auth is on and secrets.existingSecret is empty" -}}
{{- end -}}
{{- range $part, $svc := .Values.services -}}
{{- if and $svc.enabled (not (get $.Values.secrets.clientSecrets $part)) -}}
{{- fail (printf "secrets.clientSecrets.%s is required when secrets.existingSecret is empty" $part) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- range $part, $svc := .Values.services -}}
{{- if not (regexMatch "^[a-z][a-z0-9-]*$" $part) -}}
{{- fail (printf "services.%s: a part's name must be a DNS label" $part) -}}
{{- end -}}
{{- if and $svc.enabled (not $svc.module) -}}
{{- fail (printf "services.%s.module is required (the module the image runs)" $part) -}}
{{- end -}}
{{- $pods := ternary (int $svc.autoscaling.minReplicas) (int $svc.replicas) $svc.autoscaling.enabled -}}
{{- if and $svc.enabled (gt $pods 1) (ge (int $svc.pdb.minAvailable) $pods) -}}
{{- fail (printf "services.%s.pdb.minAvailable must be below its %d pods, or no node could ever be drained" $part $pods) -}}
{{- end -}}
{{- end -}}
{{- end -}}
