// The readiness, memory and event-loop gauges, and the counters that start at 0, as /metrics renders them
// (the alerts and the dashboard read these; test/deploy/prometheus.e2e.test.ts checks a real worker too).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTelemetry, type Telemetry } from '../../src/telemetry/otel.ts';
import { createWorkerMetrics } from '../../src/telemetry/metrics.ts';
import { Readiness } from '../../src/telemetry/readiness.ts';
import { observeRuntime } from '../../src/telemetry/runtime-metrics.ts';

let telemetry: Telemetry;
beforeAll(async () => {
  telemetry = await startTelemetry({ env: {} });
});
afterAll(() => telemetry.shutdown());

const sample = (text: string, name: string) => {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
};

describe('runtime metrics', () => {
  it('reports readiness as 0 or 1, the RSS in bytes and the event-loop delay in seconds', async () => {
    const readiness = new Readiness();
    const runtime = observeRuntime(readiness);
    try {
      let text = await telemetry.metricsEndpoint.render();
      expect(sample(text, 'pattern_worker_ready')).toBe(0);
      const rss = sample(text, 'process_memory_usage') ?? 0;
      expect(rss).toBeGreaterThan(10 * 1024 * 1024);
      expect(rss).toBeLessThan(4 * 1024 * 1024 * 1024);

      for (const check of ['consumer', 'database', 'migrations'] as const) readiness.set(check, true, 'ok');
      // Block the loop for 150 ms between two timer ticks.
      await new Promise((r) => setTimeout(r, 100));
      const until = Date.now() + 150;
      while (Date.now() < until);
      await new Promise((r) => setTimeout(r, 100));
      text = await telemetry.metricsEndpoint.render();
      expect(sample(text, 'pattern_worker_ready')).toBe(1);
      expect(sample(text, 'nodejs_eventloop_delay_max')).toBeGreaterThan(0.1);
      expect(sample(text, 'nodejs_eventloop_delay_max')).toBeLessThan(1);
      expect(sample(text, 'nodejs_eventloop_delay_p50')).toBeLessThan(0.05);

      // Each collection starts the delay histogram again; an idle loop reads close to 0.
      await new Promise((r) => setTimeout(r, 200));
      text = await telemetry.metricsEndpoint.render();
      expect(sample(text, 'nodejs_eventloop_delay_max')).toBeLessThan(0.1);
      readiness.set('running', false, 'shutting down');
      expect(sample(await telemetry.metricsEndpoint.render(), 'pattern_worker_ready')).toBe(0);
    } finally {
      runtime.stop();
    }
    // Stopped: no longer observed (the SDK keeps exporting the last value it had).
    readiness.set('running', true, 'running');
    expect(sample(await telemetry.metricsEndpoint.render(), 'pattern_worker_ready')).toBe(0);
  });
});

describe('counters the alerts take rate() of', () => {
  it('start at 0 once their topic, partition or lane is known, so the first dead letter is an increase', async () => {
    const m = createWorkerMetrics(() => 'zero-group');
    m.laneBudget('writes', 4);
    m.lag('zero.pattern.insert', 2, 5);
    let text = await telemetry.metricsEndpoint.render();
    const line = (name: string, ...labels: string[]) =>
      text.split('\n').find((l) => l.startsWith(`${name}{`) && labels.every((x) => l.includes(x)));
    const topic = 'messaging_destination_name="zero.pattern.insert"';
    expect(line('pattern_worker_dead_letters_total', topic)).toMatch(/ 0$/);
    expect(
      line('pattern_worker_retries_total', 'pattern_retry_kind="publish"', 'pattern_lane="writes"'),
    ).toMatch(/ 0$/);
    const processed = { lane: 'writes', topic: 'zero.pattern.insert', partition: 2, operation: 'insert' };
    m.processed({ ...processed, outcome: 'success', durationMs: 3 });
    text = await telemetry.metricsEndpoint.render();
    for (const kind of ['transient', 'permanent'])
      expect(line('pattern_worker_retries_total', topic, `pattern_retry_kind="${kind}"`)).toMatch(/ 0$/);
    m.processed({ ...processed, outcome: 'dead_letter', errorType: 'VALIDATION_ERROR', durationMs: 3 });
    m.retry('writes', 'zero.pattern.insert', 2, 'permanent');
    text = await telemetry.metricsEndpoint.render();
    expect(line('pattern_worker_dead_letters_total', topic)).toMatch(/ 1$/);
    expect(line('pattern_worker_retries_total', topic, 'pattern_retry_kind="permanent"')).toMatch(/ 1$/);
    expect(line('pattern_worker_retries_total', topic, 'pattern_retry_kind="transient"')).toMatch(/ 0$/);
  });
});
