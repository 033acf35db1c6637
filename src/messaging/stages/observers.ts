// Subscribers of the engine's lifecycle events that every worker has: metrics and tracing. Replay's
// progress (replay.ts) and the crash hook (app.ts) subscribe the same way.
import type { WorkerMetrics } from '../../telemetry/metrics.ts';
import { outcomeLabel, type Lifecycle, type UnitView } from '../engine/lifecycle.ts';
import { partitionKey } from '../engine/records.ts';
import { UnitTrace } from './unit-trace.ts';

export function observeMetrics(lifecycle: Lifecycle, metrics: WorkerMetrics): void {
  const settled = (unit: UnitView) => metrics.inFlight(unit.lane, -unit.messages.length);
  lifecycle.on('unit.started', ({ unit }) => {
    metrics.inFlight(unit.lane, unit.messages.length);
    if (unit.batched) metrics.batch(unit.topic, unit.items[0]?.operation, unit.messages.length);
  });
  lifecycle.on('unit.applied', ({ unit }) => settled(unit));
  lifecycle.on('unit.failed', ({ unit, failure, retryInMs }) => {
    settled(unit);
    if (retryInMs !== null) metrics.retry(unit.lane, unit.topic, unit.partition, failure.kind);
  });
  lifecycle.on('publish.failed', ({ lane }) => metrics.retry(lane, '', undefined, 'publish'));
  lifecycle.on('partition.skipped', ({ lane, topic, partition, count }) =>
    metrics.skipped(lane, topic, partition, count),
  );
  lifecycle.on('message.outcome', ({ unit, outcome }) => {
    const { result, deadLettered, message } = outcome;
    if (result.error?.code === 'DEADLINE_EXCEEDED') {
      metrics.deadlineExceeded(unit.lane, message.topic, outcome.operation || 'unknown');
    }
    metrics.processed({
      lane: unit.lane,
      topic: message.topic,
      partition: message.partition,
      operation: outcome.operation || 'unknown',
      outcome: outcomeLabel(result, deadLettered),
      ...(result.error ? { errorType: result.error.code } : {}),
      durationMs: performance.now() - unit.startedAt,
    });
  });
  // The lag moves with the partition's done position too: a quiet partition gets no fetch answer (fetch
  // sessions leave it out) after its last messages are done.
  const ends = new Map<string, bigint>();
  lifecycle.on('partition.fetched', ({ lane, topic, partition, lag, highWatermark }) => {
    ends.set(partitionKey(topic, partition), highWatermark);
    metrics.lag(topic, partition, lag);
    metrics.skipped(lane, topic, partition, 0);
  });
  // Their lag is their new owner's to say: a series frozen at its last value over-counted the sum by 57%
  // after a worker joined (the verification helper's run).
  lifecycle.on('partitions.revoked', ({ partitions }) => {
    for (const { topic, partition } of partitions) {
      ends.delete(partitionKey(topic, partition));
      metrics.forgetLag(topic, partition);
    }
  });
  lifecycle.on('partition.progress', ({ topic, partition, position }) => {
    const end = ends.get(partitionKey(topic, partition));
    // A batch done before its fetch answer's end arrives is measured against the previous end: 0, not less.
    if (end !== undefined) metrics.lag(topic, partition, Math.max(0, Number(end - position)));
  });
  lifecycle.on('lane.load', ({ lane, running, queued }) => metrics.laneLoad(lane, running, queued));
}

/** Spans per try: a consumer span per message (one for a batch), producer spans per result. */
export function observeTracing(lifecycle: Lifecycle, consumerGroupOf: (topic: string) => string): void {
  const traces = new WeakMap<UnitView, UnitTrace>();
  lifecycle.scope((unit, work) => {
    const trace = new UnitTrace(
      unit.messages.map((message, i) => ({
        message,
        correlationId: unit.items[i]?.correlationId ?? null,
        operation: unit.items[i]?.operation,
      })),
      unit.batched,
      consumerGroupOf(unit.messages[0]?.topic ?? ''),
    );
    traces.set(unit, trace);
    return trace.run(work);
  });
  lifecycle.on('result.encoding', ({ unit, index, topic, partition, headers }) => {
    const traceparent = traces.get(unit)?.producer(index, topic, partition);
    if (traceparent) headers.traceparent = traceparent;
  });
  lifecycle.on('message.outcome', ({ unit, index, outcome }) =>
    traces.get(unit)?.outcome(index, outcome.result, outcome.deadLettered),
  );
  lifecycle.on('unit.done', ({ unit }) => {
    traces.get(unit)?.finish();
    traces.delete(unit);
  });
  lifecycle.on('unit.failed', ({ unit, error }) => {
    traces.get(unit)?.finish(error);
    traces.delete(unit);
  });
}
