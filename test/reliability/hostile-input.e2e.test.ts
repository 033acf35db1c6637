// Hostile and broken input, interleaved with valid messages, against the worker as a separate process.
// Each bad message must get an error result (on the normal result topic: a refused reply path is never
// used) and a dead letter; each valid one must be applied; the database must gain nothing from the bad
// ones; the worker must stay up and ready throughout.
import { randomBytes, randomUUID } from 'node:crypto';
import type { IHeaders } from 'kafkajs';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import type { ModelResult } from '../../src/contracts/results.ts';
import type { RequestTopic } from '../../src/contracts/topics.ts';
import { readBigEndian } from '../../src/messaging/stages/encode.ts';
import { createStackRetrying } from '../support/faults.ts';
import type { Stack } from '../support/stack.ts';
import type { WorkerProcess } from '../support/worker-process.ts';

vi.setConfig({ testTimeout: 120_000 });

const BIG = 3 * 1024 * 1024;
let stack: Stack;
let worker: WorkerProcess;
beforeAll(async () => {
  // One partition per topic: offsets identify every message.
  stack = await createStackRetrying({ partitions: 1 });
  // The request topics accept several-MB messages; the dead-letter topics keep the broker's 1 MB limit,
  // so a dead letter that copied such a value could never be published (a stuck partition).
  const admin = stack.kafka.admin();
  await admin.connect();
  await admin.alterConfigs({
    validateOnly: false,
    resources: (['pattern.insert', 'pattern.usage'] as const).map((t) => ({
      type: 2,
      name: stack.names.request(t),
      configEntries: [{ name: 'max.message.bytes', value: String(8 * 1024 * 1024) }],
    })),
  });
  await admin.disconnect();
  worker = await stack.worker();
});
afterAll(async () => stack?.close());

const INJECTION = `x'); DROP TABLE pattern_templates; --`;
const pattern = (extra: Record<string, unknown> = {}) => ({
  pattern_name: `Hostile${randomBytes(3).toString('hex')}`,
  pattern_type: 'code',
  language: 'python',
  ...extra,
});

interface Case {
  name: string;
  topic: RequestTopic;
  value: Buffer | string | null;
  headers?: IHeaders;
  code: string;
  /** Text the error message must contain (it names the field or the reason). */
  says?: string;
}

const json = (v: unknown) => JSON.stringify(v);
const known = randomUUID();
const dlqName = () => stack.names.dlq('pattern.search.request');

function cases(): Case[] {
  const nested = `{"operation":"insert","data":${'['.repeat(5000)}${']'.repeat(5000)}}`;
  return [
    {
      name: 'malformed JSON',
      topic: 'pattern.insert',
      value: '{"data": {"pattern_name": ',
      code: 'VALIDATION_ERROR',
      says: 'not valid JSON',
    },
    {
      name: 'JSON array',
      topic: 'pattern.insert',
      value: '[1,2,3]',
      code: 'VALIDATION_ERROR',
      says: 'an array',
    },
    {
      name: 'JSON string',
      topic: 'pattern.usage',
      value: '"record_usage"',
      code: 'VALIDATION_ERROR',
      says: 'JSON object',
    },
    { name: 'JSON number', topic: 'pattern.search.request', value: '42', code: 'VALIDATION_ERROR' },
    {
      name: 'missing required field',
      topic: 'pattern.insert',
      value: json({ data: { pattern_type: 'code', language: 'go' } }),
      code: 'VALIDATION_ERROR',
      says: 'pattern_name',
    },
    {
      // success defaults to true, as the seed's did (issue 21); a value of the wrong type is refused.
      name: 'usage success of the wrong type',
      topic: 'pattern.usage',
      value: json({ pattern_id: known, usage_data: { success: 'yes' } }),
      code: 'VALIDATION_ERROR',
      says: 'success',
    },
    {
      name: 'extra top-level field',
      topic: 'pattern.insert',
      value: json({ data: pattern(), admin: true }),
      code: 'VALIDATION_ERROR',
      says: 'admin',
    },
    {
      name: 'extra data field',
      topic: 'pattern.insert',
      value: json({ data: pattern({ usage_count: 999 }) }),
      code: 'VALIDATION_ERROR',
      says: 'usage_count',
    },
    {
      name: 'unknown operation',
      topic: 'pattern.insert',
      value: json({ operation: 'drop_everything' }),
      code: 'VALIDATION_ERROR',
      says: 'unknown operation',
    },
    {
      name: 'operation on the wrong topic',
      topic: 'pattern.insert',
      value: json({ operation: 'search', search_query: 'x' }),
      code: 'VALIDATION_ERROR',
      says: 'belongs to topic',
    },
    {
      name: 'unknown filter key',
      topic: 'pattern.search.request',
      value: json({ operation: 'filter', filters: { owner: 'me' } }),
      code: 'VALIDATION_ERROR',
      says: 'owner',
    },
    {
      name: 'injection in a filter key',
      topic: 'pattern.search.request',
      value: json({ operation: 'filter', filters: { [`language = 'x' OR 1=1; --`]: 1 } }),
      code: 'VALIDATION_ERROR',
      says: 'unknown field',
    },
    {
      name: 'injection as a sort option',
      topic: 'pattern.search.request',
      value: json({ operation: 'filter', order_by: `pattern_name; DROP TABLE pattern_templates` }),
      code: 'VALIDATION_ERROR',
      says: 'order_by',
    },
    {
      name: 'injection in aggregate_by',
      topic: 'pattern.analytics.compute',
      value: json({ operation: 'get_usage_trends', aggregate_by: `day'); DROP TABLE x; --` }),
      code: 'VALIDATION_ERROR',
      says: 'aggregate_by',
    },
    {
      name: 'injection in relationship_type',
      topic: 'pattern.usage',
      value: json({
        operation: 'create_relationship',
        relationship_data: {
          source_pattern_id: known,
          target_pattern_id: randomUUID(),
          relationship_type: INJECTION,
        },
      }),
      code: 'VALIDATION_ERROR',
      says: 'relationship_type',
    },
    {
      name: 'several MB value',
      topic: 'pattern.insert',
      value: json({ data: pattern({ description: 'x'.repeat(BIG) }) }),
      code: 'PAYLOAD_TOO_LARGE',
    },
    {
      name: 'several MB usage event',
      topic: 'pattern.usage',
      value: json({ pattern_id: known, usage_data: { success: true, error_message: 'x'.repeat(BIG) } }),
      code: 'PAYLOAD_TOO_LARGE',
    },
    {
      name: 'deeply nested JSON',
      topic: 'pattern.insert',
      value: nested,
      code: 'VALIDATION_ERROR',
      says: 'nested',
    },
    {
      name: 'invalid UTF-8',
      topic: 'pattern.insert',
      value: Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]),
      code: 'VALIDATION_ERROR',
      says: 'UTF-8',
    },
    {
      name: 'NaN literal',
      topic: 'pattern.insert',
      value: '{"data":{"pattern_name":"N","pattern_type":"code","language":"go","confidence_score":NaN}}',
      code: 'VALIDATION_ERROR',
      says: 'JSON',
    },
    {
      name: 'Infinity via 1e999',
      topic: 'pattern.insert',
      value: '{"data":{"pattern_name":"N","pattern_type":"code","language":"go","confidence_score":1e999}}',
      code: 'VALIDATION_ERROR',
      says: 'confidence_score',
    },
    {
      name: 'score above 1',
      topic: 'pattern.insert',
      value: json({ data: pattern({ confidence_score: 1.5 }) }),
      code: 'VALIDATION_ERROR',
      says: 'confidence_score',
    },
    {
      name: 'negative quality',
      topic: 'pattern.usage',
      value: json({ pattern_id: known, usage_data: { success: true, quality_before: -0.1 } }),
      code: 'VALIDATION_ERROR',
      says: 'quality_before',
    },
    {
      name: 'malformed UUID',
      topic: 'pattern.search.request',
      value: json({ operation: 'get_by_id', pattern_id: `${known.slice(0, -1)}g` }),
      code: 'VALIDATION_ERROR',
      says: 'pattern_id',
    },
    {
      name: 'UUID with injection',
      topic: 'pattern.usage',
      value: json({ pattern_id: `${known}' OR '1'='1`, usage_data: { success: true } }),
      code: 'VALIDATION_ERROR',
      says: 'pattern_id',
    },
    {
      name: 'malformed date',
      topic: 'pattern.analytics.compute',
      value: json({ operation: 'get_usage_trends', period_start: '2024-13-45T00:00:00Z' }),
      code: 'VALIDATION_ERROR',
      says: 'period_start',
    },
    {
      name: 'date without zone',
      topic: 'pattern.usage',
      value: json({ pattern_id: known, usage_data: { success: true, used_at: 'yesterday' } }),
      code: 'VALIDATION_ERROR',
      says: 'used_at',
    },
    { name: 'tombstone', topic: 'pattern.insert', value: null, code: 'VALIDATION_ERROR', says: 'empty' },
    {
      name: 'empty value',
      topic: 'pattern.usage',
      value: Buffer.alloc(0),
      code: 'VALIDATION_ERROR',
      says: 'empty',
    },
    {
      name: 'oversized correlation header',
      topic: 'pattern.insert',
      value: json({ data: pattern() }),
      headers: { kafka_correlationId: randomBytes(64 * 1024) },
      code: 'VALIDATION_ERROR',
      says: 'kafka_correlationId',
    },
    {
      name: 'garbage reply partition',
      topic: 'pattern.search.request',
      value: json({ operation: 'get_top' }),
      headers: {
        kafka_replyTopic: stack.names.result('pattern.search.request'),
        kafka_replyPartition: randomBytes(7),
      },
      code: 'VALIDATION_ERROR',
      says: 'kafka_replyPartition',
    },
    {
      name: 'reply topic that does not exist',
      topic: 'pattern.search.request',
      value: json({ operation: 'get_top' }),
      headers: { kafka_replyTopic: `${stack.names.prefix}missing-${randomUUID()}` },
      code: 'VALIDATION_ERROR',
      says: 'does not exist',
    },
    {
      name: 'reply to __consumer_offsets',
      topic: 'pattern.search.request',
      value: json({ operation: 'get_top' }),
      headers: { kafka_replyTopic: '__consumer_offsets' },
      code: 'VALIDATION_ERROR',
      says: 'internal',
    },
    {
      name: 'reply to the dead-letter topic',
      topic: 'pattern.search.request',
      value: json({ operation: 'get_top' }),
      headers: { kafka_replyTopic: dlqName() },
      code: 'VALIDATION_ERROR',
    },
    {
      name: 'malformed JSON asking for a reply topic that does not exist',
      topic: 'pattern.usage',
      value: '{"usage_data": ',
      headers: { kafka_replyTopic: `${stack.names.prefix}missing-${randomUUID()}` },
      code: 'VALIDATION_ERROR',
      says: 'not valid JSON',
    },
    {
      name: 'reply partition out of range on the result topic',
      topic: 'pattern.search.request',
      value: json({ operation: 'get_top' }),
      headers: { kafka_replyTopic: stack.names.result('pattern.search.request'), kafka_replyPartition: '99' },
      code: 'VALIDATION_ERROR',
      says: 'kafka_replyPartition 99',
    },
    {
      name: 'reply topic name with garbage bytes',
      topic: 'pattern.search.request',
      value: json({ operation: 'get_top' }),
      headers: { kafka_replyTopic: Buffer.from([0x00, 0xff, 0x2f, 0x2e, 0x2e]) },
      code: 'VALIDATION_ERROR',
      says: 'kafka_replyTopic',
    },
    {
      name: 'usage of a pattern that does not exist',
      topic: 'pattern.usage',
      value: json({ pattern_id: randomUUID(), usage_data: { success: true } }),
      code: 'INVALID_REFERENCE',
    },
    {
      name: 'update of a pattern that does not exist',
      topic: 'pattern.insert',
      value: json({ operation: 'update', pattern_id: randomUUID(), data: { description: 'x' } }),
      code: 'NOT_FOUND',
    },
  ];
}

interface Sent {
  physical: string;
  offset: string;
}

async function sendOne(topic: RequestTopic, value: Buffer | string | null, headers?: IHeaders, key?: string) {
  const [meta] = await stack.producer.send({
    topic: stack.names.request(topic),
    acks: -1,
    messages: [{ key: key ?? null, value, ...(headers ? { headers } : {}) }],
  });
  return { physical: stack.names.request(topic), offset: meta?.baseOffset ?? '-1' };
}

it('answers every bad message with an error and a dead letter, applies every valid one, and gains nothing', async () => {
  const started = Date.now();
  const knownSent = await sendOne(
    'pattern.insert',
    json({ data: pattern({ pattern_id: known }) }),
    undefined,
    known,
  );
  // Usage events of it come on another topic, which Kafka does not order against this one: it must be
  // applied before the first is sent, or the worker rightly refuses that one (INVALID_REFERENCE).
  await stack.results.waitFor(
    (all) =>
      all.some((m) => {
        if (m.topic !== stack.names.result('pattern.insert')) return false;
        const source = m.json<ModelResult>().metadata.source;
        return source?.topic === knownSent.physical && source.offset === knownSent.offset;
      }),
    30_000,
    'the result of the pattern the usage events refer to',
  );
  const bad: (Case & Sent)[] = [];
  const good: (Sent & { id?: string })[] = [];
  const injected = { name: `${INJECTION}${randomBytes(2).toString('hex')}` };
  for (const c of cases()) {
    // A valid message on either side of each bad one.
    const id = randomUUID();
    const valid =
      c.topic === 'pattern.usage'
        ? await sendOne(
            'pattern.usage',
            json({ pattern_id: known, usage_data: { success: true } }),
            undefined,
            known,
          )
        : await sendOne('pattern.insert', json({ data: pattern({ pattern_id: id }) }), {
            'x-garbage': randomBytes(32),
          });
    good.push(c.topic === 'pattern.usage' ? valid : { ...valid, id });
    bad.push({ ...c, ...(await sendOne(c.topic, c.value, c.headers)) });
  }
  // SQL-injection text in every string field is data: stored verbatim, searched for harmlessly.
  const injectedId = randomUUID();
  good.push({
    ...(await sendOne(
      'pattern.insert',
      json({
        data: pattern({
          pattern_id: injectedId,
          pattern_name: injected.name,
          pattern_type: INJECTION,
          language: `'; DELETE FROM pattern_templates; --`,
          category: `"; TRUNCATE processed_messages; --`,
          description: `\\'; SELECT pg_sleep(10); --`,
          template_code: `$$; DROP SCHEMA public CASCADE; $$`,
          tags: [INJECTION, `') OR 1=1 --`],
          context: { [`key'); DROP TABLE x; --`]: INJECTION },
        }),
      }),
    )),
    id: injectedId,
  });
  good.push(await sendOne('pattern.search.request', json({ operation: 'search', search_query: INJECTION })));
  good.push(
    await sendOne(
      'pattern.search.request',
      json({ operation: 'filter', filters: { language: `' OR 1=1 --` } }),
    ),
  );

  const sources = (m: { json: <T>() => T }) => m.json<ModelResult>().metadata.source;
  const resultTopics = (
    ['pattern.insert', 'pattern.usage', 'pattern.search.request', 'pattern.analytics.compute'] as const
  ).map((t) => stack.names.result(t));
  const answered = (s: Sent) =>
    resultTopics.some((t) =>
      stack.results.on(t).some((m) => sources(m)?.topic === s.physical && sources(m)?.offset === s.offset),
    );
  await stack.results.waitFor(() => [...bad, ...good].every(answered), 60_000, 'a result for every message');

  const findResult = (s: Sent) =>
    resultTopics
      .flatMap((t) => stack.results.on(t))
      .filter((m) => sources(m)?.topic === s.physical && sources(m)?.offset === s.offset);
  const deadLetters = stack.results.messages.filter((m) => m.topic.endsWith('.dlq'));
  const outcomes = bad.map((b) => {
    const results = findResult(b);
    const result = results[0]?.json<ModelResult>();
    const dead = deadLetters.filter(
      (d) =>
        d.headers['kafka_dlt-original-topic']?.toString() === b.physical &&
        String(readBigEndian(d.headers['kafka_dlt-original-offset'] as Buffer)) === b.offset,
    );
    return {
      name: b.name,
      results: results.length,
      on: results[0]?.topic === stack.names.result(b.topic),
      success: result?.success,
      code: result?.error?.code,
      says: b.says ? (result?.error?.message ?? '').includes(b.says) : true,
      deadLetters: dead.length,
      deadCode: dead[0]?.headers['kafka_dlt-exception-fqcn']?.toString(),
    };
  });
  expect(outcomes).toEqual(
    bad.map((b) => ({
      name: b.name,
      results: 1,
      on: true,
      success: false,
      code: b.code,
      says: true,
      deadLetters: 1,
      deadCode: b.code,
    })),
  );
  // Oversized messages are dead-lettered without their value (it stays in the request topic), so the
  // dead letter fits the dead-letter topic and the partition moves on.
  const bigDead = deadLetters.filter(
    (d) => d.headers['kafka_dlt-exception-fqcn']?.toString() === 'PAYLOAD_TOO_LARGE',
  );
  expect(
    bigDead.map((d) => [
      d.value,
      Number(d.headers['kafka_dlt-original-value-omitted-bytes']?.toString()) > BIG,
    ]),
  ).toEqual([
    [null, true],
    [null, true],
  ]);

  for (const g of good) {
    const [result] = findResult(g);
    expect({ offset: g.offset, success: result?.json<ModelResult>().success }).toEqual({
      offset: g.offset,
      success: true,
    });
  }
  // Nothing from the bad ones: exactly the valid patterns, usage events and no relationships.
  const ids = [known, ...good.flatMap((g) => (g.id ? [g.id] : []))];
  const { rows } = await stack.db.pool.query<{
    patterns: number;
    usage: number;
    relationships: number;
    known_usage: number;
  }>(
    `SELECT (SELECT count(*) FROM pattern_templates) AS patterns,
            (SELECT count(*) FROM pattern_usage_events) AS usage,
            (SELECT count(*) FROM pattern_relationships) AS relationships,
            (SELECT usage_count FROM pattern_templates WHERE id = $1) AS known_usage`,
    [known],
  );
  const usageSent = bad.filter((b) => b.topic === 'pattern.usage').length;
  expect(rows[0]).toEqual({
    patterns: ids.length,
    usage: usageSent,
    relationships: 0,
    known_usage: usageSent,
  });
  const stored = await stack.db.pool.query(
    'SELECT pattern_name, pattern_type, tags FROM pattern_templates WHERE id = $1',
    [injectedId],
  );
  expect(stored.rows[0]).toEqual({
    pattern_name: injected.name,
    pattern_type: INJECTION,
    tags: [INJECTION, `') OR 1=1 --`],
  });
  const applied = await stack.db.pool.query<{ n: number }>(
    `SELECT count(*) AS n FROM processed_messages WHERE (result->>'success')::boolean`,
  );
  expect(applied.rows[0]?.n).toBe(ids.length + usageSent);

  expect(worker.child.exitCode).toBeNull();
  expect((await worker.readyz()).status).toBe(200);
  // Nothing made Node warn (the worker used to hide every TimeoutNegativeWarning, then kafkajs's).
  expect(worker.output()).not.toMatch(/\(node:\d+\) \w*Warning/);
  console.log(
    `[reliability] hostile-input: ${bad.length} bad, ${good.length + 1} valid, ${deadLetters.length} dead letters, ` +
      `${Math.round((Date.now() - started) / 1000)} s`,
  );
});
