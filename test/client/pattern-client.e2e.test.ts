// PatternClient against the worker process, the real broker and database (issue "Using it").
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  ClientClosedError,
  PatternClient,
  RequestTimeoutError,
  RequestValidationError,
} from '../../src/client/index.ts';
import type { ModelResult } from '../../src/contracts/results.ts';
import { TopicNames } from '../../src/contracts/topics.ts';
import { KafkaClient } from '../../src/messaging/kafka/client.ts';
import { createTopics } from '../../src/messaging/kafka/topic-admin.ts';
import { brokers, uniquePrefix } from '../support/kafka.ts';
import { createStack, type Stack } from '../support/stack.ts';

const execFileAsync = promisify(execFile);

vi.setConfig({ testTimeout: 90_000 });

const pattern = (name: string, extra: Record<string, unknown> = {}) => ({
  pattern_name: name,
  pattern_type: 'code',
  language: 'python',
  template_code: `class ${name}: pass`,
  confidence_score: 0.9,
  tags: ['client'],
  ...extra,
});

describe('PatternClient request/reply', () => {
  let stack: Stack;
  let client: PatternClient;
  beforeAll(async () => {
    stack = await createStack();
    await stack.worker({ WORKER_BATCH_SIZE: '200' });
    client = await new PatternClient({
      brokers: brokers(),
      topicPrefix: stack.names.prefix,
      clientId: 'client-test',
      timeoutMs: 20_000,
    }).connect();
  });
  afterAll(async () => {
    await client.close();
    await stack.close();
  });

  it('answers every operation with its typed result', async () => {
    const a = randomUUID();
    const b = randomUUID();
    const inserted = await client.insert({ data: pattern('AsyncDatabaseWriterPattern', { pattern_id: a }) });
    expect(inserted.success).toBe(true);
    expect(inserted.data?.pattern_id).toBe(a);
    expect(inserted.metadata.operation).toBe('insert');
    expect(inserted.metadata.node).toBe('NodePatternStorageEffect');

    const batch = await client.batchInsert({
      patterns: [pattern('ClientBatchOne'), pattern('ClientBatchTwo')],
    });
    expect(batch.data?.count).toBe(2);
    // A write of no one pattern goes keyed by its correlation id: the worker runs a partition's unkeyed
    // writes one after the other, anyone's, so a slow one would hold it up.
    const source = batch.metadata.source;
    const { stdout: batchKey } = await execFileAsync('kcat', [
      ...['-C', '-b', brokers().join(','), '-t', source?.topic ?? '', '-p', String(source?.partition)],
      ...['-o', source?.offset ?? '', '-c', '1', '-e', '-q', '-f', '%k'],
    ]);
    expect(batchKey).toBe(batch.metadata.correlation_id);
    await client.insert({ data: pattern('ClientTarget', { pattern_id: b }) });

    const calls = {
      update: await client.update({ pattern_id: b, data: { description: 'async writer target' } }),
      getById: await client.getById({ pattern_id: a }),
      search: await client.search({ search_query: 'async database', filters: { language: 'python' } }),
      filter: await client.filter({ filters: { tags: ['client'] }, limit: 50 }),
      getTop: await client.getTop({ limit: 5 }),
      getByType: await client.getByType({ filters: { pattern_type: 'code' } }),
      recordUsage: await client.recordUsage({
        pattern_id: a,
        usage_data: { success: true, quality_before: 0.65, quality_after: 0.88 },
      }),
      updateStats: await client.updateStats({ pattern_id: a }),
      createRelationship: await client.createRelationship({
        relationship_data: { source_pattern_id: a, target_pattern_id: b, relationship_type: 'similar' },
      }),
      updateRelationship: await client.updateRelationship({
        relationship_data: {
          source_pattern_id: a,
          target_pattern_id: b,
          relationship_type: 'similar',
          strength: 0.4,
        },
      }),
      getRelated: await client.getRelated({ pattern_id: a }),
      computeAnalytics: await client.computeAnalytics({ pattern_id: a }),
      getUsageTrends: await client.getUsageTrends({ aggregate_by: 'day' }),
      getQualityTrends: await client.getQualityTrends({ pattern_id: a }),
      getEffectiveness: await client.getEffectiveness({}),
      getGlobalStats: await client.getGlobalStats({}),
    };
    for (const [method, result] of Object.entries(calls)) {
      expect(result.success, `${method}: ${JSON.stringify(result.error)}`).toBe(true);
    }
    expect(calls.getById.data?.pattern_name).toBe('AsyncDatabaseWriterPattern');
    expect(calls.search.data?.[0]?.pattern_id).toBe(a);
    expect(calls.recordUsage.data?.quality_improvement).toBeCloseTo(0.23, 6);
    expect(calls.updateStats.data?.usage_count).toBe(1);
    expect(calls.getRelated.data?.[0]?.strength).toBe(0.4);
    expect(calls.computeAnalytics.data?.total_usage_count).toBe(1);
    expect(calls.getGlobalStats.data?.total_patterns).toBe(4);

    const deleted = await client.delete({ pattern_id: b });
    expect(deleted.data?.deleted).toBe(true);
    const gone = await client.getById({ pattern_id: b });
    expect(gone.success).toBe(false);
    expect(gone.error?.code).toBe('NOT_FOUND');
  });

  it('keeps thousands of concurrent requests apart', async () => {
    const ids = Array.from({ length: 20 }, () => randomUUID());
    await client.batchInsert({ patterns: ids.map((id, i) => pattern(`Concurrent${i}`, { pattern_id: id })) });
    const started = performance.now();
    const results = await Promise.all(
      Array.from({ length: 3000 }, (_, i) => {
        const id = ids[i % ids.length] as string;
        return i % 2 === 0
          ? client.getById({ pattern_id: id }).then((r) => [id, r.data?.pattern_id] as const)
          : client
              .recordUsage({ pattern_id: id, usage_data: { success: true, execution_time_ms: i } })
              .then((r) => [id, r.data?.pattern_id] as const);
      }),
    );
    const elapsed = performance.now() - started;
    expect(results.filter(([want, got]) => want !== got)).toEqual([]);
    expect(client.inFlight).toBe(0);
    const { rows } = await stack.db.pool.query<{ n: number }>(
      'SELECT sum(usage_count)::int AS n FROM pattern_templates WHERE id = ANY($1)',
      [ids],
    );
    expect(rows[0]?.n).toBe(1500);
    console.info(`3000 concurrent requests answered in ${elapsed.toFixed(0)} ms`);
  });

  it('fire-and-forget sends resolve on acknowledgement and keep one pattern in order', async () => {
    const id = randomUUID();
    await client.insert({ data: pattern('FireAndForget', { pattern_id: id }) });
    const sent = [];
    for (let i = 0; i < 50; i++) {
      sent.push(
        client.send.recordUsage({
          pattern_id: id,
          usage_data: { success: true, quality_before: 0.5, quality_after: 0.5 + i / 100, used_at: null },
        }),
      );
    }
    const acks = await Promise.all(sent);
    expect(new Set(acks.map((a) => a.correlationId)).size).toBe(50);
    expect(acks[0]?.topic).toBe(stack.names.request('pattern.usage'));
    await vi.waitFor(
      async () => {
        const { rows } = await stack.db.pool.query<{ n: number }>(
          'SELECT usage_count AS n FROM pattern_templates WHERE id = $1',
          [id],
        );
        expect(rows[0]?.n).toBe(50);
      },
      { timeout: 20_000, interval: 100 },
    );
    // Same key, one partition: the events sit in send order on one partition of the request topic.
    const topic = stack.names.result('pattern.usage');
    const wanted = new Set(acks.map((a) => a.correlationId));
    await stack.results.waitFor(
      (all) =>
        all.filter(
          (m) => m.topic === topic && wanted.has(m.json<ModelResult>().metadata.correlation_id ?? ''),
        ).length >= 50,
    );
    const sourceOf = new Map(
      stack.results.on(topic).map((m) => {
        const r = m.json<ModelResult>();
        return [r.metadata.correlation_id, r.metadata.source] as const;
      }),
    );
    const sources = acks.map((a) => sourceOf.get(a.correlationId));
    expect(new Set(sources.map((src) => src?.partition)).size).toBe(1);
    const offsets = sources.map((src) => Number(src?.offset));
    expect(offsets).toEqual([...offsets].sort((x, y) => x - y));
  });

  it('retrying a write with the same correlation id applies it once', async () => {
    const id = randomUUID();
    const correlationId = randomUUID();
    const first = await client.insert(
      { data: pattern('RetriedInsert', { pattern_id: id }) },
      { correlationId },
    );
    const second = await client.insert(
      { data: pattern('RetriedInsert', { pattern_id: id }) },
      { correlationId },
    );
    expect(first.success).toBe(true);
    expect(second.metadata.duplicate).toBe(true);
    expect(second.data).toEqual(first.data);
  });

  it('rejects an invalid request before sending it, naming the field', async () => {
    await expect(
      client.search({ search_query: 'x', filters: { colour: 'red' } as never }),
    ).rejects.toThrowError(RequestValidationError);
    await expect(client.search({ search_query: 'x', limit: 5000 })).rejects.toThrowError(/limit/);
    expect(client.inFlight).toBe(0);
  });

  it('two clients on one reply partition each get only their own answers', async () => {
    const [one, two] = await Promise.all(
      ['one', 'two'].map((name) =>
        new PatternClient({
          brokers: brokers(),
          topicPrefix: stack.names.prefix,
          clientId: name,
          replyPartition: 1,
        }).connect(),
      ),
    );
    try {
      const id = randomUUID();
      await one!.insert({ data: pattern('SharedPartition', { pattern_id: id }) });
      const [r1, r2] = await Promise.all([
        one!.getById({ pattern_id: id }),
        two!.getTop({ filters: { tags: ['nothing-has-this'] } }),
      ]);
      expect(r1.data?.pattern_id).toBe(id);
      expect(r2.data).toEqual([]);
      expect(one!.replyPartition).toBe(1);
    } finally {
      await Promise.all([one?.close(), two?.close()]);
    }
  });
});

describe('PatternClient without a worker', () => {
  let client: PatternClient;
  const prefix = uniquePrefix();
  beforeAll(async () => {
    const admin = new KafkaClient('pattern-worker-test', { brokers: brokers() }).admin();
    await admin.connect();
    await createTopics(admin, new TopicNames(prefix), {
      requestPartitions: 1,
      resultPartitions: 1,
      dlqPartitions: 1,
      replicationFactor: 1,
      replyPartitions: 1,
    });
    await admin.disconnect();
    client = await new PatternClient({
      brokers: brokers(),
      topicPrefix: prefix,
      clientId: 'lonely',
    }).connect();
  });
  afterAll(async () => client.close());

  it('times out with an error naming the topic and correlation id, and forgets the request', async () => {
    const correlationId = randomUUID();
    const error = await client
      .getById({ pattern_id: randomUUID() }, { timeoutMs: 300, correlationId })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RequestTimeoutError);
    expect((error as Error).message).toContain(`${prefix}pattern.search.request`);
    expect((error as Error).message).toContain(correlationId);
    expect(client.inFlight).toBe(0);
  });

  it('an AbortSignal cancels the wait', async () => {
    const controller = new AbortController();
    const pending = client.getTop({}, { signal: controller.signal, timeoutMs: 10_000 });
    controller.abort(new Error('caller gave up'));
    await expect(pending).rejects.toThrowError('caller gave up');
    expect(client.inFlight).toBe(0);
  });

  it('close() rejects every pending request', async () => {
    const other = await new PatternClient({ brokers: brokers(), topicPrefix: prefix }).connect();
    const pending = Array.from({ length: 5 }, () => other.getTop({}, { timeoutMs: 60_000 }));
    expect(other.inFlight).toBe(5);
    const settled = Promise.allSettled(pending);
    await other.close();
    const outcomes = await settled;
    expect(outcomes.every((o) => o.status === 'rejected' && o.reason instanceof ClientClosedError)).toBe(
      true,
    );
    expect(other.inFlight).toBe(0);
    await expect(other.getTop({})).rejects.toThrowError(ClientClosedError);
  });
});
