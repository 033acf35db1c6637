// The worker as a separate process against the real broker and database (issue "The worker").
import { randomBytes, randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { ModelResult } from '../../src/contracts/results.ts';
import { readBigEndian } from '../../src/messaging/stages/encode.ts';
import type { CollectedMessage } from '../support/kafka.ts';
import { ADMIN_URL } from '../support/database.ts';
import { createStack, type Stack } from '../support/stack.ts';
import { eventually } from '../support/faults.ts';

// Worker processes, group rebalances and a session timeout after SIGKILL take seconds each.
vi.setConfig({ testTimeout: 90_000 });

const resultOf = (m: CollectedMessage) => m.json<ModelResult<Record<string, unknown>>>();
const byCid = (messages: CollectedMessage[], cid: string) =>
  messages.filter((m) => !m.topic.endsWith('.dlq') && resultOf(m).metadata?.correlation_id === cid);

function pattern(name: string, extra: Record<string, unknown> = {}) {
  return {
    pattern_name: name,
    pattern_type: 'code',
    language: 'python',
    confidence_score: 0.9,
    tags: ['e2e'],
    ...extra,
  };
}

async function count(stack: Stack, sql: string, params: unknown[] = []): Promise<number> {
  const { rows } = await stack.db.pool.query<{ n: number }>(sql, params);
  return rows[0]?.n ?? 0;
}

describe('routing every operation, correlation and reply paths', () => {
  let stack: Stack;
  const replyTopic = `replies-${randomBytes(4).toString('hex')}`;
  beforeAll(async () => {
    stack = await createStack({ extraTopics: [replyTopic] });
    // The reply topics of this file are outside the worker's prefix: allowed explicitly.
    await stack.worker({ WORKER_REPLY_TOPICS: 'replies-*,nope-*' });
  });
  afterAll(async () => stack.close());

  it('answers every operation on its result topic with metadata and the body correlation id as header', async () => {
    const a = randomUUID();
    const b = randomUUID();
    const ins = [randomUUID(), randomUUID()];
    await stack.send('pattern.insert', [
      { operation: 'insert', correlation_id: ins[0], data: pattern('RoutedA', { pattern_id: a }) },
      {
        correlation_id: ins[1],
        data: pattern('RoutedB', { pattern_id: b, description: 'async database writer' }),
      },
    ]);
    const insertResults = stack.names.result('pattern.insert');
    await stack.results.waitForCount(insertResults, 2);

    const ops: [Parameters<Stack['send']>[0], Record<string, unknown>][] = [
      ['pattern.insert', { operation: 'update', pattern_id: a, data: { description: 'updated' } }],
      ['pattern.insert', { operation: 'batch_insert', patterns: [pattern('RoutedC'), pattern('RoutedD')] }],
      ['pattern.search.request', { operation: 'search', search_query: 'async database' }],
      ['pattern.search.request', { operation: 'get_by_id', pattern_id: a }],
      ['pattern.search.request', { operation: 'filter', filters: { language: 'python' } }],
      ['pattern.search.request', { operation: 'get_top' }],
      ['pattern.search.request', { operation: 'get_by_type', filters: { pattern_type: 'code' } }],
      [
        'pattern.usage',
        {
          operation: 'record_usage',
          pattern_id: a,
          usage_data: { success: true, quality_before: 0.5, quality_after: 0.7 },
        },
      ],
      ['pattern.usage', { operation: 'update_stats', pattern_id: a }],
      [
        'pattern.usage',
        {
          operation: 'create_relationship',
          relationship_data: {
            source_pattern_id: a,
            target_pattern_id: b,
            relationship_type: 'similar',
            strength: 0.5,
          },
        },
      ],
      [
        'pattern.usage',
        {
          operation: 'update_relationship',
          relationship_data: {
            source_pattern_id: a,
            target_pattern_id: b,
            relationship_type: 'similar',
            strength: 0.9,
          },
        },
      ],
      ['pattern.analytics.compute', { operation: 'compute_analytics', pattern_id: a }],
      ['pattern.analytics.compute', { operation: 'get_usage_trends' }],
      ['pattern.analytics.compute', { operation: 'get_quality_trends' }],
      ['pattern.analytics.compute', { operation: 'get_effectiveness' }],
      ['pattern.analytics.compute', { operation: 'get_global_stats' }],
      ['pattern.analytics.compute', { operation: 'get_global_stats' }],
    ];
    const expected = new Map<string, { topic: string; operation: string }>();
    for (const [topic, body] of ops) {
      const cid = randomUUID();
      expected.set(cid, { topic: stack.names.result(topic), operation: body.operation as string });
      // Keyed by pattern id, as the contract advises, so one pattern's requests stay in order.
      await stack.producer.send({
        topic: stack.names.request(topic),
        messages: [{ key: a, value: JSON.stringify({ ...body, correlation_id: cid }) }],
      });
    }
    await stack.results.waitFor(
      (all) => [...expected.keys()].every((cid) => byCid(all, cid).length > 0),
      30_000,
      'a result for every operation',
    );
    for (const [cid, want] of expected) {
      const [message] = byCid(stack.results.messages, cid);
      const result = resultOf(message as CollectedMessage);
      expect({
        topic: message?.topic,
        operation: result.metadata.operation,
        success: result.success,
        error: result.error,
      }).toEqual({
        topic: want.topic,
        operation: want.operation,
        success: true,
        error: null,
      });
      expect(message?.headers.kafka_correlationId?.toString()).toBe(cid);
      expect(message?.headers['content-type']?.toString()).toBe('application/json');
      expect(message?.headers['kafka_nest-is-disposed']).toBeDefined();
      expect(message?.key?.toString()).toBe(a);
    }
    // The second global read within ANALYTICS_RESULT_MAX_AGE_MS is answered from the first's computation.
    const globalReads = [...expected]
      .filter(([, want]) => want.operation === 'get_global_stats')
      .map(([cid]) => resultOf(byCid(stack.results.messages, cid)[0] as CollectedMessage).metadata);
    expect(globalReads.map((m) => m.cached === true)).toEqual([false, true]);
    expect(globalReads[1]?.as_of).toBe(globalReads[0]?.as_of);
    // The last write wins in offset order: the relationship ends at strength 0.9.
    expect(await count(stack, 'SELECT count(*) AS n FROM pattern_relationships WHERE strength = 0.9')).toBe(
      1,
    );

    await stack.send('pattern.insert', [
      { operation: 'delete', pattern_id: b, correlation_id: randomUUID() },
    ]);
    await stack.results.waitFor(() =>
      stack.results.on(insertResults).some((m) => resultOf(m).metadata.operation === 'delete'),
    );
    expect(await count(stack, 'SELECT count(*) AS n FROM pattern_templates WHERE id = $1', [b])).toBe(0);
  });

  it('echoes a 16-byte binary correlation id on the reply topic and 4-byte partition (Spring)', async () => {
    const correlation = randomBytes(16);
    const partition = Buffer.alloc(4);
    partition.writeInt32BE(2);
    await stack.send('pattern.search.request', [
      {
        value: JSON.stringify({ operation: 'get_top' }),
        headers: {
          kafka_correlationId: correlation,
          kafka_replyTopic: replyTopic,
          kafka_replyPartition: partition,
        },
      },
    ]);
    const [reply] = await stack.results.waitForCount(replyTopic, 1);
    expect(reply?.partition).toBe(2);
    expect(Buffer.compare(reply?.headers.kafka_correlationId as Buffer, correlation)).toBe(0);
    expect(resultOf(reply as CollectedMessage).success).toBe(true);
  });

  it('echoes a string correlation id on the reply topic and decimal partition (NestJS)', async () => {
    const correlation = randomUUID();
    await stack.send('pattern.search.request', [
      {
        value: JSON.stringify({ operation: 'filter' }),
        headers: {
          kafka_correlationId: correlation,
          kafka_replyTopic: replyTopic,
          kafka_replyPartition: '1',
        },
      },
    ]);
    await stack.results.waitForCount(replyTopic, 2);
    const reply = stack.results
      .on(replyTopic)
      .find((m) => m.headers.kafka_correlationId?.toString() === correlation);
    expect(reply?.partition).toBe(1);
  });

  it('refuses to reply to an internal or missing topic, and says so on the result topic', async () => {
    const internal = randomUUID();
    const missing = randomUUID();
    await stack.send('pattern.search.request', [
      {
        value: JSON.stringify({ operation: 'get_top', correlation_id: internal }),
        headers: { kafka_replyTopic: '__consumer_offsets' },
      },
      {
        value: JSON.stringify({ operation: 'get_top', correlation_id: missing }),
        headers: { kafka_replyTopic: `nope-${randomUUID()}` },
      },
    ]);
    const resultTopic = stack.names.result('pattern.search.request');
    await stack.results.waitFor((all) => byCid(all, internal).length > 0 && byCid(all, missing).length > 0);
    const refusedInternal = resultOf(byCid(stack.results.messages, internal)[0] as CollectedMessage);
    const refusedMissing = resultOf(byCid(stack.results.messages, missing)[0] as CollectedMessage);
    expect(byCid(stack.results.messages, internal)[0]?.topic).toBe(resultTopic);
    expect(refusedInternal.error?.message).toContain('internal topic');
    expect(refusedMissing.error?.message).toContain('does not exist');
  });
});

describe('exactly-once effects and replays', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await createStack();
  });
  afterAll(async () => stack.close());

  it('applies a message sent twice once, and a re-consumed topic changes nothing', async () => {
    await stack.worker();
    const id = randomUUID();
    const insert = { correlation_id: randomUUID(), data: pattern('Twice', { pattern_id: id }) };
    await stack.send('pattern.insert', [insert, insert]);
    const usage = Array.from({ length: 20 }, (_, i) => ({
      operation: 'record_usage',
      correlation_id: randomUUID(),
      pattern_id: id,
      usage_data: {
        success: i % 4 !== 0,
        execution_time_ms: 10 + i,
        quality_before: 0.5,
        quality_after: 0.6,
      },
    }));
    await stack.results.waitForCount(stack.names.result('pattern.insert'), 2);
    await stack.send('pattern.usage', [...usage, usage[0] as Record<string, unknown>]);
    const usageTopic = stack.names.result('pattern.usage');
    await stack.results.waitForCount(usageTopic, 21);

    const inserts = stack.results.on(stack.names.result('pattern.insert')).map(resultOf);
    // Unkeyed copies may land on two partitions: either may win, exactly one is the duplicate.
    expect(inserts.map((r) => r.metadata.duplicate ?? false).sort()).toEqual([false, true]);
    expect(inserts[1]?.data).toEqual(inserts[0]?.data);
    const stats = async () =>
      (
        await stack.db.pool.query<Record<string, unknown>>(
          'SELECT usage_count, success_count, avg_execution_time_ms FROM pattern_templates WHERE id = $1',
          [id],
        )
      ).rows[0];
    const before = await stats();
    expect(before).toMatchObject({ usage_count: 20, success_count: 15 });

    // A second worker group reads every request topic from the beginning: a replay.
    const firstResults = stack.results.on(usageTopic).map(resultOf);
    await stack.worker({ KAFKA_GROUP_ID: `${stack.names.prefix}replay` });
    await stack.results.waitForCount(usageTopic, 42, 30_000);
    expect(await stats()).toEqual(before);
    expect(await count(stack, 'SELECT count(*) AS n FROM pattern_usage_events')).toBe(20);
    const replayed = stack.results.on(usageTopic).slice(21).map(resultOf);
    expect(replayed.every((r) => r.metadata.duplicate === true)).toBe(true);
    const dataByCid = new Map(firstResults.map((r) => [r.metadata.correlation_id, JSON.stringify(r.data)]));
    for (const r of replayed) expect(JSON.stringify(r.data)).toBe(dataByCid.get(r.metadata.correlation_id));
  });
});

describe("a run of one pattern's update_stats", () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await createStack({ partitions: 1 });
  });
  afterAll(async () => stack.close());

  it('is applied in batches: each message answered once, with the statistics, and recorded', async () => {
    const id = randomUUID();
    await stack.db.pool.query(
      `INSERT INTO pattern_templates (id, pattern_name, pattern_type, language) VALUES ($1, 'Recomputed', 'code', 'go')`,
      [id],
    );
    await stack.db.pool.query(
      `INSERT INTO pattern_usage_events (id, pattern_id, success, execution_time_ms, used_at)
       SELECT gen_random_uuid(), $1, i % 4 <> 0, i, timestamptz '2026-11-01' + i * interval '1 minute'
         FROM generate_series(1, 2000) i`,
      [id],
    );
    // Queued before the worker starts, so that it finds them all at once (a producer's burst).
    const requests = Array.from({ length: 300 }, () => ({
      key: id,
      value: JSON.stringify({ operation: 'update_stats', correlation_id: randomUUID(), pattern_id: id }),
    }));
    await stack.send('pattern.usage', requests);
    await stack.worker();
    const topic = stack.names.result('pattern.usage');
    const results = (await stack.results.waitForCount(topic, 300, 60_000))
      .filter((m) => m.topic === topic)
      .map(resultOf);
    expect(results).toHaveLength(300);
    expect(new Set(results.map((r) => r.metadata.correlation_id)).size).toBe(300);
    expect(results.every((r) => r.success && r.metadata.duplicate !== true)).toBe(true);
    expect(results[0]?.data).toMatchObject({ pattern_id: id, usage_count: 2000, success_count: 1500 });
    expect(new Set(results.map((r) => JSON.stringify(r.data))).size).toBe(1);
    // One recomputation answered many: the results say how many shared its transaction.
    const sizes = results.map((r) => Number(r.metadata.batch_size ?? 1));
    expect(Math.max(...sizes)).toBeGreaterThan(1);
    expect(
      await count(
        stack,
        `SELECT count(*)::int AS n FROM processed_messages WHERE operation = 'update_stats'`,
      ),
    ).toBe(300);
  });
});

describe('a crash between the database commit and the offset commit', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await createStack({ partitions: 1 });
  });
  afterAll(async () => stack.close());

  it('loses nothing and doubles nothing after SIGKILL and restart', async () => {
    const id = randomUUID();
    const setup = await stack.worker();
    await stack.send('pattern.insert', [
      { correlation_id: randomUUID(), data: pattern('Crashy', { pattern_id: id }) },
    ]);
    await stack.results.waitForCount(stack.names.result('pattern.insert'), 1);
    expect(await setup.stop('SIGTERM')).toBe(0);

    await stack.send(
      'pattern.usage',
      Array.from({ length: 50 }, () => ({
        correlation_id: randomUUID(),
        pattern_id: id,
        usage_data: { success: true },
      })),
    );
    // Dies right after the usage batch commits, before publishing its results or committing its offsets.
    const doomed = await stack.worker({ WORKER_FAULT_KILL_AFTER_UNITS: '1' }).catch(() => undefined);
    const deadline = Date.now() + 20_000;
    while (
      (await count(stack, 'SELECT count(*) AS n FROM pattern_usage_events')) < 50 &&
      Date.now() < deadline
    ) {
      await new Promise((r) => setTimeout(r, 100));
    }
    if (doomed) expect(await doomed.stop('SIGKILL')).toBe('SIGKILL');
    expect(await count(stack, 'SELECT count(*) AS n FROM pattern_usage_events')).toBe(50);
    expect(stack.results.on(stack.names.result('pattern.usage'))).toHaveLength(0);

    await stack.worker();
    const results = await stack.results.waitForCount(stack.names.result('pattern.usage'), 50, 30_000);
    expect(results.every((m) => resultOf(m).success && resultOf(m).metadata.duplicate === true)).toBe(true);
    expect(await count(stack, 'SELECT usage_count AS n FROM pattern_templates WHERE id = $1', [id])).toBe(50);
    expect(await count(stack, 'SELECT count(*) AS n FROM pattern_usage_events')).toBe(50);
  });
});

describe('a malformed message between two valid ones', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await createStack({ partitions: 1 });
    await stack.worker();
  });
  afterAll(async () => stack.close());

  it('is dead-lettered with its coordinates while both valid ones are applied in order', async () => {
    const first = randomUUID();
    const second = randomUUID();
    await stack.send('pattern.insert', [
      { key: 'k', value: JSON.stringify({ correlation_id: first, data: pattern('Before') }) },
      { key: 'k', value: '{"data": {"pattern_name": ', headers: { trace: 'x' } },
      { key: 'k', value: JSON.stringify({ correlation_id: second, data: pattern('After') }) },
    ]);
    const [dead] = await stack.results.waitForCount(stack.names.dlq('pattern.insert'), 1);
    expect(dead?.value?.toString()).toBe('{"data": {"pattern_name": ');
    expect(dead?.key?.toString()).toBe('k');
    expect(dead?.headers.trace?.toString()).toBe('x');
    expect(dead?.headers['kafka_dlt-original-topic']?.toString()).toBe(stack.names.request('pattern.insert'));
    expect(readBigEndian(dead?.headers['kafka_dlt-original-partition'] as Buffer)).toBe(0);
    expect(readBigEndian(dead?.headers['kafka_dlt-original-offset'] as Buffer)).toBe(1);
    expect(dead?.headers['kafka_dlt-exception-fqcn']?.toString()).toBe('VALIDATION_ERROR');
    expect(dead?.headers['kafka_dlt-original-consumer-group']?.toString()).toBe(
      `${stack.env.KAFKA_GROUP_ID}.writes`,
    );

    const results = await stack.results.waitForCount(stack.names.result('pattern.insert'), 3);
    expect(results.map((m) => [resultOf(m).success, resultOf(m).metadata.source?.offset])).toEqual([
      [true, '0'],
      [false, '1'],
      [true, '2'],
    ]);
    const { rows } = await stack.db.pool.query(
      'SELECT pattern_name FROM pattern_templates ORDER BY discovered_at, pattern_name',
    );
    expect(rows.map((r: { pattern_name: string }) => r.pattern_name).sort()).toEqual(['After', 'Before']);
  });
});

describe('a database outage mid-stream', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await createStack();
  });
  afterAll(async () => {
    await setConnections(stack.db.name, true).catch(() => undefined);
    await stack.close();
  });

  async function setConnections(database: string, allow: boolean) {
    const admin = new pg.Client({ connectionString: ADMIN_URL });
    await admin.connect();
    try {
      await admin.query(`ALTER DATABASE ${database} ALLOW_CONNECTIONS ${allow ? 'true' : 'false'}`);
      if (!allow) {
        await admin.query(
          'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
          [database],
        );
      }
    } finally {
      await admin.end();
    }
  }

  it('delays results, loses none, reports not ready, and recovers without a restart', async () => {
    const worker = await stack.worker();
    const id = randomUUID();
    await stack.send('pattern.insert', [
      { correlation_id: randomUUID(), data: pattern('Outage', { pattern_id: id }) },
    ]);
    await stack.results.waitForCount(stack.names.result('pattern.insert'), 1);

    const send = (n: number) =>
      stack.send(
        'pattern.usage',
        Array.from({ length: n }, () => ({
          correlation_id: randomUUID(),
          pattern_id: id,
          usage_data: { success: true },
        })),
      );
    await send(30);
    await setConnections(stack.db.name, false);
    await send(30);
    await worker.waitUntil((status) => status === 503, 15_000);
    await new Promise((r) => setTimeout(r, 3000));
    await send(30);
    await setConnections(stack.db.name, true);
    await worker.waitReady(30_000);
    await stack.results.waitForCount(stack.names.result('pattern.usage'), 90, 30_000);

    const check = new pg.Client({ connectionString: stack.db.url });
    await check.connect();
    const { rows } = await check.query<{ usage_count: string }>(
      'SELECT usage_count FROM pattern_templates WHERE id = $1',
      [id],
    );
    await check.end();
    expect(Number(rows[0]?.usage_count)).toBe(90);
    expect(stack.results.on(stack.names.dlq('pattern.usage'))).toHaveLength(0);
  });
});

describe('two workers in one group', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await createStack({ partitions: 4 });
  });
  afterAll(async () => stack.close());

  it('share the partitions, and stopping one moves its partitions to the other without loss', async () => {
    const ids = [randomUUID(), randomUUID(), randomUUID(), randomUUID()];
    await stack.send(
      'pattern.insert',
      ids.map((id, i) => ({ correlation_id: randomUUID(), data: pattern(`Shared${i}`, { pattern_id: id }) })),
    );
    const one = await stack.worker();
    const two = await stack.worker();
    await stack.results.waitForCount(stack.names.result('pattern.insert'), 4);
    const burst = async () => {
      for (const id of ids) {
        await stack.producer.send({
          topic: stack.names.request('pattern.usage'),
          messages: Array.from({ length: 25 }, () => ({
            key: id,
            value: JSON.stringify({
              correlation_id: randomUUID(),
              pattern_id: id,
              usage_data: { success: true },
            }),
          })),
        });
      }
    };
    await burst();
    await stack.results.waitForCount(stack.names.result('pattern.usage'), 100, 30_000);
    expect(await one.stop('SIGTERM')).toBe(0);
    await burst();
    await stack.results.waitForCount(stack.names.result('pattern.usage'), 200, 60_000);
    // The result topic also holds earlier tests' results and redelivered duplicates: wait for the rows.
    await eventually(
      async () => (await count(stack, 'SELECT sum(usage_count) AS n FROM pattern_templates')) === 200,
      60_000,
      'usage of both bursts applied',
    );
    expect(await count(stack, 'SELECT sum(usage_count) AS n FROM pattern_templates')).toBe(200);
    expect(two.child.exitCode).toBeNull();
  });
});
