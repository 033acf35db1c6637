{{/* The alert rules: the only source of both the PrometheusRule and, rendered with the chart's defaults,
     deploy/prometheus/pattern-worker.rules.yml (`node scripts/prometheus-rules.ts`; a test fails when that
     file is stale). Prometheus's own {{ }} in annotations are quoted as {{` ... `}}. Series are summed
     without instance and pod, so that replicas of one group count together; a partition's lag is the
     highest any replica reports. */}}
{{- define "pattern-worker.alertRules" -}}
{{- $r := .Values.metrics.prometheusRule -}}
groups:
  - name: pattern-worker
    rules:
      - alert: PatternWorkerConsumerLagGrowing
        expr: |
          (
            sum without (messaging_destination_partition_id) (max without (instance, pod) (messaging_kafka_consumer_lag))
              > {{ $r.lagGrowing.minLag | int64 }}
          )
          and
          (
            sum without (messaging_destination_partition_id) (max without (instance, pod) (deriv(messaging_kafka_consumer_lag[10m])))
              > 0
          )
        for: {{ $r.lagGrowing.for }}
        labels:
          severity: warning
          {{- with $r.alertLabels }}{{ toYaml . | nindent 10 }}{{ end }}
        annotations:
          summary: "{{`Consumer lag on {{ $labels.messaging_destination_name }} keeps growing`}}"
          description: >-
            {{`Group {{ $labels.messaging_consumer_group_name }} is {{ $value | humanize }} messages behind on {{ $labels.messaging_destination_name }}`}} and the lag has grown for {{ $r.lagGrowing.for }}: less is processed than arrives. Look at the lanes' load and processing time, the database, and add replicas (up to the partition count).
      - alert: PatternWorkerDeadLetters
        expr: |
          sum without (instance, pod) (rate(pattern_worker_dead_letters_total[5m])) * 60
            > {{ $r.deadLetters.perMinute }}
        for: {{ $r.deadLetters.for }}
        labels:
          severity: warning
          {{- with $r.alertLabels }}{{ toYaml . | nindent 10 }}{{ end }}
        annotations:
          summary: "{{`{{ $value | humanize }} dead letters a minute on {{ $labels.messaging_destination_name }}`}}"
          description: >-
            {{`Requests on {{ $labels.messaging_destination_name }} are answered with an error and sent to the dead-letter topic`}} (above {{ $r.deadLetters.perMinute }} a minute for {{ $r.deadLetters.for }}). The error codes are on the dashboard (messaging_client_consumed_messages_total by error_type) and in each dead letter.
      - alert: PatternWorkerRetries
        expr: |
          sum without (instance, pod, messaging_destination_partition_id) (rate(pattern_worker_retries_total[5m])) * 60
            > {{ $r.retries.perMinute }}
        for: {{ $r.retries.for }}
        labels:
          severity: warning
          {{- with $r.alertLabels }}{{ toYaml . | nindent 10 }}{{ end }}
        annotations:
          summary: "{{`{{ $value | humanize }} {{ $labels.pattern_retry_kind }} retries a minute in the {{ $labels.pattern_lane }} lane`}}"
          description: >-
            Above {{ $r.retries.perMinute }} a minute for {{ $r.retries.for }}. Transient retries mean the database or the broker fails (outage, deadlocks, timeouts); permanent ones, requests that fail the same way until WORKER_MAX_ATTEMPTS; publish ones, results that cannot be sent.
      - alert: PatternWorkerNotReady
        expr: |
          pattern_worker_ready == 0
          or on (job, instance)
          (up == 0 and on (job, instance) last_over_time(pattern_worker_ready[1h]))
        for: {{ $r.notReady.for }}
        labels:
          severity: warning
          {{- with $r.alertLabels }}{{ toYaml . | nindent 10 }}{{ end }}
        annotations:
          summary: "{{`Worker {{ $labels.instance }} is not ready`}}"
          description: >-
            Its /readyz has failed, or it has stopped answering scrapes, for {{ $r.notReady.for }}. /readyz names the failing check (consumer group, database, migrations); the log says why.
      - alert: PatternWorkerNotConsuming
        expr: |
          (
            sum without (messaging_destination_partition_id) (max without (instance, pod) (messaging_kafka_consumer_lag))
              > 0
          )
          unless on (messaging_consumer_group_name, messaging_destination_name)
          (
            sum by (messaging_consumer_group_name, messaging_destination_name) (rate(messaging_client_consumed_messages_total[5m]))
              > 0
          )
        for: {{ $r.notConsuming.for }}
        labels:
          severity: critical
          {{- with $r.alertLabels }}{{ toYaml . | nindent 10 }}{{ end }}
        annotations:
          summary: "{{`Nothing consumed from {{ $labels.messaging_destination_name }} while it is {{ $value | humanize }} behind`}}"
          description: >-
            {{`Group {{ $labels.messaging_consumer_group_name }} has lag on {{ $labels.messaging_destination_name }}`}} and has processed nothing from it for 5m plus {{ $r.notConsuming.for }}: its consumers are stuck, paused or gone. Check the workers' readiness and logs.
      - alert: PatternWorkerPartitionHeld
        expr: |
          max without (instance, pod) (pattern_worker_partition_waiting)
            > {{ $r.partitionHeld.seconds | int64 }}
        for: {{ $r.partitionHeld.for }}
        labels:
          severity: warning
          {{- with $r.alertLabels }}{{ toYaml . | nindent 10 }}{{ end }}
        annotations:
          summary: "{{`Partition {{ $labels.messaging_destination_partition_id }} of {{ $labels.messaging_destination_name }} has not moved for {{ $value | humanizeDuration }}`}}"
          description: >-
            {{`Its oldest unfinished message has held the commit point of {{ $labels.messaging_destination_name }}/{{ $labels.messaging_destination_partition_id }} (lane {{ $labels.pattern_lane }})`}} for more than {{ $r.partitionHeld.seconds }} s, for {{ $r.partitionHeld.for }}: a message failing and being retried (the log names its offset), or a database that does not answer. Messages behind it on other keys go on, but nothing of the partition commits past it.
      - alert: PatternWorkerMessagesSkipped
        # A process that skips before it has fetched there first reports the series at its count, which
        # increase() cannot see: a series new within the window counts too.
        expr: |
          (sum without (instance, pod) (increase(pattern_worker_skipped_offsets_total[15m])) > 0)
          or
          (sum without (instance, pod) (pattern_worker_skipped_offsets_total unless pattern_worker_skipped_offsets_total offset 15m) > 0)
        labels:
          severity: critical
          {{- with $r.alertLabels }}{{ toYaml . | nindent 10 }}{{ end }}
        annotations:
          summary: "{{`Messages of {{ $labels.messaging_destination_name }}/{{ $labels.messaging_destination_partition_id }} were deleted before they were read`}}"
          description: >-
            {{`The log of {{ $labels.messaging_destination_name }}/{{ $labels.messaging_destination_partition_id }} no longer held offsets lane {{ $labels.pattern_lane }} had still to read`}} (retention shorter than the backlog, or kafka-delete-records): those requests got no result and no dead letter. The worker's error log names the offsets. Keep the input topics' retention longer than the longest outage; replay them from a copy if they matter.
{{- end }}
