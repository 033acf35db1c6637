import { describe, expect, it } from 'vitest';
import { decodeRequest, jsonDepth, MAX_JSON_ELEMENTS } from '../../src/contracts/decode.ts';
import { readCorrelationHeader, readReplyPartition, readReplyTopic } from '../../src/contracts/headers.ts';
import { TopicNames } from '../../src/contracts/topics.ts';

const ID = '11111111-1111-4111-8111-111111111111';
const decode = (topic: Parameters<typeof decodeRequest>[0], value: unknown, maxBytes = 1_000_000) =>
  decodeRequest(
    topic,
    Buffer.isBuffer(value) ? value : Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)),
    {
      maxBytes,
    },
  );
const errorOf = (r: ReturnType<typeof decode>) => (r.ok ? undefined : r.error);

describe('decodeRequest', () => {
  it('applies the default operation and list defaults', () => {
    const r = decode('pattern.search.request', {
      search_query: 'async database',
      filters: { language: 'python', min_confidence_score: 0.8 },
    });
    expect(r).toEqual({
      fingerprint: expect.any(String) as string,
      ok: true,
      // Two objects and two commas, plus one: what the parsed request may hold.
      elements: 5,
      request: {
        operation: 'search',
        search_query: 'async database',
        filters: { language: 'python', min_confidence_score: 0.8 },
        limit: 10,
        offset: 0,
      },
    });
  });

  it.each([
    [
      'an unknown field',
      'pattern.insert',
      { operation: 'delete', pattern_id: ID, foo: 1 },
      'unknown field "foo"',
    ],
    [
      'an unknown filter key',
      'pattern.search.request',
      { search_query: 'x', filters: { 'sort; DROP TABLE x': 1 } },
      'in filters',
    ],
    [
      'an out-of-range score',
      'pattern.search.request',
      { search_query: 'x', filters: { min_confidence_score: 1.5 } },
      'filters.min_confidence_score: must be between 0 and 1',
    ],
    [
      'an operation of another topic',
      'pattern.insert',
      { operation: 'search', search_query: 'x' },
      'belongs to topic pattern.search.request',
    ],
    ['an unknown operation', 'pattern.usage', { operation: 'nope' }, 'unknown operation "nope"'],
    [
      'a malformed UUID',
      'pattern.insert',
      { operation: 'delete', pattern_id: "1' OR '1'='1" },
      'pattern_id: must be a UUID',
    ],
    ['a malformed date', 'pattern.analytics.compute', { period_start: 'yesterday' }, 'period_start'],
    [
      'a used field of another operation',
      'pattern.insert',
      { operation: 'delete', pattern_id: ID, search_query: 'x' },
      'is not used by operation "delete"',
    ],
    [
      'a limit over 1000',
      'pattern.search.request',
      { operation: 'filter', limit: 1001 },
      'limit: must be at most 1000',
    ],
    ['a missing required field', 'pattern.usage', { pattern_id: ID }, 'usage_data: is required'],
    [
      'an empty period',
      'pattern.analytics.compute',
      { period_start: '2026-01-02T00:00:00Z', period_end: '2026-01-01T00:00:00Z' },
      'period_end: must be after period_start',
    ],
    [
      'a self relationship',
      'pattern.usage',
      {
        operation: 'create_relationship',
        relationship_data: { source_pattern_id: ID, target_pattern_id: ID, relationship_type: 'similar' },
      },
      'target_pattern_id',
    ],
    ['an array', 'pattern.insert', [1, 2], 'must be a JSON object, not an array'],
  ])('rejects %s, naming it', (_what, topic, value, message) => {
    const error = errorOf(decode(topic as never, value));
    expect(error?.code).toBe('VALIDATION_ERROR');
    expect(error?.message).toContain(message);
  });

  it('accepts known-but-unused fields when they are null', () => {
    expect(
      decode('pattern.insert', { operation: 'delete', pattern_id: ID, search_query: null, usage_data: null })
        .ok,
    ).toBe(true);
  });

  it('rejects byte-level garbage without parsing more than needed', () => {
    expect(errorOf(decode('pattern.insert', Buffer.alloc(0)))?.message).toContain('empty');
    expect(errorOf(decode('pattern.insert', Buffer.from([0x7b, 0xff, 0xfe, 0x7d])))?.message).toContain(
      'UTF-8',
    );
    expect(errorOf(decode('pattern.insert', '{"a":'))?.message).toContain('not valid JSON');
    expect(errorOf(decode('pattern.insert', '['.repeat(1_000_000)))?.message).toContain('nested');
    expect(
      errorOf(
        decode(
          'pattern.usage',
          `{"pattern_id":"${ID}","usage_data":{"success":true,"quality_before":1e999}}`,
        ),
      )?.code,
    ).toBe('VALIDATION_ERROR');
    const big = errorOf(decode('pattern.insert', 'x'.repeat(2000), 1000));
    expect(big).toMatchObject({ code: 'PAYLOAD_TOO_LARGE', details: { size: 2000, limit: 1000 } });
  });

  it('refuses a number that would not be kept as sent, naming it, and keeps every other one', () => {
    const insert = (context: string, extra = '') =>
      decode(
        'pattern.insert',
        `{"correlation_id":"${ID}","data":{"pattern_name":"N","pattern_type":"code","language":"go"${extra},"context":${context}}}`,
      );
    for (const [number, becomes] of [
      ['1e400', 'null'],
      ['-1e400', 'null'],
      ['12345678901234567890', '12345678901234567000'],
      ['9007199254740993', '9007199254740992'],
      ['123456789.123456789', '123456789.12345679'],
      ['1e-400', '0'],
    ] as const) {
      const r = insert(`{"a":{"b":${number}}}`);
      expect(r.ok).toBe(false);
      if (r.ok) continue;
      expect(r.error.message).toBe(
        `data.context.a.b: the number ${number} cannot be kept as sent (it would be ${becomes}): numbers are read as 64-bit ` +
          'floating point (15 significant digits are always kept; magnitudes above about 1.8e308 or below ' +
          '5e-324 are not); send such a number as a string',
      );
      // The caller can still match the refusal.
      expect(r.correlationId).toBe(ID);
    }
    expect(errorOf(insert('{}', ',"confidence_score":1e-400'))?.details).toMatchObject({
      field: 'data.confidence_score',
    });
    for (const number of [
      '1e308',
      '5e-324',
      '-0',
      '0.30000000000000004',
      '1.5e-310',
      '1.000e3',
      '9007199254740992',
    ]) {
      expect(insert(`{"a":${number}}`).ok, number).toBe(true);
    }
    expect(errorOf(insert('{"a":[1,{"n":1e999}]}'))?.details).toMatchObject({ field: 'data.context.a[1].n' });
    // Digits in strings are text, whatever they look like.
    expect(insert('{"a":"12345678901234567890e999"}').ok).toBe(true);
  });

  it('reads a cid: identity in any case, as identities are stored', () => {
    const r = decode('pattern.search.request', {
      operation: 'get_result',
      request_identity: `cid:${ID.toUpperCase().replace('1111-4111', 'ABCD-4111')}`,
    });
    expect(r.ok && r.request).toMatchObject({
      request_identity: `cid:${ID.replace('1111-4111', 'abcd-4111')}`,
    });
  });

  it('gives the correlation_id of a body refused for its fields', () => {
    const r = decode('pattern.insert', { correlation_id: ID, data: { pattern_name: '' } });
    expect(r).toMatchObject({ ok: false, correlationId: ID });
    for (const invalid of ['not-a-uuid', '12345678-1234-1234-1234-123456789012']) {
      // What the error calls invalid is not echoed as the caller's id.
      expect(decode('pattern.insert', { correlation_id: invalid, data: {} })).not.toHaveProperty(
        'correlationId',
      );
    }
    expect(decode('pattern.insert', { correlation_id: ID, operation: 'nope' })).toMatchObject({
      correlationId: ID,
    });
  });

  it('refuses a request of more values than it may hold once parsed, before parsing it', () => {
    const id = '0b1e6c1a-8c61-4c2e-9d3a-6f3b3c1e2a10';
    // 990 KB of empty objects: 21 MB of heap parsed; four of them in one fetch exhausted the worker's.
    const body = `{"operation":"record_usage","pattern_id":"${id}","usage_data":{"context":{"a":[${'{},'.repeat(329_999)}{}]}}}`;
    const r = decode('pattern.usage', body);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.error).toMatchObject({
      code: 'VALIDATION_ERROR',
      details: { elements: 660_006, max_elements: MAX_JSON_ELEMENTS },
    });
    expect(r.error.message).toMatch(/660006 values and members .* at most 100000/);
    // Refused unparsed, its top-level correlation_id still comes back (a nested one does not).
    const cid = '5f0c3c4e-2a55-4b7e-9d5c-0f3a2b1c4d5e';
    const withId = decode(
      'pattern.usage',
      body.replace('{"operation"', `{"correlation_id" : "${cid}","operation"`),
    );
    expect(withId).toMatchObject({ ok: false, correlationId: cid });
    const nested = decode(
      'pattern.usage',
      body.replace('"context":{', `"context":{"correlation_id":"${cid}",`),
    );
    expect(nested.ok || nested.correlationId).toBeUndefined();
    const deep = decode(
      'pattern.usage',
      `{"a":"{[","correlation_id":"${cid}","b":${'['.repeat(40)}${']'.repeat(40)}}`,
    );
    expect(deep).toMatchObject({ ok: false, correlationId: cid });
    // A batch of 1,000 patterns with 50 tags each is well within the bound.
    const patterns = Array.from({ length: 1000 }, (_, i) => ({
      pattern_name: `P${i}`,
      pattern_type: 'code',
      language: 'go',
      tags: Array.from({ length: 50 }, (_, t) => `t${t}`),
    }));
    const batch = decode('pattern.insert', { operation: 'batch_insert', patterns });
    expect(batch).toMatchObject({ ok: true });
    expect(batch.ok && batch.elements).toBeLessThan(MAX_JSON_ELEMENTS);
  });

  it('counts JSON depth outside strings only', () => {
    expect(jsonDepth('{"a":"[[[[[[","b":[{"c":1}]}')).toBe(3);
  });
});

describe('header decoders', () => {
  it('reads Spring 4-byte and NestJS decimal reply partitions', () => {
    expect(readReplyPartition(Buffer.from([0, 0, 0, 2]))).toEqual({ ok: true, value: 2 });
    expect(readReplyPartition(Buffer.from('2'))).toEqual({ ok: true, value: 2 });
    expect(readReplyPartition(Buffer.from('1234'))).toEqual({ ok: true, value: 1234 });
    expect(readReplyPartition(undefined)).toEqual({ ok: true, value: undefined });
    expect(readReplyPartition(Buffer.from([1, 2, 3])).ok).toBe(false);
    expect(readReplyPartition(Buffer.from([0xff, 0xff, 0xff, 0xff])).ok).toBe(false);
  });

  it('refuses internal, dead-letter and illegal reply topics', () => {
    expect(readReplyTopic(Buffer.from('replies.v1'))).toEqual({ ok: true, value: 'replies.v1' });
    expect(readReplyTopic(Buffer.from('__consumer_offsets'))).toMatchObject({ ok: false });
    expect(readReplyTopic(Buffer.from('pattern.insert.dlq'))).toMatchObject({ ok: false });
    expect(readReplyTopic(Buffer.from('bad topic!'))).toMatchObject({ ok: false });
    expect(readReplyTopic(Buffer.alloc(300, 'a'))).toMatchObject({ ok: false });
  });

  it('bounds correlation ids', () => {
    expect(readCorrelationHeader(Buffer.alloc(16, 7))).toMatchObject({ ok: true });
    expect(readCorrelationHeader(Buffer.alloc(5000))).toMatchObject({ ok: false });
  });
});

describe('TopicNames', () => {
  it('prefixes every name and looks them up', () => {
    const names = new TopicNames('staging.');
    expect(names.request('pattern.usage')).toBe('staging.pattern.usage');
    expect(names.result('pattern.search.request')).toBe('staging.pattern.search.result');
    expect(names.dlq('pattern.insert')).toBe('staging.pattern.insert.dlq');
    expect(names.all()).toHaveLength(12);
    expect(names.lookup('staging.pattern.usage.dlq')).toEqual({
      name: 'staging.pattern.usage.dlq',
      role: 'dlq',
      logical: 'pattern.usage',
    });
    expect(names.lookup('pattern.usage')).toBeUndefined();
  });
});

// The seed's ModelContractEffect serialised every field of its node's contract, with its defaults for
// the ones a call left out (README "Coming from the Python storage layer").
describe("the seed's serialised contract", () => {
  it.each([
    ['pattern.usage', { operation: 'update_stats', pattern_id: ID, usage_data: {}, relationship_data: {} }],
    [
      'pattern.usage',
      { operation: 'record_usage', pattern_id: ID, usage_data: { success: true }, relationship_data: {} },
    ],
    [
      'pattern.search.request',
      { operation: 'get_by_id', pattern_id: ID, filters: {}, search_query: null, limit: 10, offset: 0 },
    ],
    ['pattern.insert', { operation: 'delete', pattern_id: ID, data: {}, patterns: [] }],
    [
      'pattern.analytics.compute',
      { operation: 'compute_analytics', pattern_id: null, period_start: null, aggregate_by: 'day' },
    ],
  ] as const)('accepts the defaults of fields %s does not use (%j)', (topic, body) => {
    const r = decode(topic, { ...body, correlation_id: ID });
    expect(errorOf(r)).toBeUndefined();
  });

  it.each([
    [
      { operation: 'get_by_id', pattern_id: ID, limit: 5 },
      'limit: is not used by operation "get_by_id" (send null, 10 or leave it out)',
    ],
    [
      { operation: 'get_by_id', pattern_id: ID, filters: { language: 'go' } },
      'filters: is not used by operation "get_by_id" (send null, {} or leave it out)',
    ],
    [
      { operation: 'get_top', search_query: 'x' },
      'search_query: is not used by operation "get_top" (send null or leave it out)',
    ],
  ])('refuses other values of unused fields by name (%j)', (body, message) => {
    expect(errorOf(decode('pattern.search.request', body))?.message).toBe(message);
  });

  it('still refuses unknown fields', () => {
    expect(
      errorOf(decode('pattern.search.request', { operation: 'get_by_id', pattern_id: ID, foo: {} }))?.message,
    ).toBe('unknown field "foo"');
  });

  it('names ten unknown fields and counts the rest: the error stays small, however many are sent', () => {
    const body: Record<string, unknown> = { operation: 'get_by_id', pattern_id: ID };
    for (let i = 0; i < 48_000; i++) body[`k${i}`] = 1;
    const error = errorOf(decode('pattern.search.request', body));
    expect(error?.message).toBe(
      `unknown fields ${Array.from({ length: 10 }, (_, i) => `"k${i}"`).join(', ')} and 47990 more`,
    );
    expect(JSON.stringify(error).length).toBeLessThan(1_000);
  });

  it('refuses a period longer than 100 years, naming period_end', () => {
    const period = (period_start: string, period_end: string) =>
      decode('pattern.analytics.compute', { operation: 'compute_analytics', period_start, period_end });
    expect(errorOf(period('0001-01-01T00:00:00Z', '9999-12-31T23:59:59Z'))?.message).toBe(
      'period_end: must be at most 36525 days (100 years) after period_start',
    );
    expect(period('1950-01-01T00:00:00Z', '2050-01-01T00:00:00Z').ok).toBe(true);
  });

  it.each(['search', 'filter', 'get_top', 'get_by_type', 'get_related'])(
    'refuses a page deeper than 10000 results (%s), naming offset',
    (operation) => {
      const page = (offset: number) =>
        decode('pattern.search.request', {
          operation,
          search_query: operation === 'search' ? 'pooled config' : null,
          pattern_id: operation === 'get_related' ? ID : null,
          filters: operation === 'get_by_type' ? { pattern_type: 'singleton' } : null,
          offset,
        });
      expect(errorOf(page(10_001))?.message).toBe(
        'offset: must be at most 10000: a deeper page ranks or sorts every result before it; narrow the ' +
          'query or the filters instead',
      );
      expect(page(10_000).ok).toBe(true);
    },
  );

  it('refuses an instant that an offset carries out of the years 0001 to 9999', () => {
    const usedAt = (used_at: string) =>
      decode('pattern.usage', { operation: 'record_usage', pattern_id: ID, usage_data: { used_at } });
    const refusal =
      'must be an instant from 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999Z, its UTC offset applied';
    for (const v of ['9999-12-31T23:59:59-15:59', '0001-01-01T00:00:00+15:59', '0001-01-01T00:00:00+00:01']) {
      expect(errorOf(usedAt(v))?.message, v).toContain(refusal);
    }
    for (const v of ['9999-12-31T23:59:59.999Z', '0001-01-01T00:00:00Z', '0001-01-01T00:00:00-15:59']) {
      expect(usedAt(v).ok, v).toBe(true);
    }
    // Bounds a microsecond apart are the same millisecond: refused as an empty period, as compared.
    const period = (start: string, end: string) =>
      decode('pattern.analytics.compute', {
        operation: 'compute_analytics',
        period_start: start,
        period_end: end,
      });
    expect(period('2024-01-01T00:00:00.0001Z', '2024-01-01T00:00:00.0002Z').ok).toBe(false);
    expect(period('2024-01-01T00:00:00.0004Z', '2024-01-01T00:00:01Z')).toMatchObject({
      ok: true,
      request: { period_start: '2024-01-01T00:00:00.000Z' },
    });
  });

  it('reads a naive date-time as UTC', () => {
    const r = decode('pattern.analytics.compute', {
      operation: 'compute_analytics',
      period_start: '2025-10-01T08:30:00.123456',
      period_end: '2025-10-31T08:30:00',
    });
    // A period's bounds are kept to the millisecond, as the period is computed and stored.
    expect(r.ok && r.request).toMatchObject({
      period_start: '2025-10-01T08:30:00.123Z',
      period_end: '2025-10-31T08:30:00Z',
    });
    const usage = decode('pattern.usage', {
      operation: 'record_usage',
      pattern_id: ID,
      usage_data: { used_at: '2025-10-01T08:30:00+02:00' },
    });
    // A stored time keeps what was sent, microseconds included.
    const precise = decode('pattern.usage', {
      operation: 'record_usage',
      pattern_id: ID,
      usage_data: { used_at: '2025-10-01T08:30:00.123456' },
    });
    expect(precise.ok && precise.request).toMatchObject({
      usage_data: { used_at: '2025-10-01T08:30:00.123456Z' },
    });
    // An offset is kept; success defaults to true, as in the seed.
    expect(usage.ok && usage.request).toMatchObject({
      usage_data: { used_at: '2025-10-01T08:30:00+02:00', success: true },
    });
  });
});
