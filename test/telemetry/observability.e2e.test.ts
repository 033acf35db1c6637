// OpenTelemetry through the real broker and worker process: one trace from the caller's traceparent to
// the result, received by a real OTLP/HTTP endpoint in this test; and /metrics after a known workload.
import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { ModelResult } from '../../src/contracts/results.ts';
import { createStack, type Stack } from '../support/stack.ts';
import type { WorkerProcess } from '../support/worker-process.ts';

vi.setConfig({ testTimeout: 90_000 });

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes: { key: string; value: Record<string, unknown> }[];
  links?: { traceId: string; spanId: string }[];
}
const KIND = { internal: 1, client: 3, producer: 4, consumer: 5 };

/** A minimal OTLP/HTTP receiver (JSON encoding), as a collector would run it. */
class OtlpReceiver {
  readonly spans: OtlpSpan[] = [];
  requests = 0;
  #server: Server | undefined;
  port = 0;

  async start(): Promise<this> {
    this.#server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        this.requests += 1;
        if (req.url === '/v1/traces') {
          const payload = JSON.parse(body) as {
            resourceSpans: { scopeSpans: { spans: OtlpSpan[] }[] }[];
          };
          for (const rs of payload.resourceSpans)
            for (const ss of rs.scopeSpans) this.spans.push(...ss.spans);
        }
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{}');
      });
    });
    await new Promise<void>((resolve) => this.#server?.listen(0, '127.0.0.1', resolve));
    const address = this.#server.address();
    this.port = typeof address === 'object' && address ? address.port : 0;
    return this;
  }

  trace(traceId: string): OtlpSpan[] {
    return this.spans.filter((s) => s.traceId === traceId);
  }

  async stop(): Promise<void> {
    await new Promise((resolve) => this.#server?.close(resolve));
  }
}

const attr = (span: OtlpSpan | undefined, key: string) => {
  const value = span?.attributes.find((a) => a.key === key)?.value;
  return value ? Object.values(value)[0] : undefined;
};

describe('traces: one trace from caller to reply', () => {
  let stack: Stack;
  let receiver: OtlpReceiver;
  beforeAll(async () => {
    receiver = await new OtlpReceiver().start();
    stack = await createStack({ partitions: 1 });
    await stack.worker({
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${receiver.port}`,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_BSP_SCHEDULE_DELAY: '100',
      OTEL_SERVICE_NAME: 'pattern-worker-test',
      WORKER_BATCH_SIZE: '50',
    });
  });
  afterAll(async () => {
    await stack.close();
    await receiver.stop();
  });

  it('continues the traceparent: consumer → node → db, and a producer span whose context the result carries', async () => {
    const traceId = randomBytes(16).toString('hex');
    const callerSpanId = randomBytes(8).toString('hex');
    const patternId = randomUUID();
    await stack.send('pattern.insert', [
      {
        key: patternId,
        value: JSON.stringify({
          correlation_id: randomUUID(),
          data: { pattern_id: patternId, pattern_name: 'Traced', pattern_type: 'code', language: 'go' },
        }),
        headers: { traceparent: `00-${traceId}-${callerSpanId}-01` },
      },
    ]);
    const [result] = await stack.results.waitForCount(stack.names.result('pattern.insert'), 1);
    const resultTraceparent = result?.headers.traceparent?.toString() ?? '';

    await vi.waitFor(
      () => {
        const names = receiver.trace(traceId).map((s) => s.name);
        expect(names).toEqual(
          expect.arrayContaining([
            `process ${stack.names.request('pattern.insert')}`,
            'NodePatternStorageEffect insert',
            `send ${stack.names.result('pattern.insert')}`,
          ]),
        );
      },
      { timeout: 20_000, interval: 200 },
    );
    const spans = receiver.trace(traceId);
    const consumer = spans.find((s) => s.kind === KIND.consumer);
    const node = spans.find((s) => s.name === 'NodePatternStorageEffect insert');
    const producer = spans.find((s) => s.kind === KIND.producer);
    const db = spans.filter((s) => s.kind === KIND.client && attr(s, 'db.system.name') === 'postgresql');

    expect(consumer?.parentSpanId).toBe(callerSpanId);
    expect(attr(consumer, 'messaging.system')).toBe('kafka');
    expect(attr(consumer, 'messaging.destination.name')).toBe(stack.names.request('pattern.insert'));
    expect(attr(consumer, 'messaging.destination.partition.id')).toBe('0');
    expect(attr(consumer, 'messaging.consumer.group.name')).toBe(`${stack.env.KAFKA_GROUP_ID}.writes`);
    expect(attr(consumer, 'messaging.kafka.message.key')).toBe(patternId);
    expect(node?.parentSpanId).toBe(consumer?.spanId);
    expect(attr(node, 'pattern.id')).toBe(patternId);
    expect(attr(node, 'pattern.outcome')).toBe('success');
    expect(db.length).toBeGreaterThanOrEqual(3); // BEGIN, identity claim, INSERT, outcome, COMMIT
    expect(db.every((s) => s.parentSpanId === node?.spanId)).toBe(true);
    expect(db.some((s) => String(attr(s, 'db.query.text')).includes('INSERT INTO pattern_templates'))).toBe(
      true,
    );
    expect(producer?.parentSpanId).toBe(consumer?.spanId);
    // The result carries the producer span's own context, so its consumers continue the same trace.
    expect(resultTraceparent).toBe(`00-${traceId}-${producer?.spanId}-01`);
  });

  it('records usage quality and links every message of a usage batch', async () => {
    const patternId = randomUUID();
    await stack.send('pattern.insert', [
      { data: { pattern_id: patternId, pattern_name: 'TracedUsage', pattern_type: 'code', language: 'go' } },
    ]);
    await stack.results.waitForCount(stack.names.result('pattern.insert'), 2);
    const traceIds = Array.from({ length: 5 }, () => randomBytes(16).toString('hex'));
    await stack.send(
      'pattern.usage',
      traceIds.map((t, i) => ({
        key: patternId,
        value: JSON.stringify({
          pattern_id: patternId,
          usage_data: { success: true, quality_before: 0.5, quality_after: 0.5 + i / 10 },
        }),
        headers: { traceparent: `00-${t}-${randomBytes(8).toString('hex')}-01` },
      })),
    );
    await stack.results.waitForCount(stack.names.result('pattern.usage'), 5);
    await vi.waitFor(
      () => {
        const linked = receiver.spans.filter(
          (s) => s.kind === KIND.consumer && s.links?.some((l) => traceIds.includes(l.traceId)),
        );
        expect(linked.length).toBeGreaterThan(0);
      },
      { timeout: 20_000, interval: 200 },
    );
    const batches = receiver.spans.filter(
      (s) => s.kind === KIND.consumer && s.links?.some((l) => traceIds.includes(l.traceId)),
    );
    const linkedTraces = new Set(batches.flatMap((s) => s.links?.map((l) => l.traceId) ?? []));
    const single = traceIds.filter((t) => !linkedTraces.has(t));
    // Every message is either linked from a batch span or (a batch of one) the parent of its own span.
    for (const t of single) expect(receiver.trace(t).some((s) => s.kind === KIND.consumer)).toBe(true);
    expect(linkedTraces.size + single.length).toBe(5);
    for (const s of batches) expect(attr(s, 'pattern.operation')).toBe('record_usage');
    const usageSpans = receiver.spans.filter((s) => s.name === 'NodePatternUpdateEffect record_usage');
    expect(usageSpans.length).toBeGreaterThan(0);
  });
});

describe('/metrics after a known workload', () => {
  let stack: Stack;
  let worker: WorkerProcess;
  beforeAll(async () => {
    stack = await createStack({ partitions: 1 });
    worker = await stack.worker({ WORKER_BATCH_SIZE: '100' });
  });
  afterAll(async () => stack.close());

  it('counts processed messages by topic, operation and outcome, dead letters and duplicates', async () => {
    const ids = Array.from({ length: 4 }, () => randomUUID());
    const duplicateCid = randomUUID();
    await stack.send('pattern.insert', [
      ...ids.map((id) => ({
        data: {
          pattern_id: id,
          pattern_name: `Metric${id.slice(0, 6)}`,
          pattern_type: 'code',
          language: 'go',
        },
      })),
      { value: '{"not json' },
      {
        correlation_id: duplicateCid,
        data: { pattern_name: 'MetricDup', pattern_type: 'code', language: 'go' },
      },
      {
        correlation_id: duplicateCid,
        data: { pattern_name: 'MetricDup', pattern_type: 'code', language: 'go' },
      },
    ]);
    // Usage follows its patterns' inserts (order across topics is not guaranteed).
    await stack.results.waitForCount(stack.names.result('pattern.insert'), 7);
    await stack.send(
      'pattern.usage',
      Array.from({ length: 10 }, (_, i) => ({
        pattern_id: ids[i % 4],
        usage_data: { success: i % 2 === 0 },
      })),
    );
    await stack.results.waitForCount(stack.names.result('pattern.insert'), 7);
    await stack.results.waitForCount(stack.names.result('pattern.usage'), 10);
    const results = stack.results.on(stack.names.result('pattern.usage')).map((m) => m.json<ModelResult>());
    expect(results.every((r) => r.success)).toBe(true);

    let text = '';
    await vi.waitFor(
      async () => {
        text = await (await fetch(`http://127.0.0.1:${worker.port}/metrics`)).text();
        expect(text).toContain('pattern_operation="record_usage"');
      },
      { timeout: 10_000, interval: 200 },
    );
    const value = (name: string, ...labels: string[]) =>
      text
        .split('\n')
        .filter((l) => l.startsWith(`${name}{`) && labels.every((x) => l.includes(x)))
        .reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
    const insert = `messaging_destination_name="${stack.names.request('pattern.insert')}"`;
    const usage = `messaging_destination_name="${stack.names.request('pattern.usage')}"`;
    const consumed = 'messaging_client_consumed_messages_total';
    expect(value(consumed, insert, 'pattern_operation="insert"', 'pattern_outcome="success"')).toBe(5);
    expect(value(consumed, insert, 'pattern_outcome="duplicate"')).toBe(1);
    expect(value(consumed, insert, 'pattern_outcome="dead_letter"')).toBe(1);
    expect(value(consumed, usage, 'pattern_operation="record_usage"', 'pattern_outcome="success"')).toBe(10);
    expect(value('pattern_worker_dead_letters_total', insert)).toBe(1);
    expect(value('pattern_worker_duplicates_total', insert)).toBe(1);
    expect(value('messaging_process_duration_count', usage)).toBe(10);
    expect(
      value('messaging_batch_message_count_count', usage, 'pattern_operation="record_usage"'),
    ).toBeGreaterThanOrEqual(1);
    expect(text).toMatch(/messaging_kafka_consumer_lag\{[^}]*\} 0/);
    expect(text).toMatch(/db_client_connection_count\{[^}]*db_client_connection_state="idle"/);
    expect(text).toContain('db_client_connection_pending_requests');
    expect(text).toMatch(/pattern_worker_in_flight\{?[^\n]*\}? 0/);
  });
});
