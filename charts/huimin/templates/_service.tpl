{{/*
"huimin.service" renders every Kubernetes object of one part (the gateway or a service):
ServiceAccount, Service, Deployment, HorizontalPodAutoscaler, PodDisruptionBudget and
NetworkPolicy. services.yaml calls it once per enabled entry of .Values.services, so the
parts differ only by their values block: no per-service manifests to keep in step.

Called with (dict "root" $ "part" "health" "svc" .Values.services.health).
*/}}
{{- define "huimin.service" -}}
{{- $root := .root -}}
{{- $part := .part -}}
{{- $svc := .svc -}}
{{- $name := include "huimin.partName" . -}}
{{- $port := include "huimin.port" $root | int -}}
{{- $isGateway := eq $part "gateway" -}}
{{- $replicas := int $svc.replicas -}}
{{- $minReplicas := ternary (int $svc.autoscaling.minReplicas) $replicas $svc.autoscaling.enabled -}}
{{- if $root.Values.serviceAccounts.create }}
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ $name }}
  labels:
    {{- include "huimin.labels" $root | nindent 4 }}
    app.kubernetes.io/component: {{ $part }}
  {{- with $root.Values.serviceAccounts.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
# The parts never call the Kubernetes API: no token to steal from a compromised pod.
automountServiceAccountToken: false
{{- end }}
---
apiVersion: v1
kind: Service
metadata:
  name: {{ $name }}
  labels:
    {{- include "huimin.labels" $root | nindent 4 }}
    app.kubernetes.io/component: {{ $part }}
spec:
  type: ClusterIP
  selector:
    {{- include "huimin.selector" . | nindent 4 }}
  ports:
    - name: http
      port: {{ $port }}
      targetPort: http
      protocol: TCP
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ $name }}
  labels:
    {{- include "huimin.labels" $root | nindent 4 }}
    app.kubernetes.io/component: {{ $part }}
spec:
  {{- if not $svc.autoscaling.enabled }}
  replicas: {{ $replicas }}
  {{- end }}
  revisionHistoryLimit: 5
  selector:
    matchLabels:
      {{- include "huimin.selector" . | nindent 6 }}
  strategy:
    type: RollingUpdate
    rollingUpdate:
      # Never below the wanted count during an upgrade: a new pod must be ready first.
      maxUnavailable: 0
      maxSurge: 1
  template:
    metadata:
      labels:
        {{- include "huimin.labels" $root | nindent 8 }}
        app.kubernetes.io/component: {{ $part }}
      annotations:
        # A changed chart-managed Secret rolls the pods, which read it only at start.
        checksum/secrets: {{ include (print $root.Template.BasePath "/secrets.yaml") $root | sha256sum }}
        {{- with $svc.podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      serviceAccountName: {{ ternary $name "default" $root.Values.serviceAccounts.create }}
      automountServiceAccountToken: false
      {{- with $root.Values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      securityContext:
        {{- toYaml $root.Values.podSecurityContext | nindent 8 }}
      # After SIGTERM uvicorn (the services) drains in-flight requests for up to 10 s
      # (shared/app.py); granian (the gateway) lets them finish, within this period.
      terminationGracePeriodSeconds: 30
      {{- if $root.Values.topologySpread }}
      topologySpreadConstraints:
        - maxSkew: 1
          topologyKey: kubernetes.io/hostname
          whenUnsatisfiable: ScheduleAnyway
          labelSelector:
            matchLabels:
              {{- include "huimin.selector" . | nindent 14 }}
      {{- end }}
      {{- with $svc.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $svc.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      containers:
        - name: {{ $part }}
          image: {{ include "huimin.image" $root | quote }}
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          args: [{{ $svc.module | quote }}]
          ports:
            - name: http
              containerPort: {{ $port }}
              protocol: TCP
          env:
            {{- include "huimin.env" . | nindent 12 }}
          startupProbe:
            httpGet: {path: /healthz, port: http}
            {{- toYaml $root.Values.probes.startup | nindent 12 }}
          livenessProbe:
            httpGet: {path: /healthz, port: http}
            {{- toYaml $root.Values.probes.liveness | nindent 12 }}
          readinessProbe:
            httpGet: {path: /readyz, port: http}
            {{- toYaml $root.Values.probes.readiness | nindent 12 }}
          resources:
            {{- toYaml $svc.resources | nindent 12 }}
          securityContext:
            {{- toYaml $root.Values.securityContext | nindent 12 }}
          volumeMounts:
            # The root filesystem is read-only; Python and libraries may still need /tmp.
            - name: tmp
              mountPath: /tmp
      volumes:
        - name: tmp
          emptyDir:
            sizeLimit: 64Mi
{{- if $svc.autoscaling.enabled }}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {{ $name }}
  labels:
    {{- include "huimin.labels" $root | nindent 4 }}
    app.kubernetes.io/component: {{ $part }}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {{ $name }}
  minReplicas: {{ $minReplicas }}
  maxReplicas: {{ $svc.autoscaling.maxReplicas }}
  metrics:
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: {{ $svc.autoscaling.targetCPUUtilizationPercentage }}
{{- end }}
{{- if gt $minReplicas 1 }}
---
# Only with more than one pod: with one, minAvailable 1 would block every node drain.
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ $name }}
  labels:
    {{- include "huimin.labels" $root | nindent 4 }}
    app.kubernetes.io/component: {{ $part }}
spec:
  minAvailable: {{ $svc.pdb.minAvailable }}
  selector:
    matchLabels:
      {{- include "huimin.selector" . | nindent 6 }}
{{- end }}
{{- if $root.Values.networkPolicies.create }}
---
{{ include "huimin.networkPolicy" . }}
{{- end }}
{{- end -}}
