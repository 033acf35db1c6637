{{/* Names and labels. */}}
{{- define "pattern-worker.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "pattern-worker.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "pattern-worker.selectorLabels" -}}
app.kubernetes.io/name: {{ include "pattern-worker.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "pattern-worker.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "pattern-worker.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: pattern-learning-engine
{{- end }}

{{- define "pattern-worker.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "pattern-worker.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "pattern-worker.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* Cross-field checks the JSON schema cannot express; a failed check stops the install. */}}
{{- define "pattern-worker.validate" -}}
{{- if not .Values.database.existingSecret }}
{{- fail "database.existingSecret is required: an existing Secret holding the worker's DATABASE_URL" }}
{{- end }}
{{- if and .Values.migration.enabled (not .Values.migration.existingSecret) }}
{{- fail "migration.existingSecret is required when migration.enabled: the schema owner's DATABASE_URL, separate from the worker's" }}
{{- end }}
{{- if and .Values.kafka.sasl.mechanism (not .Values.kafka.sasl.existingSecret) }}
{{- fail "kafka.sasl.existingSecret is required when kafka.sasl.mechanism is set" }}
{{- end }}
{{- if ne (empty .Values.kafka.tls.certKey) (empty .Values.kafka.tls.keyKey) }}
{{- fail "kafka.tls.certKey and kafka.tls.keyKey go together (mutual TLS)" }}
{{- end }}
{{- if and .Values.kafka.tls.certKey (not .Values.kafka.tls.existingSecret) }}
{{- fail "kafka.tls.existingSecret is required for a client certificate" }}
{{- end }}
{{- if le (int .Values.terminationGracePeriodSeconds) (div (int .Values.worker.shutdownTimeoutMs) 1000 | int) }}
{{- fail (printf "terminationGracePeriodSeconds (%d) must be above worker.shutdownTimeoutMs (%d ms), or the kubelet kills the worker mid-shutdown" (int .Values.terminationGracePeriodSeconds) (int .Values.worker.shutdownTimeoutMs)) }}
{{- end }}
{{- if gt (int .Values.database.poolMin) (int .Values.database.poolMax) }}
{{- fail "database.poolMin must not exceed database.poolMax" }}
{{- end }}
{{- end }}

{{/* Non-secret settings as environment variables: the ConfigMap's data, and inline env of the hook Jobs
     (which run before the ConfigMap exists on a first install). */}}
{{- define "pattern-worker.settings" -}}
KAFKA_BROKERS: {{ .Values.kafka.brokers | quote }}
KAFKA_GROUP_ID: {{ .Values.kafka.groupId | quote }}
KAFKA_CLIENT_ID: {{ default (include "pattern-worker.fullname" .) .Values.kafka.clientId | quote }}
TOPIC_PREFIX: {{ .Values.kafka.topicPrefix | quote }}
LOG_LEVEL: {{ .Values.logLevel | quote }}
PORT: {{ .Values.service.port | int64 | quote }}
{{- with .Values.kafka.sasl.mechanism }}
KAFKA_SASL_MECHANISM: {{ . | quote }}
{{- end }}
KAFKA_SSL: {{ .Values.kafka.tls.enabled | quote }}
{{- if .Values.kafka.tls.enabled }}
KAFKA_SSL_REJECT_UNAUTHORIZED: {{ .Values.kafka.tls.rejectUnauthorized | quote }}
{{- if .Values.kafka.tls.existingSecret }}
{{- with .Values.kafka.tls.caKey }}
KAFKA_SSL_CA_FILE: {{ printf "/etc/pattern-worker/kafka-tls/%s" . | quote }}
{{- end }}
{{- with .Values.kafka.tls.certKey }}
KAFKA_SSL_CERT_FILE: {{ printf "/etc/pattern-worker/kafka-tls/%s" . | quote }}
{{- end }}
{{- with .Values.kafka.tls.keyKey }}
KAFKA_SSL_KEY_FILE: {{ printf "/etc/pattern-worker/kafka-tls/%s" . | quote }}
{{- end }}
{{- end }}
{{- end }}
DB_POOL_MIN: {{ .Values.database.poolMin | int64 | quote }}
DB_POOL_MAX: {{ .Values.database.poolMax | int64 | quote }}
DB_STATEMENT_TIMEOUT_MS: {{ .Values.database.statementTimeoutMs | int64 | quote }}
DB_READS_STATEMENT_TIMEOUT_MS: {{ .Values.database.readsStatementTimeoutMs | int64 | quote }}
DB_ANALYTICS_POOL_MAX: {{ .Values.database.analyticsPoolMax | int64 | quote }}
DB_ANALYTICS_STATEMENT_TIMEOUT_MS: {{ .Values.database.analyticsStatementTimeoutMs | int64 | quote }}
DB_ANALYTICS_PARALLEL_WORKERS: {{ .Values.database.analyticsParallelWorkers | int64 | quote }}
ANALYTICS_TOP_PATTERNS_MAX_AGE_MS: {{ .Values.database.topPatternsMaxAgeMs | int64 | quote }}
ANALYTICS_RESULT_MAX_AGE_MS: {{ .Values.database.analyticsResultMaxAgeMs | int64 | quote }}
ANALYTICS_REFRESH_AHEAD_MS: {{ .Values.database.analyticsRefreshAheadMs | int64 | quote }}
WORKER_LANES: {{ join "," .Values.worker.lanes | quote }}
WORKER_WRITES_CONCURRENCY: {{ .Values.worker.writesConcurrency | int64 | quote }}
WORKER_READS_CONCURRENCY: {{ .Values.worker.readsConcurrency | int64 | quote }}
WORKER_ANALYTICS_CONCURRENCY: {{ .Values.worker.analyticsConcurrency | int64 | quote }}
WORKER_MAX_ATTEMPTS: {{ .Values.worker.maxAttempts | int64 | quote }}
{{- with .Values.worker.nodeOptions }}
NODE_OPTIONS: {{ . | quote }}
{{- end }}
WORKER_BATCH_SIZE: {{ .Values.worker.batchSize | int64 | quote }}
WORKER_MAX_MESSAGE_BYTES: {{ .Values.worker.maxMessageBytes | int64 | quote }}
{{- with .Values.worker.maxDecompressedBatchBytes }}
WORKER_MAX_DECOMPRESSED_BATCH_BYTES: {{ . | int64 | quote }}
{{- end }}
WORKER_RETRY_INITIAL_MS: {{ .Values.worker.retryInitialMs | int64 | quote }}
WORKER_RETRY_MAX_MS: {{ .Values.worker.retryMaxMs | int64 | quote }}
WORKER_SHUTDOWN_TIMEOUT_MS: {{ .Values.worker.shutdownTimeoutMs | int64 | quote }}
WORKER_CREATE_TOPICS: {{ .Values.worker.createTopics | quote }}
{{- if .Values.otel.enabled }}
OTEL_SERVICE_NAME: {{ default (include "pattern-worker.fullname" .) .Values.otel.serviceName | quote }}
OTEL_EXPORTER_OTLP_ENDPOINT: {{ .Values.otel.endpoint | quote }}
OTEL_EXPORTER_OTLP_PROTOCOL: {{ .Values.otel.protocol | quote }}
OTEL_TRACES_EXPORTER: "otlp"
OTEL_TRACES_SAMPLER: {{ .Values.otel.sampler | quote }}
OTEL_TRACES_SAMPLER_ARG: {{ .Values.otel.samplerArg | quote }}
{{- else }}
OTEL_TRACES_EXPORTER: "none"
{{- end }}
{{- end }}

{{/* Secret-backed env: DATABASE_URL from the given secret (if any) and, unless kafka is false, the Kafka
     SASL credentials. Each container gets only the credentials it uses. */}}
{{- define "pattern-worker.secretEnv" -}}
{{- if .secret }}
- name: DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ .secret }}
      key: {{ .key }}
{{- end }}
{{- with .root.Values.kafka.sasl }}
{{- if and .mechanism (ne (toString $.kafka) "false") }}
- name: KAFKA_SASL_USERNAME
  valueFrom:
    secretKeyRef:
      name: {{ .existingSecret }}
      key: {{ .usernameKey }}
- name: KAFKA_SASL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ .existingSecret }}
      key: {{ .passwordKey }}
{{- end }}
{{- end }}
{{- end }}

{{/* TLS material and a writable /tmp (the root filesystem is read-only). */}}
{{- define "pattern-worker.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
{{- if and .Values.kafka.tls.enabled .Values.kafka.tls.existingSecret }}
- name: kafka-tls
  mountPath: /etc/pattern-worker/kafka-tls
  readOnly: true
{{- end }}
{{- if .Values.database.tls.existingSecret }}
- name: postgres-tls
  mountPath: /etc/pattern-worker/postgres-tls
  readOnly: true
{{- end }}
{{- end }}

{{- define "pattern-worker.volumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: 64Mi
{{- if and .Values.kafka.tls.enabled .Values.kafka.tls.existingSecret }}
- name: kafka-tls
  secret:
    secretName: {{ .Values.kafka.tls.existingSecret }}
    defaultMode: 0440
{{- end }}
{{- if .Values.database.tls.existingSecret }}
- name: postgres-tls
  secret:
    secretName: {{ .Values.database.tls.existingSecret }}
    defaultMode: 0440
{{- end }}
{{- end }}
