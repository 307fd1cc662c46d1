{{/*
"huimin.env": the environment of one part's container. Plain values are settings; every
secret is a secretKeyRef, and URLs that embed a password use Kubernetes' $(VAR) expansion
of an earlier secret-backed variable, so no secret value is ever written into the manifest.
Called with the same dict as "huimin.service".
*/}}
{{- define "huimin.env" -}}
{{- $root := .root -}}
{{- $part := .part -}}
{{- $svc := .svc -}}
{{- $secret := include "huimin.secretName" $root -}}
{{- $port := include "huimin.port" $root -}}
- name: HUIMIN_ENV
  value: {{ $root.Values.env | quote }}
- name: HUIMIN_LOG_LEVEL
  value: {{ $root.Values.logLevel | quote }}
- name: HUIMIN_OIDC_ISSUER
  value: {{ $root.Values.oidc.issuer | quote }}
- name: HUIMIN_OIDC_AUDIENCE
  value: {{ $root.Values.oidc.audience | quote }}
- name: HUIMIN_CLIENT_SECRET
  valueFrom:
    secretKeyRef: {name: {{ $secret }}, key: {{ printf "%s-client-secret" $part }}}
{{- with $root.Values.otel.endpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ . | quote }}
{{- end }}
{{- if $svc.database }}
- name: MONGODB_USERNAME
  value: {{ $root.Values.mongodb.username | quote }}
- name: MONGODB_PASSWORD
  valueFrom:
    secretKeyRef: {name: {{ $secret }}, key: mongodb-password}
- name: HUIMIN_STORE_URL
  value: {{ printf "mongodb://$(MONGODB_USERNAME):$(MONGODB_PASSWORD)@%s/%s?%s" $root.Values.mongodb.hosts $svc.database $root.Values.mongodb.options | quote }}
{{- end }}
{{- if has "registry" ($svc.consumes | default list) }}
- name: HUIMIN_REGISTRY_EVENTS_URL
  value: {{ printf "http://%s:%s/events" (include "huimin.partName" (dict "root" $root "part" "registry")) $port | quote }}
{{- end }}
{{- if and (eq $part "health") $root.Values.ingress.enabled }}
- name: HUIMIN_FHIR_BASE_URL
  value: {{ printf "%s://%s/fhir" (ternary "https" "http" (not (empty $root.Values.ingress.tls.secretName))) $root.Values.ingress.host | quote }}
{{- end }}
{{- if and (eq $part "registry") $root.Values.oidc.keycloakAdminUrl }}
- name: HUIMIN_KEYCLOAK_ADMIN_URL
  value: {{ $root.Values.oidc.keycloakAdminUrl | quote }}
{{- end }}
{{- if eq $part "gateway" }}
{{- $upstreams := dict -}}
{{- range $other, $o := $root.Values.services }}
{{- if and $o.enabled (ne $other "gateway") }}
{{- $_ := set $upstreams $other (printf "http://%s:%s" (include "huimin.partName" (dict "root" $root "part" $other)) $port) }}
{{- end }}
{{- end }}
- name: HUIMIN_UPSTREAM_URLS
  value: {{ toJson $upstreams | quote }}
{{- if $root.Values.redis.enabled }}
{{- if $root.Values.redis.auth }}
- name: REDIS_PASSWORD
  valueFrom:
    secretKeyRef: {name: {{ $secret }}, key: redis-password}
- name: HUIMIN_REDIS_URL
  value: {{ printf "redis://:$(REDIS_PASSWORD)@%s/%v" $root.Values.redis.address $root.Values.redis.database | quote }}
{{- else }}
- name: HUIMIN_REDIS_URL
  value: {{ printf "redis://%s/%v" $root.Values.redis.address $root.Values.redis.database | quote }}
{{- end }}
{{- end }}
{{- end }}
{{- range $key, $value := $svc.env }}
- name: {{ $key }}
  value: {{ $value | toString | quote }}
{{- end }}
{{- end -}}
