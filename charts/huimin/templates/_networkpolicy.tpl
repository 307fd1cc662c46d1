{{/*
"huimin.networkPolicy": what one part may talk to. The release's default-deny policy
(networkpolicy-default-deny.yaml) blocks everything else, so each rule below is a need:
  in:  the ingress controller -> gateway; gateway -> every service; a feed's consumers ->
       its producer (health, education -> registry); metrics scrapers -> every part.
  out: DNS; Keycloak (JWKS, service tokens); MongoDB (parts with a database); the OTel
       collector; Redis (gateway); gateway -> services; consumers -> the feeds they read.
Called with the same dict as "huimin.service".
*/}}
{{- define "huimin.networkPolicy" -}}
{{- $root := .root -}}
{{- $part := .part -}}
{{- $svc := .svc -}}
{{- $np := $root.Values.networkPolicies -}}
{{- $port := include "huimin.port" $root | int -}}
{{- $consumers := list -}}
{{- range $other, $o := $root.Values.services -}}
{{- if and $o.enabled (has $part ($o.consumes | default list)) -}}
{{- $consumers = append $consumers $other -}}
{{- end -}}
{{- end -}}
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ include "huimin.partName" . }}
  labels:
    {{- include "huimin.labels" $root | nindent 4 }}
    app.kubernetes.io/component: {{ $part }}
spec:
  podSelector:
    matchLabels:
      {{- include "huimin.selector" . | nindent 6 }}
  policyTypes: [Ingress, Egress]
  ingress:
    {{- if eq $part "gateway" }}
    - from:
        {{- toYaml $np.ingressController | nindent 8 }}
      ports:
        - {port: {{ $port }}, protocol: TCP}
    {{- else }}
    - from:
        - podSelector:
            matchLabels:
              {{- include "huimin.selector" (dict "root" $root "part" "gateway") | nindent 14 }}
        {{- range $consumers }}
        - podSelector:
            matchLabels:
              {{- include "huimin.selector" (dict "root" $root "part" .) | nindent 14 }}
        {{- end }}
      ports:
        - {port: {{ $port }}, protocol: TCP}
    {{- end }}
    {{- with $np.metricsScrapers }}
    - from:
        {{- toYaml . | nindent 8 }}
      ports:
        - {port: {{ $port }}, protocol: TCP}
    {{- end }}
  egress:
    - to:
        {{- toYaml $np.dns | nindent 8 }}
      ports:
        - {port: 53, protocol: UDP}
        - {port: 53, protocol: TCP}
    - to:
        {{- toYaml $np.keycloak.to | nindent 8 }}
      ports:
        {{- range $np.keycloak.ports }}
        - {port: {{ . }}, protocol: TCP}
        {{- end }}
    {{- if $svc.database }}
    - to:
        {{- toYaml $np.mongodb.to | nindent 8 }}
      ports:
        - {port: {{ $np.mongodb.port }}, protocol: TCP}
    {{- end }}
    {{- if $root.Values.otel.endpoint }}
    - to:
        {{- toYaml $np.otel.to | nindent 8 }}
      ports:
        - {port: {{ $np.otel.port }}, protocol: TCP}
    {{- end }}
    {{- if and (eq $part "gateway") $root.Values.redis.enabled }}
    - to:
        {{- toYaml $np.redis.to | nindent 8 }}
      ports:
        - {port: {{ $np.redis.port }}, protocol: TCP}
    {{- end }}
    {{- $targets := list -}}
    {{- range $other, $o := $root.Values.services -}}
    {{- if and $o.enabled (ne $other $part) (or (eq $part "gateway") (has $other ($svc.consumes | default list))) -}}
    {{- $targets = append $targets $other -}}
    {{- end -}}
    {{- end -}}
    {{- if $targets }}
    - to:
        {{- range $targets }}
        - podSelector:
            matchLabels:
              {{- include "huimin.selector" (dict "root" $root "part" .) | nindent 14 }}
        {{- end }}
      ports:
        - {port: {{ $port }}, protocol: TCP}
    {{- end }}
{{- end -}}
