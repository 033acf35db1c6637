// OpenTelemetry SDK setup, configured by the standard OTEL_* variables. Started by the CLI before the
// worker is built. Spans are always real (trace ids reach the logs and results carry a traceparent),
// but they leave the process only when an exporter is configured. Metrics are always served on
// /metrics (Prometheus text) and also pushed by OTLP when OTEL_METRICS_EXPORTER asks for it.
import { metrics } from '@opentelemetry/api';
import { PrometheusExporter, PrometheusSerializer } from '@opentelemetry/exporter-prometheus';
import { OTLPMetricExporter as OtlpJsonMetricExporter } from '@opentelemetry/exporter-metrics-otlp-http';
import { OTLPMetricExporter as OtlpProtoMetricExporter } from '@opentelemetry/exporter-metrics-otlp-proto';
import { MeterProvider, PeriodicExportingMetricReader, type IMetricReader } from '@opentelemetry/sdk-metrics';
import { NodeSDK } from '@opentelemetry/sdk-node';
import { NoopSpanProcessor, type SpanProcessor } from '@opentelemetry/sdk-trace-base';
import type { MetricsEndpoint } from './health.ts';

export interface Telemetry {
  /** Prometheus text of every metric, for /metrics. */
  metricsEndpoint: MetricsEndpoint;
  /** Whether spans leave the process. */
  exportingTraces: boolean;
  /** Flushes and stops exporters. */
  shutdown(): Promise<void>;
}

const isSet = (v: string | undefined) => v !== undefined && v.trim() !== '';

/** Traces leave the process only when an exporter or endpoint is configured, never by default. */
export function tracesConfigured(env: NodeJS.ProcessEnv): boolean {
  const exporter = env.OTEL_TRACES_EXPORTER?.trim();
  if (exporter === 'none') return false;
  return (
    isSet(exporter) || isSet(env.OTEL_EXPORTER_OTLP_ENDPOINT) || isSet(env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT)
  );
}

export interface TelemetryOptions {
  env?: NodeJS.ProcessEnv;
  /** Replaces the span processors from the environment (tests: an in-memory exporter). */
  spanProcessors?: SpanProcessor[];
}

let started: Telemetry | undefined;

export function startTelemetry(options: TelemetryOptions = {}): Telemetry {
  if (started) return started;
  const env = options.env ?? process.env;
  env.OTEL_SERVICE_NAME ??= 'pattern-worker';
  // The SDK's own default is to push logs and metrics by OTLP; here nothing is pushed unless asked.
  env.OTEL_LOGS_EXPORTER ??= 'none';

  const prometheus = new PrometheusExporter({ preventServerStart: true });
  const readers: IMetricReader[] = [prometheus];
  const metricExporters = (env.OTEL_METRICS_EXPORTER ?? '').split(',').map((s) => s.trim());
  if (metricExporters.includes('otlp')) {
    const protocol = (
      env.OTEL_EXPORTER_OTLP_METRICS_PROTOCOL ??
      env.OTEL_EXPORTER_OTLP_PROTOCOL ??
      ''
    ).trim();
    const exporter = protocol === 'http/json' ? new OtlpJsonMetricExporter() : new OtlpProtoMetricExporter();
    readers.push(
      new PeriodicExportingMetricReader({
        exporter,
        exportIntervalMillis: Number(env.OTEL_METRIC_EXPORT_INTERVAL ?? 60_000),
      }),
    );
  }

  const exportingTraces = options.spanProcessors !== undefined || tracesConfigured(env);
  const disabled = env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true';
  let stop: () => Promise<void>;
  if (disabled) {
    // No tracing at all; metrics still work for /metrics.
    const provider = new MeterProvider({ readers });
    metrics.setGlobalMeterProvider(provider);
    stop = () => provider.shutdown();
  } else {
    const sdk = new NodeSDK({
      metricReaders: readers,
      instrumentations: [],
      ...(options.spanProcessors
        ? { spanProcessors: options.spanProcessors }
        : exportingTraces
          ? {}
          : { spanProcessors: [new NoopSpanProcessor()] }),
    });
    sdk.start();
    stop = () => sdk.shutdown();
  }

  const serializer = new PrometheusSerializer();
  started = {
    exportingTraces: exportingTraces && !disabled,
    metricsEndpoint: {
      contentType: 'text/plain; version=0.0.4; charset=utf-8',
      async render() {
        const { resourceMetrics } = await prometheus.collect();
        return serializer.serialize(resourceMetrics);
      },
    },
    async shutdown() {
      started = undefined;
      await stop().catch(() => undefined);
    },
  };
  return started;
}
