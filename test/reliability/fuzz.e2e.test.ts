// Property-based fuzzing (fast-check) of everything that touches untrusted bytes: the decoder and
// validators in process, then a few hundred generated messages against the real worker process.
// Whatever arrives, nothing throws, every message gets an answer, and the worker stays up and ready.
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { decodeRequest, validateRequest } from '../../src/contracts/decode.ts';
import { readCorrelationHeader, readReplyPartition, readReplyTopic } from '../../src/contracts/headers.ts';
import type { ModelResult } from '../../src/contracts/results.ts';
import { REQUEST_TOPICS } from '../../src/contracts/topics.ts';
import { createStackRetrying } from '../support/faults.ts';
import type { Stack } from '../support/stack.ts';
import type { WorkerProcess } from '../support/worker-process.ts';

vi.setConfig({ testTimeout: 90_000 });

const CODES = new Set(['VALIDATION_ERROR', 'PAYLOAD_TOO_LARGE']);
const topic = fc.constantFrom(...REQUEST_TOPICS);
const id = fc.uuid();

/** Valid-looking requests for every operation, so mutations land near the schema's edges. */
const validish = fc.oneof(
  fc.record({
    operation: fc.constant('insert'),
    data: fc.record({
      pattern_id: id,
      pattern_name: fc.string({ minLength: 1, maxLength: 40 }),
      pattern_type: fc.constantFrom('code', 'design'),
      language: fc.constantFrom('python', 'go'),
      confidence_score: fc.double(),
      tags: fc.array(fc.string()),
    }),
  }),
  fc.record({
    operation: fc.constant('record_usage'),
    pattern_id: id,
    usage_data: fc.record({
      success: fc.boolean(),
      execution_time_ms: fc.double(),
      quality_before: fc.double(),
      used_at: fc.string(),
    }),
  }),
  fc.record({
    operation: fc.constant('filter'),
    filters: fc.dictionary(fc.string(), fc.jsonValue()),
    limit: fc.integer(),
  }),
  fc.record({ operation: fc.constant('search'), search_query: fc.string(), offset: fc.double() }),
  fc.record({
    operation: fc.constant('get_usage_trends'),
    period_start: fc.string(),
    aggregate_by: fc.string(),
  }),
  fc.record({
    operation: fc.constant('create_relationship'),
    relationship_data: fc.record({
      source_pattern_id: id,
      target_pattern_id: fc.string(),
      relationship_type: fc.string(),
      strength: fc.double(),
    }),
  }),
);

/** A valid-looking request with one field replaced by anything at all. */
const mutated = fc
  .tuple(validish, fc.string(), fc.anything({ withNullPrototype: true, withBigInt: false, maxDepth: 4 }))
  .map(([request, key, value]) => {
    const keys = Object.keys(request);
    const target = keys[Math.abs(key.length * 7) % keys.length] ?? key;
    return { ...request, [key.length % 3 === 0 ? key : target]: value };
  });

const bytes = fc.oneof(
  fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)),
  fc.jsonValue().map((v) => Buffer.from(JSON.stringify(v) ?? 'null')),
  mutated.map((v) => Buffer.from(JSON.stringify(v))),
  fc.string({ unit: 'binary' }).map((s) => Buffer.from(s, 'utf8')),
  fc.nat(20_000).map((n) => Buffer.from(`${'['.repeat(n)}${']'.repeat(n)}`)),
);

const header = fc.option(
  fc.oneof(
    fc.uint8Array({ maxLength: 2_000 }).map((a) => Buffer.from(a)),
    fc.string({ maxLength: 300 }),
    fc.array(fc.string(), { maxLength: 3 }),
  ),
  { nil: undefined },
);

describe('decoder and validators in process', () => {
  it('never throw, and fail only with validation codes that name a reason', () => {
    fc.assert(
      fc.property(topic, bytes, (t, value) => {
        const decoded = decodeRequest(t, value, { maxBytes: 4_096 });
        if (!decoded.ok) {
          expect(CODES.has(decoded.error.code)).toBe(true);
          expect(decoded.error.message.length).toBeGreaterThan(0);
          expect(decoded.error.message.length).toBeLessThan(2_000);
          expect(() => JSON.stringify(decoded.error)).not.toThrow();
        }
      }),
      { numRuns: 3_000 },
    );
  });

  it('validate parsed values of any shape without throwing', () => {
    fc.assert(
      fc.property(topic, fc.oneof(mutated, fc.anything({ maxDepth: 5 })), (t, value) => {
        const result = validateRequest(t, value);
        if (!result.ok) expect(result.error.code).toBe('VALIDATION_ERROR');
      }),
      { numRuns: 2_000 },
    );
  });

  it('read any header bytes without throwing', () => {
    fc.assert(
      fc.property(header, header, header, (a, b, c) => {
        for (const decoded of [readCorrelationHeader(a), readReplyTopic(b), readReplyPartition(c)]) {
          if (!decoded.ok) expect(decoded.reason.length).toBeGreaterThan(0);
        }
      }),
      { numRuns: 3_000 },
    );
  });
});

describe('generated messages against the worker process', () => {
  let stack: Stack;
  let worker: WorkerProcess;
  beforeAll(async () => {
    stack = await createStackRetrying({ partitions: 1 });
    worker = await stack.worker();
  });
  afterAll(async () => stack?.close());

  it('answers all of them, never with INTERNAL, and stays up and ready', async () => {
    const samples = fc.sample(
      fc.record({ topic, value: bytes, correlation: header, replyTopic: header, replyPartition: header }),
      { numRuns: 400, seed: Date.now() % 1_000_000 },
    );
    const sent: { topic: string; offset: string }[] = [];
    for (const s of samples) {
      const headers: Record<string, Buffer | string | string[]> = {};
      if (s.correlation !== undefined) headers.kafka_correlationId = s.correlation;
      if (s.replyTopic !== undefined) headers.kafka_replyTopic = s.replyTopic;
      if (s.replyPartition !== undefined) headers.kafka_replyPartition = s.replyPartition;
      const name = stack.names.request(s.topic);
      const [meta] = await stack.producer.send({ topic: name, messages: [{ value: s.value, headers }] });
      sent.push({ topic: name, offset: meta?.baseOffset ?? '-1' });
    }
    const results = () =>
      stack.results.messages
        .filter((m) => !m.topic.endsWith('.dlq'))
        .map((m) => m.json<ModelResult>())
        .filter((r) => r.metadata?.source);
    const key = (s: { topic: string; offset: string }) => `${s.topic}@${s.offset}`;
    const unansweredNow = () => {
      const seen = new Set(results().map((r) => `${r.metadata.source?.topic}@${r.metadata.source?.offset}`));
      return sent.filter((s) => !seen.has(key(s)));
    };
    await stack.results
      .waitFor(() => unansweredNow().length === 0, 60_000, 'a result for every generated message')
      .catch((err: unknown) => {
        // Say which message wedged the worker, so the failure can be replayed.
        const left = unansweredNow()[0];
        const at = sent.findIndex((x) => left && key(x) === key(left));
        throw new Error(
          `${String(err)}\nfirst unanswered ${JSON.stringify(left)}: ${JSON.stringify(samples[at])}\n` +
            worker.output().slice(-3_000),
        );
      });
    const answered = new Map(
      results().map((r) => [`${r.metadata.source?.topic}@${r.metadata.source?.offset}`, r]),
    );
    const internal = [...answered.values()].filter((r) => r.error?.code === 'INTERNAL');
    expect(internal).toEqual([]);
    expect(worker.child.exitCode).toBeNull();
    expect((await worker.readyz()).status).toBe(200);
    console.log(`[reliability] fuzz: ${samples.length} generated messages answered, worker ready`);
  });
});
