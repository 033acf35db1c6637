// Process metrics the alerts and the dashboard need and the OpenTelemetry SDK does not make by itself:
// whether /readyz would answer 200 (so "not ready for minutes" can alert; Prometheus still scrapes a pod
// that is not ready), resident memory, and event-loop delay. Names follow the OpenTelemetry semantic
// conventions (process.memory.usage, nodejs.eventloop.delay.*).
import { metrics, type BatchObservableCallback } from '@opentelemetry/api';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { Readiness } from './readiness.ts';

const RESOLUTION_MS = 20;

export interface RuntimeMetrics {
  stop(): void;
}

export function observeRuntime(readiness: Readiness): RuntimeMetrics {
  const meter = metrics.getMeter('pattern-worker');
  const ready = meter.createObservableGauge('pattern_worker.ready', {
    description: 'Whether every readiness check passes (1) or not (0), as /readyz answers',
  });
  const rss = meter.createObservableGauge('process.memory.usage', {
    description: 'Resident set size of the process',
    unit: 'By',
  });
  const delayGauges = {
    p50: meter.createObservableGauge('nodejs.eventloop.delay.p50', {
      description: 'Event-loop delay, median since the previous collection',
      unit: 's',
    }),
    p99: meter.createObservableGauge('nodejs.eventloop.delay.p99', {
      description: 'Event-loop delay, 99th percentile since the previous collection',
      unit: 's',
    }),
    max: meter.createObservableGauge('nodejs.eventloop.delay.max', {
      description: 'Event-loop delay, maximum since the previous collection',
      unit: 's',
    }),
  };
  // Its own histogram: the one of /healthz is reset by every probe. It records the time between timer
  // runs, so the sampling interval comes off to leave the delay (an idle loop then reads about 0).
  const delay = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
  delay.enable();
  const seconds = (ns: number) => Math.max(0, ns / 1e6 - RESOLUTION_MS) / 1e3;
  const observe: BatchObservableCallback = (result) => {
    result.observe(ready, readiness.ready ? 1 : 0);
    result.observe(rss, process.memoryUsage.rss());
    if (delay.count > 0) {
      result.observe(delayGauges.p50, seconds(delay.percentile(50)));
      result.observe(delayGauges.p99, seconds(delay.percentile(99)));
      result.observe(delayGauges.max, seconds(delay.max));
      delay.reset();
    }
  };
  const observables = [ready, rss, delayGauges.p50, delayGauges.p99, delayGauges.max];
  meter.addBatchObservableCallback(observe, observables);
  return {
    stop() {
      meter.removeBatchObservableCallback(observe, observables);
      delay.disable();
    },
  };
}
