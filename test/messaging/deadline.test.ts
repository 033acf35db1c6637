// Caller deadlines (pattern-deadline-ms): a read whose deadline has passed when its turn comes is answered
// DEADLINE_EXCEEDED without its query being run, and is not dead-lettered; a write always runs.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readDeadline } from '../../src/contracts/headers.ts';
import type { ModelResult } from '../../src/contracts/results.ts';
import { TopicNames } from '../../src/contracts/topics.ts';
import type { Nodes } from '../../src/messaging/stages/dispatch.ts';
import type { InboundMessage } from '../../src/messaging/engine/records.ts';
import { Lifecycle, type UnitView } from '../../src/messaging/engine/lifecycle.ts';
import type { TopicDirectory } from '../../src/messaging/kafka/topic-directory.ts';
import { UnitPipeline } from '../../src/messaging/stages/unit-pipeline.ts';
import { createLogger } from '../../src/telemetry/logger.ts';
import { createStack, type Stack } from '../support/stack.ts';

const names = new TopicNames('');

function message(topic: string, value: unknown, deadline?: number): InboundMessage {
  return {
    topic,
    partition: 0,
    offset: '0',
    key: null,
    value: Buffer.from(JSON.stringify(value)),
    headers: deadline === undefined ? {} : { 'pattern-deadline-ms': Buffer.from(String(deadline)) },
    timestamp: String(Date.now()),
  };
}

/** Nodes that only count their calls: the unit under test must not reach them for expired reads. */
function countingNodes() {
  const calls: string[] = [];
  const node = (name: string) => ({
    executeEffect: (request: { operation: string }) => {
      calls.push(`${name}:${request.operation}`);
      return Promise.resolve({
        success: true,
        data: null,
        error: null,
        metadata: { correlation_id: null, operation: request.operation, node: name, duration_ms: 0 },
      } satisfies ModelResult);
    },
  });
  const nodes = {
    storage: node('storage'),
    query: node('query'),
    update: node('update'),
    analytics: node('analytics'),
  };
  return { calls, nodes: nodes as unknown as Nodes };
}

/** `directory` null: none, as a replay builds it. */
function pipeline(nodes: Nodes, directory: TopicDirectory | null = {} as TopicDirectory) {
  return new UnitPipeline({
    names,
    nodes,
    directory: directory ?? undefined,
    consumerGroupOf: () => 'g',
    maxMessageBytes: 1 << 20,
    maxResultBytes: 1 << 20,
    publishResults: true,
    logger: createLogger('silent'),
    lifecycle: new Lifecycle(),
  });
}

const view = (m: InboundMessage): UnitView => ({
  id: 1,
  lane: 'reads',
  topic: m.topic,
  partition: 0,
  messages: [m],
  items: [{ correlationId: null, operation: undefined }],
  batched: false,
  attempt: 1,
  startedAt: performance.now(),
});

describe('the pattern-deadline-ms header', () => {
  it('reads a decimal string or an 8-byte big-endian integer, and refuses anything else', () => {
    const eight = Buffer.alloc(8);
    eight.writeBigInt64BE(1_800_000_000_000n);
    expect(readDeadline(Buffer.from('1800000000000'))).toEqual({ ok: true, value: 1_800_000_000_000 });
    expect(readDeadline(eight)).toEqual({ ok: true, value: 1_800_000_000_000 });
    expect(readDeadline(undefined)).toEqual({ ok: true, value: undefined });
    expect(readDeadline(Buffer.from('soon'))).toMatchObject({ ok: false });
  });

  it('turns an expired read into DEADLINE_EXCEEDED without running it, and runs an expired write', async () => {
    const { calls, nodes } = countingNodes();
    const p = pipeline(nodes);
    const past = Date.now() - 1_000;
    const search = message('pattern.search.request', { search_query: 'async' }, past);
    const out = await p.run(view(search), [p.prepare(search)]);
    expect(out.outcomes[0]?.result.error).toMatchObject({ code: 'DEADLINE_EXCEEDED' });
    expect(out.outcomes[0]?.deadLettered).toBe(false);
    expect(out.records.map((r) => r.topic)).toEqual(['pattern.search.result']);
    expect(calls).toEqual([]);

    const analyticsRead = message('pattern.analytics.compute', { operation: 'get_global_stats' }, past);
    await p.run(view(analyticsRead), [p.prepare(analyticsRead)]);
    expect(calls).toEqual([]);

    const insert = message(
      'pattern.insert',
      { data: { pattern_name: 'Late', pattern_type: 'code', language: 'go' } },
      past,
    );
    const written = await p.run(view(insert), [p.prepare(insert)]);
    expect(written.outcomes[0]?.result.success).toBe(true);
    const future = message('pattern.search.request', { search_query: 'async' }, Date.now() + 60_000);
    await p.run(view(future), [p.prepare(future)]);
    expect(calls).toEqual(['storage:insert', 'query:search']);
  });
});

describe('a reply topic that does not exist', () => {
  it('refuses the request live, and not in a replay, whose pipeline has no directory', async () => {
    const gone = { partitions: () => Promise.resolve(undefined) } as unknown as TopicDirectory;
    const insert: InboundMessage = {
      ...message('pattern.insert', { data: { pattern_name: 'Gone', pattern_type: 'code', language: 'go' } }),
      headers: { kafka_replyTopic: Buffer.from('pattern.deleted.replies') },
    };
    const live = countingNodes();
    const refused = await pipeline(live.nodes, gone).run(view(insert), [
      pipeline(live.nodes).prepare(insert),
    ]);
    expect(refused.outcomes[0]?.result.error?.message).toContain('"pattern.deleted.replies" does not exist');
    expect(live.calls).toEqual([]);
    // A replay applies what the live worker applied, whatever became of the topic since.
    const replay = countingNodes();
    const p = pipeline(replay.nodes, null);
    const applied = await p.run(view(insert), [p.prepare(insert)]);
    expect(applied.outcomes[0]?.result.success).toBe(true);
    expect(replay.calls).toEqual(['storage:insert']);
  });
});

describe('a reply topic looked up', () => {
  it('is refused only by a listing begun after its request was written, and never after it came in', async () => {
    const asked: number[] = [];
    const directory = {
      partitions: (_topic: string, sentAt: number) => {
        asked.push(sentAt);
        return Promise.resolve(3);
      },
    } as unknown as TopicDirectory;
    const { nodes } = countingNodes();
    const p = pipeline(nodes, directory);
    const withReply = (timestamp: number, receivedAt: number): InboundMessage => ({
      ...message('pattern.search.request', { search_query: 'async' }),
      headers: { kafka_replyTopic: Buffer.from('pattern.search.replies') },
      timestamp: String(timestamp),
      receivedAt,
    });
    // Written at 1,000 and taken from a fetch at 5,000: a flood written at once shares one listing.
    const written = withReply(1_000, 5_000);
    await p.run(view(written), [p.prepare(written)]);
    // A producer's CreateTime in the future counts as the time it came in.
    const future = withReply(9_000_000_000_000, 6_000);
    await p.run(view(future), [p.prepare(future)]);
    expect(asked).toEqual([1_000, 6_000]);
  });
});

describe('deadlines through Kafka', () => {
  let stack: Stack;
  let metrics: () => Promise<string>;
  beforeAll(async () => {
    stack = await createStack({ partitions: 1 });
    const worker = await stack.worker();
    metrics = async () => (await fetch(`http://127.0.0.1:${worker.port}/metrics`)).text();
  });
  afterAll(async () => stack.close());

  it('answers an expired search with DEADLINE_EXCEEDED, applies an expired insert, and counts it', async () => {
    const past = String(Date.now() - 5_000);
    const [searchCid, insertCid] = [randomUUID(), randomUUID()];
    await stack.producer.send({
      topic: stack.names.request('pattern.search.request'),
      messages: [
        {
          value: JSON.stringify({ correlation_id: searchCid, search_query: 'x' }),
          headers: { 'pattern-deadline-ms': past },
        },
      ],
    });
    await stack.producer.send({
      topic: stack.names.request('pattern.insert'),
      messages: [
        {
          value: JSON.stringify({
            correlation_id: insertCid,
            data: { pattern_name: 'LateWrite', pattern_type: 'code', language: 'go' },
          }),
          headers: { 'pattern-deadline-ms': past },
        },
      ],
    });
    const [search] = await stack.results.waitForCount(stack.names.result('pattern.search.request'), 1);
    expect(search?.json<ModelResult>().error?.code).toBe('DEADLINE_EXCEEDED');
    const [insert] = await stack.results.waitForCount(stack.names.result('pattern.insert'), 1);
    expect(insert?.json<ModelResult>().success).toBe(true);
    expect(stack.results.on(stack.names.dlq('pattern.search.request'))).toHaveLength(0);
    expect(await metrics()).toMatch(
      /pattern_worker_deadline_exceeded_total\{[^}]*pattern_operation="search"[^}]*\} 1/,
    );
  });
});
