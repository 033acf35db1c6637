// What the stages build from hostile bytes (issue 24), in-process: prepare never throws or loses the
// message, a long key is refused and never published, dead letters carry the original exactly (through
// the client library's own record encoder and decoder) or name what they left out, and every record says what to publish
// when it is refused.
import { describe, expect, it } from 'vitest';
import { HEADERS } from '../../src/contracts/headers.ts';
import type { ModelResult } from '../../src/contracts/results.ts';
import { TopicNames } from '../../src/contracts/topics.ts';
import {
  HEAP_BYTES_PER_HEADER,
  messageBytes,
  type InboundMessage,
  type OutboundRecord,
} from '../../src/messaging/engine/records.ts';
import { Lifecycle } from '../../src/messaging/engine/lifecycle.ts';
import { toInbound } from '../../src/messaging/kafka/inbound.ts';
import type { TopicDirectory } from '../../src/messaging/kafka/topic-directory.ts';
import { errorResult, type Nodes } from '../../src/messaging/stages/dispatch.ts';
import {
  deadLetterRecord,
  MAX_DEAD_LETTER_HEADER_VALUES,
  type OmittedHeader,
} from '../../src/messaging/stages/encode.ts';
import { unitOutput, type OutcomeOptions } from '../../src/messaging/stages/outcomes.ts';
import { MAX_REQUEST_HEADERS, prepareMessage, type Prepared } from '../../src/messaging/stages/prepare.ts';
import { checkRecord, DEFAULT_RECORD_LIMITS } from '../../src/messaging/stages/record-check.ts';
import { recordSize } from '../../src/messaging/engine/record-size.ts';
import { UnitPipeline } from '../../src/messaging/stages/unit-pipeline.ts';
import { createLogger } from '../../src/telemetry/logger.ts';
import { fetchedRecord, roundTrip } from './kafka-wire.ts';
import { headersOf } from '../support/outbound-headers.ts';

const names = new TopicNames('t.');
const b = (s: string) => Buffer.from(s);
/** A header by a name TypeScript would read as an Object method. */
const get = (headers: Record<string, unknown>, name: string): unknown => headers[name];
const insertBody = b(JSON.stringify({ data: { pattern_name: 'P', pattern_type: 'code', language: 'go' } }));

function message(
  overrides: Partial<InboundMessage> & { raw?: [string | Buffer, Buffer | null][] } = {},
): InboundMessage {
  const { raw, ...rest } = overrides;
  const fetched = toInbound(fetchedRecord(null, null, raw ?? []));
  return {
    topic: 't.pattern.insert',
    partition: 1,
    offset: '17',
    key: b('p1'),
    value: insertBody,
    headers: fetched.headers,
    wireHeaders: fetched.wireHeaders,
    timestamp: String(Date.parse('2026-12-01T10:00:00Z')),
    ...rest,
  };
}

const prepare = (m: InboundMessage) => prepareMessage(m, { names, maxMessageBytes: 1 << 20 });
const outcomeOptions: OutcomeOptions = {
  names,
  consumerGroupOf: () => 'g',
  maxResultBytes: 900_000,
  publishResults: true,
};
const success = (_p: Prepared): ModelResult => ({
  success: true,
  data: { pattern_id: 'x' },
  error: null,
  metadata: { correlation_id: null, operation: 'insert', node: 'NodePatternStorageEffect', duration_ms: 1 },
});
const answer = (p: Prepared) => (p.error ? errorResult(p, p.error) : success(p));
const output = (p: Prepared, result = answer(p)) =>
  unitOutput([p], [result], outcomeOptions, () => undefined);
const omittedOf = (r: OutboundRecord) =>
  JSON.parse(String(headersOf(r)[HEADERS.dltHeadersOmitted] ?? '[]')) as OmittedHeader[];

function pipeline(select?: () => boolean) {
  return new UnitPipeline({
    select,
    names,
    nodes: {} as Nodes,
    directory: {} as TopicDirectory,
    consumerGroupOf: () => 'g',
    maxMessageBytes: 1 << 20,
    maxResultBytes: 900_000,
    publishResults: true,
    logger: createLogger('silent'),
    lifecycle: new Lifecycle(),
  });
}

describe('prepare', () => {
  it('never throws on null, duplicate or prototype-named headers, and keeps the message whole', () => {
    const m = message({
      raw: [
        ['kafka_replyTopic', null],
        ['kafka_replyPartition', null],
        ['kafka_correlationId', null],
        ['pattern-deadline-ms', null],
        ['pattern-redrive-of', null],
        ['traceparent', null],
        ['constructor', b('x')],
        ['__proto__', b('y')],
        ['kafka_correlationId', b('c1')],
        ['kafka_correlationId', null],
      ],
    });
    const p = pipeline().prepare(m);
    expect(p.prepareFailure).toBeUndefined();
    expect(p.message).toBe(m);
    expect(p.error).toBeUndefined();
    expect(p.request?.operation).toBe('insert');
    expect(p.reply).toEqual({ topic: 't.pattern.insert.result' });
  });

  it('keeps the message whole if preparing it ever throws, so its dead letter still carries it', () => {
    const m = message({ raw: [['x-h', b('v')]] });
    const p = pipeline(() => {
      throw new TypeError('a bug');
    }).prepare(m);
    expect(p.prepareFailure).toBeInstanceOf(TypeError);
    expect(p.message).toBe(m);
    const view = {
      id: 1,
      lane: 'writes',
      topic: m.topic,
      partition: 1,
      messages: [m],
      items: [],
      batched: false,
      attempt: 5,
      startedAt: 0,
    };
    const out = pipeline().giveUp(view, [p], {
      kind: 'permanent',
      errorClass: 'TypeError',
      reason: 'a bug',
    });
    const dead = out.records.find((r) => r.topic === 't.pattern.insert.dlq');
    expect(dead?.value).toEqual(insertBody);
    expect(headersOf(dead as OutboundRecord)['x-h']).toEqual(b('v'));
  });

  it('ignores a malformed pattern-deadline-ms on a write, and refuses it by name on a read', () => {
    const deadline: [string, Buffer][] = [['pattern-deadline-ms', b('soon')]];
    const write = prepare(message({ raw: deadline }));
    expect(write.error).toBeUndefined();
    expect(write.request?.operation).toBe('insert');
    const read = prepare(
      message({ topic: 't.pattern.search.request', value: b('{"operation":"get_top"}'), raw: deadline }),
    );
    expect(read.error).toMatchObject({
      code: 'VALIDATION_ERROR',
      message: expect.stringContaining('pattern-deadline-ms') as unknown,
    });
    expect(read.request).toBeUndefined();
  });
});

describe('headers', () => {
  it('count in what a message holds, and more than MAX_REQUEST_HEADERS are refused by name', () => {
    const empty = (n: number): [string, Buffer | null][] => Array.from({ length: n }, () => ['a', null]);
    const plain = prepare(message());
    const held = prepare(message({ raw: empty(MAX_REQUEST_HEADERS) }));
    expect(held.error).toBeUndefined();
    expect(held.request?.operation).toBe('insert');
    // Uncounted, sixty messages of 45,000 empty headers ran a 128 MB heap out.
    expect(held.memoryBytes - plain.memoryBytes).toBe(MAX_REQUEST_HEADERS * (1 + HEAP_BYTES_PER_HEADER));
    const refused = prepare(message({ raw: empty(45_000) }));
    expect(refused.error).toMatchObject({
      code: 'VALIDATION_ERROR',
      message: expect.stringMatching(/has 45000 headers; at most 4096 are accepted/) as unknown,
      details: { field: 'headers', headers: 45_000, max_headers: 4_096 },
    });
    expect(refused.request).toBeUndefined();
    expect(refused.memoryBytes).toBeGreaterThan(45_000 * HEAP_BYTES_PER_HEADER);
    // Without the wire's list (a test fake, a replay's own message), the map is counted.
    const { wireHeaders: _wire, ...mapped } = message({
      raw: [
        ['x', b('12')],
        ['x', null],
        ['y', b('3')],
      ],
    });
    expect(messageBytes(mapped) - messageBytes(message())).toBe(3 * HEAP_BYTES_PER_HEADER + 3 + 3);
  });
});

describe('a key above WORKER_MAX_KEY_BYTES', () => {
  it('is refused by name before anything is applied, and never published or used as ordering key', () => {
    const key = Buffer.alloc(900_000, 0x6b);
    const p = prepareMessage(message({ key }), { names, maxMessageBytes: 1 << 20, maxKeyBytes: 256 });
    expect(p.error).toMatchObject({
      code: 'VALIDATION_ERROR',
      message: expect.stringMatching(/key is 900000 bytes; at most 256/) as unknown,
      details: { field: 'key', key_bytes: 900_000, max_key_bytes: 256 },
    });
    expect(p.request).toBeUndefined();
    expect(p.key).toBe('');

    const { records } = output(p);
    expect(records.map((r) => [r.topic, r.key])).toEqual([
      ['t.pattern.insert.result', null],
      ['t.pattern.insert.dlq', null],
    ]);
    const dead = records[1] as OutboundRecord;
    expect(String(headersOf(dead)[HEADERS.dltKeyOmittedBytes])).toBe('900000');
    expect(dead.value).toEqual(insertBody);
    for (const r of records) expect(checkRecord(r)).toBeUndefined();
    // A key at the bound is kept.
    const at = prepareMessage(message({ key: Buffer.alloc(256, 0x6b) }), { names, maxMessageBytes: 1 << 20 });
    expect(at.error).toBeUndefined();
    expect(output(at).records[0]?.key).toHaveLength(256);
  });
});

describe('a record timestamp that is not a time', () => {
  // A CreateTime topic keeps what the producer sent; Kafka 4.4 stores -9e18 as it came.
  it('is refused by name before anything is applied, and dead-lettered with its own timestamp', () => {
    for (const timestamp of ['-9000000000000000000', '-1', '253402300800000', '9000000000000000']) {
      const p = prepare(message({ timestamp }));
      expect(p.request).toBeUndefined();
      expect(p.error).toMatchObject({
        code: 'VALIDATION_ERROR',
        message: expect.stringMatching(
          new RegExp(`timestamp is ${timestamp}, not a time from 1970 to 9999.*LogAppendTime`),
        ) as unknown,
        details: { field: 'timestamp', timestamp },
      });
      const [result, dead] = output(p).records;
      expect(result?.topic).toBe('t.pattern.insert.result');
      expect(dead?.topic).toBe('t.pattern.insert.dlq');
      expect(dead?.value).toEqual(insertBody);
    }
    // The first and last milliseconds are times.
    for (const timestamp of ['0', '253402300799999'])
      expect(prepare(message({ timestamp })).error).toBeUndefined();
  });
});

describe('dead letters', () => {
  const raw: [string | Buffer, Buffer | null][] = [
    ['x-late', b('first on the wire')],
    ['0', b('a name JavaScript orders first')],
    [Buffer.from([0xc3, 0x28]), b('a name that is not UTF-8')],
    ['', b('a header without a name')],
    ['constructor', b('c')],
    ['toString', b('t')],
    ['__proto__', b('p')],
    ['x-dup', b('1')],
    ['x-dup', b('2')],
    ['x-null', null],
    ['x-dup-null', b('kept')],
    ['x-dup-null', null],
    [HEADERS.dltExceptionFqcn, b('forged')],
  ];
  const refused = () =>
    prepare(
      message({ value: b('not json'), raw: [...raw, ['kafka_replyTopic', b('other.tenant.results')]] }),
    );

  it('carry the original key, value and headers exactly through the wire codec: order, repeats, headers without a value', () => {
    const p = refused();
    const { records } = output(p);
    const dead = records.find((r) => r.topic === 't.pattern.insert.dlq') as OutboundRecord;
    expect(checkRecord(dead)).toBeUndefined();
    const back = roundTrip(dead);
    const { headers } = toInbound(back);
    expect(back.key).toEqual(b('p1'));
    expect(back.value).toEqual(b('not json'));
    // Every header of the original, in its order, then the dead letter's own (Spring reads the last).
    const original = [...raw, ['kafka_replyTopic', b('other.tenant.results')] as const];
    expect(back.headers.slice(0, original.length)).toEqual(
      // A name that is not UTF-8 is carried as Java reads it (U+FFFD for the bad byte).
      original.map(([name, value]) => [Buffer.from(String(name)), value]),
    );
    expect(back.headers.slice(original.length).map(([name]) => String(name))).toEqual([
      'kafka_dlt-original-topic',
      'kafka_dlt-original-partition',
      'kafka_dlt-original-offset',
      'kafka_dlt-original-timestamp',
      'kafka_dlt-original-timestamp-type',
      'kafka_dlt-original-consumer-group',
      'kafka_dlt-exception-fqcn',
      'kafka_dlt-exception-message',
      'kafka_dlt-original-headers-omitted',
    ]);
    expect(get(headers, 'constructor')).toEqual(b('c'));
    expect(headers['x-null']).toBeNull();
    // The original's own value for a dead-letter header stays, first; the dead letter's comes last.
    expect(headers[HEADERS.dltExceptionFqcn]).toEqual([b('forged'), b('VALIDATION_ERROR')]);
    // Carried, and named with the bytes it had: nothing else was changed or left out.
    expect(omittedOf(dead)).toEqual([
      { name: '\ufffd(', reason: 'name not UTF-8', bytes: 38, name_hex: 'c328' },
    ]);
  });

  it('fit a record: the value is kept before large headers, and whatever is left out is named with its size', () => {
    const value = Buffer.alloc(900_000, 0x61);
    const big = Buffer.alloc(200_000, 0x62);
    const dead = deadLetterRecord({
      topic: 't.pattern.insert.dlq',
      request: message({
        value,
        raw: [
          ['x-big', big],
          ['x-small', b('s')],
          [`n${'a'.repeat(300)}`, big],
        ],
      }),
      error: { code: 'VALIDATION_ERROR', message: 'bad' },
      consumerGroup: 'g',
    });
    expect(recordSize(dead)).toBeLessThanOrEqual(DEFAULT_RECORD_LIMITS.maxRecordBytes);
    expect(checkRecord(dead)).toBeUndefined();
    expect(dead.value).toBe(value);
    expect(headersOf(dead)['x-small']).toEqual(b('s'));
    expect(headersOf(dead)['x-big']).toBeUndefined();
    expect(omittedOf(dead)).toEqual([
      { name: 'x-big', reason: 'too large', bytes: 200_015 },
      { name: `n${'a'.repeat(127)}`, name_bytes: 301, reason: 'too large', bytes: 200_311 },
    ]);

    const huge = deadLetterRecord({
      topic: 't.pattern.insert.dlq',
      request: message({ value: Buffer.alloc(1_100_000), raw: [['x-small', b('s')]] }),
      error: { code: 'PAYLOAD_TOO_LARGE', message: 'too large' },
      consumerGroup: 'g',
    });
    expect(huge.value).toBeNull();
    expect(String(headersOf(huge)[HEADERS.dltValueOmittedBytes])).toBe('1100000');
    expect(headersOf(huge)['x-small']).toEqual(b('s'));
  });

  it('carry at most MAX_DEAD_LETTER_HEADER_VALUES header values, naming the rest', () => {
    const wire = Array.from({ length: 10_000 }, (_, i): [string, Buffer] => [`h${i}`, b('v')]);
    const started = performance.now();
    const dead = deadLetterRecord({
      topic: 't.pattern.insert.dlq',
      request: message({ raw: wire }),
      error: { code: 'VALIDATION_ERROR', message: 'bad' },
      consumerGroup: 'g',
    });
    const back = roundTrip(dead);
    expect(performance.now() - started).toBeLessThan(5_000);
    expect(Object.keys(toInbound(back).headers).filter((n) => n.startsWith('h'))).toHaveLength(
      MAX_DEAD_LETTER_HEADER_VALUES,
    );
    const omitted = omittedOf(dead) as (OmittedHeader | { more: number })[];
    expect(omitted[0]).toEqual({
      name: `h${MAX_DEAD_LETTER_HEADER_VALUES}`,
      reason: 'too many headers',
      bytes: 16,
    });
    expect(omitted.at(-1)).toEqual({ more: expect.any(Number) as unknown });
    expect(Buffer.byteLength(String(headersOf(dead)[HEADERS.dltHeadersOmitted]))).toBeLessThanOrEqual(
      8 * 1024,
    );
  });

  it('that are refused are replaced by a bare one, and that by nothing', () => {
    const dead = output(refused()).records[1] as OutboundRecord;
    const [bare, ...rest] = dead.ifRefused?.('not authorized on t.pattern.insert.dlq') ?? [];
    expect(rest).toEqual([]);
    expect(bare?.value).toBeNull();
    expect(bare?.key).toEqual(b('p1'));
    const bareHeaders = headersOf(bare as OutboundRecord);
    expect(String(bareHeaders[HEADERS.dltValueOmittedBytes])).toBe('8');
    expect(get(bareHeaders, 'constructor')).toBeUndefined();
    expect(String(bareHeaders[HEADERS.dltExceptionFqcn])).toBe('VALIDATION_ERROR');
    expect(omittedOf(bare as OutboundRecord).map((o) => [o.name, o.reason])).toContainEqual([
      '__proto__',
      'dead letter refused',
    ]);
    expect(bare?.ifRefused?.('still refused')).toEqual([]);
  });
});

describe('a refused result', () => {
  const reply = '.pattern.reply';
  it('becomes an error result on the default result topic, never the reply path, and a dead letter', () => {
    const p = prepare(
      message({
        raw: [
          ['kafka_replyTopic', b(`t${reply}`)],
          ['kafka_replyPartition', b('2')],
        ],
      }),
    );
    expect(p.reply).toEqual({ topic: `t${reply}`, partition: 2 });
    const [result] = output(p).records;
    expect(result?.topic).toBe(`t${reply}`);
    const replaced = result?.ifRefused?.('Not authorized to access topics: [t.pattern.reply]') ?? [];
    expect(replaced.map((r) => [r.topic, r.partition])).toEqual([
      ['t.pattern.insert.result', undefined],
      ['t.pattern.insert.dlq', undefined],
    ]);
    const error = (JSON.parse(String(replaced[0]?.value)) as ModelResult).error;
    expect(error).toMatchObject({
      code: 'VALIDATION_ERROR',
      message: expect.stringMatching(
        /could not be published to "t\.pattern\.reply" \(kafka_replyTopic\).*succeeded/,
      ) as unknown,
      details: { refused_topic: 't.pattern.reply', request_succeeded: true },
    });
    expect(String(headersOf(replaced[1] as OutboundRecord)[HEADERS.dltExceptionMessage])).toContain(
      'could not be published',
    );
    expect(replaced[0]?.ifRefused?.('again')).toEqual([]);
    const broker = result?.ifRefused?.(
      'KafkaJSProtocolError: The request included a message larger than the max message size the server will accept',
    );
    expect((JSON.parse(String(broker?.[0]?.value)) as ModelResult).error?.code).toBe('PAYLOAD_TOO_LARGE');
  });

  it('says PAYLOAD_TOO_LARGE for a size refusal, and adds no second dead letter for a dead-lettered message', () => {
    const p = prepare(message({ value: b('{') }));
    const { records } = output(p);
    expect(records.map((r) => r.topic)).toEqual(['t.pattern.insert.result', 't.pattern.insert.dlq']);
    const replaced = records[0]?.ifRefused?.(
      'it is 2000000 bytes, more than the 1032192 bytes a record may be (too large)',
    );
    expect(replaced?.map((r) => r.topic)).toEqual(['t.pattern.insert.result']);
    const error = (JSON.parse(String(replaced?.[0]?.value)) as ModelResult).error;
    expect(error).toMatchObject({
      code: 'PAYLOAD_TOO_LARGE',
      details: { request_succeeded: false, request_error_code: 'VALIDATION_ERROR' },
    });
  });

  it('does not echo a traceparent header that is not one (900 KB), so the result stays sendable', () => {
    const p = prepare(message({ raw: [['traceparent', Buffer.alloc(900_000, 0x30)]] }));
    const [result] = output(p).records;
    expect(headersOf(result as OutboundRecord).traceparent).toBeUndefined();
    expect(checkRecord(result as OutboundRecord)).toBeUndefined();
    const ok = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    const traced = output(prepare(message({ raw: [['traceparent', b(ok)]] }))).records[0];
    expect(headersOf(traced as OutboundRecord).traceparent).toBe(ok);
    // Short, but not a traceparent: a terminal escape was echoed to the reply's consumers as written.
    for (const bytes of [
      `\u001b]0;owned\u0007${'A'.repeat(200)}`,
      `${ok}\n`,
      ok.toUpperCase(),
      '00-1-2-01',
      `ff${ok.slice(2)}`,
      `00-${'0'.repeat(32)}-b7ad6b7169203331-01`,
      `00-0af7651916cd43dd8448eb211c80319c-${'0'.repeat(16)}-01`,
      `${ok}-00`,
    ]) {
      const echoed = output(prepare(message({ raw: [['traceparent', b(bytes)]] }))).records[0];
      expect(headersOf(echoed as OutboundRecord).traceparent, JSON.stringify(bytes)).toBeUndefined();
    }
  });

  it('is caught before it is queued when its whole record, not only its value, is too large', () => {
    const p = prepare(message());
    const result = success(p);
    result.data = { blob: 'x'.repeat(899_000) };
    // A value under WORKER_MAX_RESULT_BYTES whose headers take it over the record limit.
    p.correlationHeader = Buffer.alloc(1000);
    const limits = { ...DEFAULT_RECORD_LIMITS, maxRecordBytes: 899_500 };
    const { records } = unitOutput([p], [result], { ...outcomeOptions, limits }, () => undefined);
    expect((JSON.parse(String(records[0]?.value)) as ModelResult).error?.code).toBe('PAYLOAD_TOO_LARGE');
  });
});
