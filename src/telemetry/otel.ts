// OpenTelemetry SDK setup, configured by the standard OTEL_* variables. Started by the CLI before the
// worker is built. Spans are always real (trace ids reach the logs and results carry a traceparent),
// but they leave the process only when an exporter is configured. Metrics are always served on
// /metrics (Prometheus text) and also pushed by OTLP when OTEL_METRICS_EXPORTER asks for it.
// The full NodeSDK and the OTLP exporters are loaded only when something is exported: a worker that
// exports nothing runs on a tracer provider of its own, which saves memory (see bench/ANALYSIS.md).
import { context, metrics, propagation, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { CompositePropagator, W3CBaggagePropagator, W3CTraceContextPropagator } from '@opentelemetry/core';
import { PrometheusExporter, PrometheusSerializer } from '@opentelemetry/exporter-prometheus';
import { detectResources, envDetector, resourceFromAttributes } from '@opentelemetry/resources';
import { MeterProvider, PeriodicExportingMetricReader, type IMetricReader } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, NoopSpanProcessor, type SpanProcessor } from '@opentelemetry/sdk-trace-base';
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

async function otlpMetricExporter(env: NodeJS.ProcessEnv) {
  const protocol = (env.OTEL_EXPORTER_OTLP_METRICS_PROTOCOL ?? env.OTEL_EXPORTER_OTLP_PROTOCOL ?? '').trim();
  if (protocol === 'http/json') {
    const { OTLPMetricExporter } = await import('@opentelemetry/exporter-metrics-otlp-http');
    return new OTLPMetricExporter();
  }
  const { OTLPMetricExporter } = await import('@opentelemetry/exporter-metrics-otlp-proto');
  return new OTLPMetricExporter();
}

/** Real spans (ids for logs and results) that go nowhere, without loading the NodeSDK. */
function startLocalTracing(env: NodeJS.ProcessEnv): () => Promise<void> {
  const resource = detectResources({ detectors: [envDetector] }).merge(
    resourceFromAttributes({ 'service.name': env.OTEL_SERVICE_NAME ?? 'pattern-worker' }),
  );
  const provider = new BasicTracerProvider({ resource });
  const contextManager = new AsyncLocalStorageContextManager().enable();
  context.setGlobalContextManager(contextManager);
  propagation.setGlobalPropagator(
    new CompositePropagator({ propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()] }),
  );
  trace.setGlobalTracerProvider(provider);
  return async () => {
    await provider.shutdown();
    trace.disable();
    propagation.disable();
    context.disable();
  };
}

export async function startTelemetry(options: TelemetryOptions = {}): Promise<Telemetry> {
  if (started) return started;
  const env = options.env ?? process.env;
  env.OTEL_SERVICE_NAME ??= 'pattern-worker';
  // The SDK's own default is to push logs and metrics by OTLP; here nothing is pushed unless asked.
  env.OTEL_LOGS_EXPORTER ??= 'none';

  const prometheus = new PrometheusExporter({ preventServerStart: true });
  const readers: IMetricReader[] = [prometheus];
  const metricExporters = (env.OTEL_METRICS_EXPORTER ?? '').split(',').map((s) => s.trim());
  if (metricExporters.includes('otlp')) {
    const exporter = await otlpMetricExporter(env);
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
  } else if (exportingTraces || readers.length > 1) {
    const { NodeSDK } = await import('@opentelemetry/sdk-node');
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
  } else {
    const resource = detectResources({ detectors: [envDetector] }).merge(
      resourceFromAttributes({ 'service.name': env.OTEL_SERVICE_NAME }),
    );
    const provider = new MeterProvider({ readers, resource });
    metrics.setGlobalMeterProvider(provider);
    const stopTracing = startLocalTracing(env);
    stop = async () => {
      await stopTracing();
      await provider.shutdown();
    };
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
