// Hostile readers, in-process: anyone who can write to a topic chooses every key, header name and value,
// value and timestamp the worker and the operator tools read. Each pure function that reads those bytes
// (header and identity readers, the request decoder, prepare, the dead-letter readers and writers, the
// replay tie rank, trace context extraction, the bounded batch reader, PatternClient's reply handling) is
// fed arbitrary ones here as fast-check properties: none may throw, and each returns something
// well-formed (a throw stops an operator command, or stalls a partition of the worker).
import { batchClassOf } from '../../src/contracts/operations.ts';
import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { createRecordsBatch, Reader, type CompressionAlgorithmValue } from '@platformatic/kafka';
import { propagation, trace } from '@opentelemetry/api';
import { CompositePropagator, W3CBaggagePropagator, W3CTraceContextPropagator } from '@opentelemetry/core';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ERROR_CODES, type ModelError } from '../../src/contracts/errors.ts';
import { decodeRequest, jsonDepth, MAX_JSON_DEPTH } from '../../src/contracts/decode.ts';
import {
  emptyHeaders,
  headerBytes,
  headerValues,
  HEADERS,
  MAX_HEADER_ID_BYTES,
  MAX_TOPIC_NAME,
  readCorrelationHeader,
  readDeadline,
  readReplyPartition,
  readReplyTopic,
  type HeaderScalar,
  type HeaderValue,
  type MessageHeaders,
} from '../../src/contracts/headers.ts';
import {
  identitiesOfCorrelationId,
  messageIdentity,
  readCoordinates,
  identify,
} from '../../src/contracts/identity.ts';
import {
  ALL_OPERATIONS,
  REQUEST_FIELDS,
  TOPIC_SPECS,
  topicOfOperation,
} from '../../src/contracts/operations.ts';
import { modelResultSchema } from '../../src/contracts/results.ts';
import { isTimeMs, MAX_TIME_MS } from '../../src/contracts/time.ts';
import { REQUEST_TOPICS, TopicNames } from '../../src/contracts/topics.ts';
import { PatternClient } from '../../src/client/pattern-client.ts';
import {
  headerEntries,
  type InboundMessage,
  type OutboundRecord,
} from '../../src/messaging/engine/records.ts';
import {
  BatchTooLargeError,
  CODECS,
  decompressBounded,
  lz4Bound,
  readBatches,
  snappyBound,
} from '../../src/messaging/kafka/bounded-fetch.ts';
import { headerMap, toInbound } from '../../src/messaging/kafka/inbound.ts';
import {
  countByCode,
  decodeDeadLetter,
  describeDeadLetter,
  matchesFilter,
  redriveRecord,
} from '../../src/messaging/operations/dead-letters.ts';
import { deadLetterVerdict, resultVerdict } from '../../src/messaging/operations/live-outcomes.ts';
import { mergeByTimestamp, writeTieRank } from '../../src/messaging/operations/replay-merge.ts';
import { errorResult } from '../../src/messaging/stages/dispatch.ts';
import { deadLetterRecord, originalHeaders, readBigEndian } from '../../src/messaging/stages/encode.ts';
import { unitOutput } from '../../src/messaging/stages/outcomes.ts';
import { pastDeadline, prepareMessage, type PrepareOptions } from '../../src/messaging/stages/prepare.ts';
import { checkRecord, DEFAULT_MAX_KEY_BYTES } from '../../src/messaging/stages/record-check.ts';
import { ReplyPolicy } from '../../src/messaging/stages/reply-policy.ts';
import { extractContext, startBatchSpan, startConsumerSpan } from '../../src/telemetry/tracing.ts';

// PatternClient without Kafka: its reply consumer and send queue are stand-ins, and the test hands replies
// to the client's own reply handler.
const replies = vi.hoisted(() => ({ onReply: undefined as ((m: InboundMessage) => void) | undefined }));
vi.mock('../../src/messaging/kafka/reply-consumer.ts', () => ({
  ReplyConsumer: class {
    readonly topic: string;
    readonly partition = 0;
    constructor(options: { topic: string; onReply: (m: InboundMessage) => void }) {
      this.topic = options.topic;
      replies.onReply = options.onReply;
    }
    start(): Promise<void> {
      return Promise.resolve();
    }
    stop(): Promise<void> {
      return Promise.resolve();
    }
  },
}));
vi.mock('../../src/messaging/kafka/send-queue.ts', () => ({
  SendQueue: class {
    connect(): Promise<void> {
      return Promise.resolve();
    }
    enqueue(): Promise<void> {
      return Promise.resolve();
    }
    close(): Promise<void> {
      return Promise.resolve();
    }
  },
}));

// ---------------------------------------------------------------------------------------------------------
// What a producer may send.

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const int64 = fc.bigInt({ min: INT64_MIN, max: INT64_MAX });
const int32Bytes = fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }).map((n) => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
});
const int64Bytes = int64.map((n) => {
  const b = Buffer.alloc(8);
  b.writeBigInt64BE(n);
  return b;
});
const randomBytes = (maxLength: number) => fc.uint8Array({ maxLength }).map((b) => Buffer.from(b));
const decimal = fc.oneof(int64.map(String), fc.nat().map(String), fc.stringMatching(/^\d{0,20}$/));
const topicLike = fc.oneof(
  fc.constantFrom(
    'pattern.reply',
    'pattern.insert',
    'pattern.insert.dlq',
    'pattern.usage.result',
    't.pattern.usage',
    't.pattern.reply',
    '__consumer_offsets',
    '.',
    '..',
    'x'.repeat(MAX_TOPIC_NAME + 1),
    'a/b',
    'tenant two',
  ),
  fc.stringMatching(/^[A-Za-z0-9._-]{0,20}$/),
);
const coordinatesLike = fc
  .tuple(topicLike, fc.oneof(fc.nat(), fc.integer()), int64)
  .map(([t, p, o]) => `${t}/${p}/${o}`);
const uuidBytes = fc.uuid().map((u) => Buffer.from(u.replaceAll('-', ''), 'hex'));
const headerText = fc.oneof(
  decimal,
  topicLike,
  coordinatesLike,
  fc.uuid(),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.constantFrom(
    'Infinity',
    'NaN',
    '-1',
    '1.5',
    '1e3',
    '0x10',
    ' 7 ',
    '[]',
    '{}',
    'null',
    '[{"name":"x-a","reason":"too large","bytes":9}]',
    '[{"name":"x-b","reason":"null value","values":1}]',
    '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
    'a=b,__proto__=x;meta,%E0%A4%A=1,constructor=y',
  ),
);
const headerScalar: fc.Arbitrary<HeaderScalar> = fc.oneof(
  headerText.map((s) => Buffer.from(s, 'utf8')),
  headerText,
  randomBytes(40),
  int32Bytes,
  int64Bytes,
  uuidBytes,
  fc.integer({ min: 0, max: 1500 }).map((n) => Buffer.alloc(n, 0x61)),
  fc.constant(null),
);
const headerValue: fc.Arbitrary<HeaderValue> = fc.oneof(
  { weight: 6, arbitrary: headerScalar },
  { weight: 2, arbitrary: fc.array(headerScalar, { maxLength: 4 }) },
  { weight: 1, arbitrary: fc.constant(undefined) },
);
const PROTOTYPE_NAMES = ['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf'];
const headerName = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...Object.values(HEADERS), ...PROTOTYPE_NAMES, 'baggage', '') },
  { weight: 1, arbitrary: fc.string({ maxLength: 20 }) },
);

/** A header map as the fetcher makes it (no prototype), a value per name. */
function headersOf(entries: readonly (readonly [string, HeaderValue])[]): MessageHeaders {
  const headers = emptyHeaders<HeaderValue>();
  for (const [name, value] of entries) headers[name] = value;
  return headers;
}
const headers = (names: fc.Arbitrary<string> = headerName) =>
  fc.array(fc.tuple(names, headerValue), { maxLength: 8 }).map(headersOf);

const json = (v: unknown) => Buffer.from(JSON.stringify(v), 'utf8');
const id = fc.uuid();
const insertData = fc.record(
  {
    pattern_name: fc.constantFrom('n', 'name', ' '),
    pattern_type: fc.constant('t'),
    language: fc.constant('ts'),
    pattern_id: fc.option(id, { nil: undefined }),
    parent_pattern_id: fc.option(id, { nil: null }),
  },
  { requiredKeys: ['pattern_name', 'pattern_type', 'language'] },
);
/** Requests the schemas accept (or nearly), so that prepare gets past decoding too. */
const requestLike: fc.Arbitrary<Record<string, unknown>> = fc
  .tuple(
    fc.oneof(
      fc.record({ operation: fc.constant('insert'), data: insertData }),
      fc.record({
        operation: fc.constant('update'),
        pattern_id: id,
        data: fc.constant({ description: 'd' }),
      }),
      fc.record({ operation: fc.constant('delete'), pattern_id: id }),
      fc.record({
        operation: fc.constant('batch_insert'),
        patterns: fc.array(insertData, { minLength: 1, maxLength: 3 }),
      }),
      fc.record({ operation: fc.constant('search'), search_query: fc.constantFrom('q', 'x y', ' ') }),
      fc.record({ operation: fc.constant('get_by_id'), pattern_id: id }),
      fc.record({ operation: fc.constant('get_result'), request_correlation_id: id }),
      fc.record({
        operation: fc.constant('record_usage'),
        pattern_id: id,
        usage_data: fc.constant({ success: true }),
      }),
      fc.record({
        operation: fc.constant('create_relationship'),
        relationship_data: fc
          .tuple(id, id)
          .map(([s, t]) => ({ source_pattern_id: s, target_pattern_id: t, relationship_type: 'uses' })),
      }),
      fc.record({ operation: fc.constant('compute_analytics'), pattern_id: fc.option(id, { nil: null }) }),
      fc.record({ operation: fc.constant('get_global_stats') }),
      fc.record({ operation: fc.constantFrom(...ALL_OPERATIONS, '__proto__', 'constructor', 'toString') }),
    ),
    fc.record(
      {
        correlation_id: fc.option(
          fc.oneof({ weight: 4, arbitrary: id }, { weight: 1, arbitrary: fc.string() }),
          {
            nil: null,
          },
        ),
      },
      { requiredKeys: [] },
    ),
    fc.oneof(
      { weight: 3, arbitrary: fc.constant({}) },
      {
        weight: 1,
        arbitrary: fc.dictionary(
          fc.constantFrom(...REQUEST_FIELDS, ...PROTOTYPE_NAMES, 'x'),
          fc.jsonValue({ maxDepth: 3 }),
          { maxKeys: 2 },
        ),
      },
    ),
  )
  .map(([request, correlation, extra]) => ({ ...request, ...correlation, ...extra }));
/** A value fast-check prints by a short description rather than byte by byte. */
function described<T extends object>(value: T, description: string): T {
  Object.defineProperty(value, fc.toStringMethod, { value: () => description });
  return value;
}
/** `arb` one time in `inTen` out of ten, else `none` (which it shrinks to). */
const sometimes = <T, N>(arb: fc.Arbitrary<T>, none: N, inTen = 1): fc.Arbitrary<T | N> =>
  fc.oneof({ weight: 10 - inTen, arbitrary: fc.constant(none) }, { weight: inTen, arbitrary: arb });
/** JSON nested deeper than anything reads recursively (JSON.parse does not recurse; JSON.stringify does). */
const deepJson = fc
  .tuple(fc.constantFrom(1, MAX_JSON_DEPTH, MAX_JSON_DEPTH + 1, 10_000), fc.boolean())
  .map(([depth, arrays]) => {
    const text = arrays
      ? '['.repeat(depth) + ']'.repeat(depth)
      : '{"a":'.repeat(depth) + '0' + '}'.repeat(depth);
    const shown = arrays
      ? `'['.repeat(${depth}) + ']'.repeat(${depth})`
      : `'{"a":'.repeat(${depth}) + '0' + '}'.repeat(${depth})`;
    return { text, shown };
  });
const valueBytes: fc.Arbitrary<Buffer | null> = fc.option(
  fc.oneof(
    { weight: 4, arbitrary: requestLike.map(json) },
    { weight: 2, arbitrary: fc.jsonValue().map(json) },
    { weight: 2, arbitrary: randomBytes(64) },
    { weight: 1, arbitrary: deepJson.map((d) => described(Buffer.from(d.text), `Buffer.from(${d.shown})`)) },
    {
      weight: 1,
      arbitrary: fc
        .constantFrom(
          '{"__proto__":{"operation":"delete"},"operation":"search","search_query":"q"}',
          '{"operation":"search","search_query":"q","search_query":"r"}',
          '{"constructor":{"prototype":{"polluted":true}},"operation":"get_global_stats"}',
          '',
          ' ',
          'null',
          '"\\ud800"',
          '\ufeff{}',
        )
        .map((s) => Buffer.from(s)),
    },
  ),
  { nil: null },
);
const keyBytes: fc.Arbitrary<Buffer | null> = fc.oneof(
  fc.constant(null),
  id.map((u) => Buffer.from(u)),
  randomBytes(40),
  fc.integer({ min: 0, max: 400 }).map((n) => Buffer.alloc(n, 0x6b)),
);
/** Any int64, as a producer may stamp a record on a CreateTime topic; often a real time. */
const timestamp = fc.oneof(
  { weight: 1, arbitrary: int64.map(String) },
  { weight: 3, arbitrary: fc.integer({ min: 0, max: MAX_TIME_MS }).map(String) },
);
const offset = fc.bigInt({ min: 0n, max: INT64_MAX }).map(String);
const partition = fc.nat({ max: 2 ** 31 - 1 });

const NAMES = { '': new TopicNames(''), 't.': new TopicNames('t.') };
const names = NAMES['t.'];
const requestTopic = (n: TopicNames) =>
  fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom(...n.requests()) },
    { weight: 1, arbitrary: fc.constantFrom(n.reply(), ...n.all().map((t) => t.name), 'unknown.topic') },
  );

/** Headers as clients send them (PatternClient, Spring, NestJS), each of them or not. */
const clientHeaders = (n: TopicNames): fc.Arbitrary<MessageHeaders> =>
  fc
    .record(
      {
        [HEADERS.correlationId]: fc.oneof(
          id.map((u) => Buffer.from(u)),
          uuidBytes,
        ),
        [HEADERS.replyTopic]: fc.constantFrom(
          n.reply(),
          `${n.request('pattern.insert')}.reply`,
          'other.reply',
        ),
        [HEADERS.replyPartition]: fc.oneof(
          fc.nat(11).map((p) => Buffer.from(String(p))),
          fc.nat(11).map((p) => {
            const b = Buffer.alloc(4);
            b.writeInt32BE(p);
            return b;
          }),
        ),
        [HEADERS.deadline]: fc.oneof(
          fc.integer({ min: 0, max: MAX_TIME_MS }).map((t) => Buffer.from(String(t))),
          int64Bytes,
        ),
        [HEADERS.redriveOf]: fc
          .tuple(fc.constantFrom(...n.requests()), fc.nat(3), fc.bigInt({ min: 0n, max: 2n ** 62n }))
          .map(([t, p, o]) => Buffer.from(`${t}/${p}/${o}`)),
        [HEADERS.traceparent]: fc.constant(
          Buffer.from('00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'),
        ),
      },
      { requiredKeys: [] },
    )
    .map((r) => headersOf(Object.entries(r)));

/** A value and the topic it is sent to: often a request on its operation's own topic. */
const sent = (n: TopicNames): fc.Arbitrary<{ topic: string; value: Buffer | null }> =>
  fc.oneof(
    requestLike.map((r) => {
      const home = typeof r.operation === 'string' ? topicOfOperation(r.operation) : undefined;
      return { topic: n.request(home ?? 'pattern.insert'), value: json(r) };
    }),
    fc.record({ topic: requestTopic(n), value: valueBytes }),
  );

const inbound = (n: TopicNames, hs: fc.Arbitrary<MessageHeaders> = fc.oneof(clientHeaders(n), headers())) =>
  fc
    .record({ sent: sent(n), partition, offset, key: keyBytes, headers: hs, timestamp })
    .map(({ sent: { topic, value }, ...rest }): InboundMessage => ({ topic, value, ...rest }));

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const LEGAL_TOPIC = /^[A-Za-z0-9._-]{1,249}$/;
const COORDINATES = /^[A-Za-z0-9._-]{1,249}\/\d{1,10}\/\d{1,19}$/;

function expectModelError(error: ModelError): void {
  expect(ERROR_CODES).toContain(error.code);
  expect(typeof error.message).toBe('string');
  expect(error.message.length).toBeGreaterThan(0);
  expect(() => JSON.stringify(error)).not.toThrow();
}

/** An outbound record as it comes back from the broker: its headers in order, and as a map. */
function asInbound(record: OutboundRecord, at: { offset: string; timestamp: string }): InboundMessage {
  const bytes = (v: Buffer | string) => (Buffer.isBuffer(v) ? v : Buffer.from(v, 'utf8'));
  const wire = headerEntries(record.headers).map(([name, v]): [Buffer, Buffer | null] => [
    bytes(name as Buffer | string),
    v === null ? null : bytes(v as Buffer | string),
  ]);
  return {
    topic: record.topic,
    partition: record.partition ?? 0,
    offset: at.offset,
    key: record.key === null ? null : bytes(record.key),
    value: record.value === null ? null : bytes(record.value),
    headers: headerMap(wire),
    wireHeaders: wire,
    timestamp: at.timestamp,
  };
}

/** The values of one header of an outbound record, in order. */
function outboundValues(record: OutboundRecord | undefined, name: string): (Buffer | string | null)[] {
  if (!record) return [];
  return headerEntries(record.headers)
    .filter(([n]) => String(n) === name)
    .map(([, v]) => v as Buffer | string | null);
}

// ---------------------------------------------------------------------------------------------------------

describe('header readers (contracts/headers.ts)', () => {
  it('headerValues keeps bytes, text and null in order; headerBytes reads the last as bytes', () => {
    fc.assert(
      fc.property(fc.oneof(headerValue, fc.anything()), (value) => {
        const all: unknown[] = Array.isArray(value) ? value : [value];
        expect(headerValues(value)).toEqual(
          all.filter((v) => v === null || typeof v === 'string' || Buffer.isBuffer(v)),
        );
        const last = all[all.length - 1];
        const bytes = headerBytes(value);
        if (Buffer.isBuffer(last)) expect(bytes).toBe(last);
        else if (typeof last === 'string') expect(bytes).toEqual(Buffer.from(last, 'utf8'));
        else expect(bytes).toBeUndefined();
      }),
      { numRuns: 300 },
    );
  });

  it('readReplyTopic, readReplyPartition, readCorrelationHeader and readDeadline give legal values or a reason', () => {
    fc.assert(
      fc.property(headerValue, fc.array(headerScalar, { maxLength: 3 }), (value, before) => {
        const topic = readReplyTopic(value);
        if (!topic.ok) expect(topic.reason).toMatch(/^kafka_replyTopic /);
        else if (topic.value !== undefined) {
          expect(topic.value).toMatch(LEGAL_TOPIC);
          expect(['.', '..']).not.toContain(topic.value);
          expect(topic.value.startsWith('__')).toBe(false);
          expect(topic.value.endsWith('.dlq')).toBe(false);
        }
        const replyPartition = readReplyPartition(value);
        if (!replyPartition.ok) expect(replyPartition.reason).toMatch(/^kafka_replyPartition /);
        else if (replyPartition.value !== undefined) {
          expect(Number.isInteger(replyPartition.value)).toBe(true);
          expect(replyPartition.value).toBeGreaterThanOrEqual(0);
          expect(replyPartition.value).toBeLessThanOrEqual(0x7fffffff);
        }
        const correlation = readCorrelationHeader(value);
        if (!correlation.ok) expect(correlation.reason).toMatch(/^kafka_correlationId /);
        else if (correlation.value !== undefined) {
          expect(Buffer.isBuffer(correlation.value)).toBe(true);
          expect(correlation.value.length).toBeGreaterThan(0);
          expect(correlation.value.length).toBeLessThanOrEqual(MAX_HEADER_ID_BYTES);
        }
        const deadline = readDeadline(value);
        if (!deadline.ok) expect(deadline.reason).toMatch(/^pattern-deadline-ms /);
        else if (deadline.value !== undefined) {
          expect(Number.isFinite(deadline.value)).toBe(true);
          expect(deadline.value).toBeGreaterThanOrEqual(0);
        }
        // A header sent several times reads as its last value; text reads as its UTF-8 bytes.
        if (value !== undefined && !Array.isArray(value)) {
          const repeated = [...before, value];
          expect(readReplyTopic(repeated)).toEqual(topic);
          expect(readReplyPartition(repeated)).toEqual(replyPartition);
          expect(readCorrelationHeader(repeated)).toEqual(correlation);
          expect(readDeadline(repeated)).toEqual(deadline);
        }
        if (typeof value === 'string') {
          const bytes = Buffer.from(value, 'utf8');
          expect(readReplyTopic(bytes)).toEqual(topic);
          expect(readReplyPartition(bytes)).toEqual(replyPartition);
          expect(readCorrelationHeader(bytes)).toEqual(correlation);
          expect(readDeadline(bytes)).toEqual(deadline);
        }
      }),
      { numRuns: 500 },
    );
  });

  it('readBigEndian reads 4 and 8 bytes as Spring writes them, anything else as absent', () => {
    fc.assert(
      fc.property(fc.oneof(headerScalar, fc.constant(undefined)), (value) => {
        const read = readBigEndian(value ?? undefined);
        if (Buffer.isBuffer(value) && value.length === 4) expect(read).toBe(value.readInt32BE());
        else if (Buffer.isBuffer(value) && value.length === 8) {
          expect(read).toBe(Number(value.readBigInt64BE()));
        } else expect(read).toBeUndefined();
      }),
      { numRuns: 300 },
    );
  });

  it('headerMap/toInbound: any wire headers become a map without a prototype, values in order', () => {
    const wireName = fc.oneof(
      fc.constantFrom(...PROTOTYPE_NAMES, ...Object.values(HEADERS), '').map((s) => Buffer.from(s)),
      randomBytes(8),
    );
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.option(wireName, { nil: null }), fc.option(randomBytes(8), { nil: null })), {
          maxLength: 12,
        }),
        fc.bigInt({ min: 0n, max: INT64_MAX }),
        int64,
        (wire, at, time) => {
          const map = headerMap(wire);
          expect(Object.getPrototypeOf(map)).toBeNull();
          const decoded = wire.map(([k, v]) => [k === null ? '' : k.toString('utf8'), v] as const);
          // Every name once (in the order of an object's keys: integer-like names first).
          expect(Object.keys(map).sort()).toEqual([...new Set(decoded.map(([k]) => k))].sort());
          for (const name of Object.keys(map)) {
            const sent = decoded.filter(([k]) => k === name).map(([, v]) => v);
            expect(headerValues(map[name])).toEqual(sent);
            expect(Array.isArray(map[name])).toBe(sent.length > 1);
          }
          expect(({} as Record<string, unknown>).polluted).toBeUndefined();
          const m = toInbound({
            topic: 't',
            partition: 0,
            offset: at,
            timestamp: time,
            key: null,
            value: null,
            headers: wire,
          });
          expect(m.offset).toBe(at.toString());
          expect(m.timestamp).toBe(time.toString());
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('identity readers (contracts/identity.ts)', () => {
  it('readCoordinates gives topic/partition/offset exactly, or nothing', () => {
    fc.assert(
      fc.property(
        fc.option(
          fc.oneof(
            coordinatesLike.map((s) => Buffer.from(s, 'latin1')),
            randomBytes(40),
          ),
          {
            nil: undefined,
          },
        ),
        (value) => {
          const read = readCoordinates(value);
          if (read !== undefined) {
            expect(read).toMatch(COORDINATES);
            expect(read).toBe(value?.toString('latin1'));
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it("messageIdentity never throws; a redrive's coordinates are taken only for an earlier message of the topic", () => {
    const topics = ['t.pattern.usage', 'pattern.insert'];
    fc.assert(
      fc.property(
        fc.record({
          bodyCorrelationId: fc.option(fc.oneof(id, fc.string()), { nil: undefined }),
          headerCorrelationId: fc.option(randomBytes(20), { nil: undefined }),
          topic: fc.constantFrom(...topics),
          partition: fc.nat(5),
          offset: fc.bigInt({ min: 0n, max: INT64_MAX }).map(String),
          redriveOf: fc.option(
            fc.oneof(
              fc
                .tuple(fc.constantFrom(...topics), fc.nat(5), fc.bigInt({ min: 0n, max: INT64_MAX }))
                .map(([t, p, o]) => Buffer.from(`${t}/${p}/${o}`)),
              coordinatesLike.map((s) => Buffer.from(s)),
              randomBytes(20),
            ),
            { nil: undefined },
          ),
        }),
        (input) => {
          const identity = messageIdentity(input);
          // The original named is exactly the one whose identity is taken (the worker checks that one).
          const original = identify(input).redriveOf;
          const own = `off:${input.topic}/${input.partition}/${input.offset}`;
          if (original)
            expect(identity).toBe(`off:${original.topic}/${original.partition}/${original.offset}`);
          else expect(identity === own || !identity.startsWith('off:')).toBe(true);
          if (input.bodyCorrelationId) {
            expect(identity).toBe(`cid:${input.bodyCorrelationId.toLowerCase()}`);
          } else if (input.headerCorrelationId && input.headerCorrelationId.length > 0) {
            expect(identity).toBe(`hdr:${input.headerCorrelationId.toString('base64')}`);
          } else {
            const own = `${input.topic}/${input.partition}/${input.offset}`;
            expect(identity.startsWith('off:')).toBe(true);
            const named = identity.slice(4);
            if (named !== own) {
              expect(named).toBe(readCoordinates(input.redriveOf));
              const [o, p, ...t] = named.split('/').reverse();
              expect(t.reverse().join('/')).toBe(input.topic);
              expect(Number(p) !== input.partition || BigInt(o as string) < BigInt(input.offset)).toBe(true);
            }
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('identitiesOfCorrelationId takes any text', () => {
    fc.assert(
      fc.property(fc.oneof(id, fc.string({ unit: 'binary' })), (correlationId) => {
        const identities = identitiesOfCorrelationId(correlationId);
        expect(identities.length).toBeGreaterThan(0);
        for (const identity of identities) expect(identity).toMatch(/^(cid|hdr):/);
      }),
    );
  });
});

describe('request decoding (contracts/decode.ts)', () => {
  it('decodeRequest, for every request topic, gives a request of that topic or a model error', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...REQUEST_TOPICS),
        valueBytes,
        fc.constantFrom(16, 64 * 1024),
        (topic, value, maxBytes) => {
          const decoded = decodeRequest(topic, value, { maxBytes });
          if (decoded.ok) {
            expect(TOPIC_SPECS[topic].operations as readonly string[]).toContain(decoded.request.operation);
            expect(decoded.fingerprint).toMatch(/^[A-Za-z0-9_-]{22}$/);
            expect(value?.length ?? 0).toBeLessThanOrEqual(maxBytes);
          } else {
            expectModelError(decoded.error);
            expect(['VALIDATION_ERROR', 'PAYLOAD_TOO_LARGE']).toContain(decoded.error.code);
            const issues = decoded.error.details?.issues;
            if (issues !== undefined) expect((issues as unknown[]).length).toBeLessThanOrEqual(20);
          }
        },
      ),
      { numRuns: 400 },
    );
  });

  it('jsonDepth takes any text, and measures the nesting of any JSON', () => {
    const depthOf = (v: unknown): number =>
      v !== null && typeof v === 'object'
        ? 1 + Math.max(0, ...Object.values(v as Record<string, unknown>).map(depthOf))
        : 0;
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ unit: 'binary' }),
          fc.jsonValue().map((v) => JSON.stringify(v)),
        ),
        (text) => {
          const depth = jsonDepth(text);
          expect(Number.isInteger(depth) && depth >= 0).toBe(true);
          let parsed: unknown;
          try {
            parsed = JSON.parse(text);
          } catch {
            return;
          }
          expect(depth).toBe(depthOf(parsed));
        },
      ),
      { numRuns: 300 },
    );
    expect(jsonDepth('['.repeat(MAX_JSON_DEPTH + 1))).toBe(MAX_JSON_DEPTH + 1);
  });
});

interface Setup {
  prefix: '' | 't.';
  maxMessageBytes: number;
  maxKeyBytes: number | undefined;
  patterns: string[] | undefined;
  select: boolean;
}

describe('prepare (stages/prepare.ts)', () => {
  const options: fc.Arbitrary<Setup> = fc.record({
    prefix: fc.constantFrom('' as const, 't.' as const),
    maxMessageBytes: fc.constantFrom(1024 * 1024, 16),
    maxKeyBytes: sometimes(fc.constantFrom(DEFAULT_MAX_KEY_BYTES, 4), undefined, 3),
    patterns: fc.constantFrom(undefined, ['*'], ['pattern.*', 't.*']),
    select: fc.boolean(),
  });
  const unreadable = sometimes(
    fc.record({ tooLarge: fc.boolean(), message: fc.string({ minLength: 1 }), details: fc.constant({}) }),
    undefined,
  );
  const prepared = fc
    .tuple(options, inbound(NAMES['']), inbound(NAMES['t.']), unreadable)
    .map(([o, bare, prefixed, u]): [Setup, InboundMessage] => {
      const m = o.prefix === '' ? bare : prefixed;
      return [o, u === undefined ? m : { ...m, unreadable: u }];
    });
  const prepareOptions = (o: Setup): PrepareOptions => ({
    names: NAMES[o.prefix],
    maxMessageBytes: o.maxMessageBytes,
    maxKeyBytes: o.maxKeyBytes,
    replyPolicy: new ReplyPolicy(NAMES[o.prefix], o.patterns),
    select: o.select ? (r) => r !== undefined : undefined,
  });

  it('prepareMessage never throws, whatever the key, value, headers and timestamp, and is consistent', () => {
    fc.assert(
      fc.property(prepared, fc.integer({ min: 0, max: MAX_TIME_MS }), ([o, m], now) => {
        const opts = prepareOptions(o);
        const p = prepareMessage(m, opts);
        const n = opts.names;
        expect(p.message).toBe(m);
        expect(REQUEST_TOPICS).toContain(p.logical);
        // Either a request to run, or the error that refuses it.
        expect(p.request === undefined).toBe(p.error !== undefined);
        if (p.error) expectModelError(p.error);
        if (m.unreadable) expect(p.error?.message).toBe(m.unreadable.message);
        if (p.request) {
          expect(TOPIC_SPECS[p.logical].operations as readonly string[]).toContain(p.request.operation);
          expect(isTimeMs(p.context.eventTime?.getTime() ?? NaN)).toBe(true);
          expect(m.key === null || m.key.length <= (o.maxKeyBytes ?? DEFAULT_MAX_KEY_BYTES)).toBe(true);
        }
        // The reply goes to the default result topic, or to a legal topic the policy allows.
        const defaultTopic = n.result(p.logical);
        if (p.reply.topic === defaultTopic) expect(p.reply.partition).toBeUndefined();
        else {
          const asked = readReplyTopic(m.headers[HEADERS.replyTopic]);
          expect(asked.ok && asked.value).toBe(p.reply.topic);
          expect(opts.replyPolicy?.refusal(p.reply.topic, p.logical)).toBeUndefined();
        }
        if (p.reply.partition !== undefined) {
          expect(Number.isInteger(p.reply.partition) && p.reply.partition >= 0).toBe(true);
          expect(p.reply.partition).toBeLessThanOrEqual(0x7fffffff);
        }
        if (p.correlationHeader !== undefined) {
          expect(p.correlationHeader.length).toBeGreaterThan(0);
          expect(p.correlationHeader.length).toBeLessThanOrEqual(MAX_HEADER_ID_BYTES);
        }
        if (p.correlationId !== null) expect(p.correlationId).toMatch(UUID);
        expect(p.context.identity).toMatch(/^(cid|hdr|off):./);
        expect(p.context.source).toEqual({
          topic: m.topic,
          partition: m.partition,
          offset: m.offset,
          timestamp: m.timestamp,
        });
        if (p.context.fingerprint !== undefined) expect(p.context.fingerprint).toMatch(/^[A-Za-z0-9_-]{22}$/);
        expect(['free', 'key']).toContain(p.ordering);
        const keyBound = o.maxKeyBytes ?? DEFAULT_MAX_KEY_BYTES;
        expect(p.key).toBe(m.key && m.key.length <= keyBound ? m.key.toString('latin1') : '');
        if (p.touches !== undefined) {
          expect(p.touches.length).toBeGreaterThan(0);
          for (const lock of p.touches) expect(lock.startsWith('p:')).toBe(true);
        }
        expect(p.batchWith).toBe(p.request ? batchClassOf(p.request) : undefined);
        expect(p.skip).toBe(o.select ? p.request === undefined : false);
        if (p.deadline !== undefined) {
          expect(Number.isFinite(p.deadline) && p.deadline >= 0).toBe(true);
          expect(p.context.deadline ?? p.deadline).toBe(p.deadline);
        }
        expect(typeof pastDeadline(p, now)).toBe('boolean');
      }),
      { numRuns: 400 },
    );
  });

  it('what the worker publishes for a prepared message passes its own record check, or its fallback does', () => {
    fc.assert(
      fc.property(prepared, fc.boolean(), fc.option(fc.nat(20), { nil: undefined }), ([o, m], ok, tries) => {
        const opts = prepareOptions(o);
        const p = prepareMessage(m, opts);
        const failed = errorResult(p, p.error ?? { code: 'INTERNAL', message: 'the node failed' });
        const result = p.error || !ok ? failed : { ...failed, success: true, error: null, data: {} };
        const out = unitOutput(
          [p],
          [result],
          {
            names: opts.names,
            consumerGroupOf: () => 'pattern-worker',
            maxResultBytes: 1024 * 1024,
            publishResults: true,
          },
          () => undefined,
          tries === undefined ? undefined : { attempts: tries, errorClass: 'Error' },
        );
        expect(out.records.length).toBeGreaterThan(0);
        for (const record of out.records) {
          const problem = checkRecord(record);
          if (problem === undefined) continue;
          const instead = record.ifRefused?.(problem) ?? [];
          expect(instead.length, problem).toBeGreaterThan(0);
          for (const r of instead) expect(checkRecord(r)).toBeUndefined();
        }
      }),
      { numRuns: 200 },
    );
  });
});

describe('dead letters (stages/encode.ts, operations/dead-letters.ts)', () => {
  const error = fc.record({
    code: fc.constantFrom(...ERROR_CODES),
    message: fc.string({ maxLength: 3000 }),
  }) as fc.Arbitrary<ModelError>;
  const gaveUp = fc.option(fc.record({ attempts: fc.nat(100), errorClass: fc.string({ maxLength: 40 }) }), {
    nil: undefined,
  });
  /** Originals as big as the dead letter must cut: a large value, a header of many values. */
  const original = fc
    .tuple(
      inbound(names),
      sometimes(
        fc.oneof(
          fc.constant(0).map(() =>
            described(
              Array.from({ length: 5000 }, () => Buffer.from('v')),
              "Array(5000).fill(Buffer.from('v'))",
            ),
          ),
          fc.constant(0).map(() => described(Buffer.alloc(1_100_000), 'Buffer.alloc(1_100_000)')),
        ),
        undefined,
        2,
      ),
      sometimes(
        fc.constant(0).map(() => described(Buffer.alloc(1_100_000, 0x20), 'Buffer.alloc(1_100_000, 0x20)')),
        undefined,
      ),
    )
    .map(([m, bigHeader, bigValue]): InboundMessage => {
      const hs = headersOf(Object.entries(m.headers));
      if (bigHeader !== undefined) hs['x-big'] = bigHeader;
      return { ...m, headers: hs, value: bigValue ?? m.value };
    });

  it('deadLetterRecord writes a record that passes the record check, and names its original', () => {
    fc.assert(
      fc.property(original, error, gaveUp, (m, e, g) => {
        const record = deadLetterRecord({
          topic: names.dlq('pattern.usage'),
          request: m,
          error: e,
          consumerGroup: 'pattern-worker',
          gaveUp: g,
        });
        // Nothing left out: the original's headers come first, exactly (order, repeats, null values).
        if (outboundValues(record, HEADERS.dltHeadersOmitted).length === 0) {
          const originals = originalHeaders(m);
          expect(headerEntries(record.headers).slice(0, originals.length)).toEqual(
            originals.map(([n, v]) => [n, v]),
          );
        }
        const bare = record.ifRefused?.('refused') ?? [];
        expect(bare.length).toBe(1);
        for (const r of bare) expect(checkRecord(r)).toBeUndefined();
        expect(checkRecord(record)).toBeUndefined();
        const letter = decodeDeadLetter(asInbound(record, { offset: '0', timestamp: '0' }));
        expect(letter.original.topic).toBe(m.topic);
        expect(letter.original.partition).toBe(m.partition);
        if (BigInt(m.offset) <= BigInt(Number.MAX_SAFE_INTEGER))
          expect(letter.original.offset).toBe(m.offset);
        expect(letter.code).toBe(e.code);
      }),
      { numRuns: 150 },
    );
  });

  // Dead letters as the worker writes them, then with headers anyone could have set or forged.
  const DLT_NAMES = [
    ...Object.values(HEADERS).filter((n) => n.startsWith('kafka_dlt-') || n.startsWith('pattern-redrive')),
    HEADERS.correlationId,
    HEADERS.deliveryAttempt,
  ];
  const omittedNote: fc.Arbitrary<Buffer> = fc.oneof(
    fc.jsonValue().map(json),
    fc
      .array(
        fc.record(
          {
            name: fc.jsonValue({ maxDepth: 2 }),
            reason: fc.oneof(fc.constantFrom('null value', 'too large'), fc.jsonValue()),
          },
          { requiredKeys: [] },
        ),
        { maxLength: 3 },
      )
      .map(json),
    deepJson.map((d) =>
      described(
        Buffer.from(`[{"name":${d.text},"reason":"too large"}]`),
        `Buffer.from('[{"name":' + ${d.shown} + ',"reason":"too large"}]')`,
      ),
    ),
  );
  const forgedCoordinates = fc.tuple(
    fc.constantFrom(HEADERS.dltOriginalPartition, HEADERS.dltOriginalOffset),
    fc.oneof(int32Bytes, int64Bytes),
  );
  const forgedCount = fc.tuple(
    fc.constant(HEADERS.redriveCount),
    fc.oneof(decimal, headerText).map((t) => Buffer.from(t)),
  );
  const forged = fc.oneof(
    { weight: 3, arbitrary: fc.tuple(fc.constantFrom(...DLT_NAMES), headerValue) },
    { weight: 2, arbitrary: forgedCoordinates },
    { weight: 1, arbitrary: forgedCount },
    {
      weight: 1,
      arbitrary: fc.tuple(fc.constant(HEADERS.dltHeadersOmitted), omittedNote),
    },
    { weight: 2, arbitrary: fc.tuple(headerName, headerValue) },
  );
  const deadLetter = fc
    .record({
      request: inbound(names),
      error,
      gaveUp,
      forged: fc.array(forged, { maxLength: 4 }),
      offset,
      timestamp,
      dropValue: fc.boolean(),
    })
    .map(({ request, error: e, gaveUp: g, forged: changes, offset: at, timestamp: time, dropValue }) => {
      const record = deadLetterRecord({
        topic: names.dlq('pattern.usage'),
        request,
        error: e,
        consumerGroup: 'pattern-worker',
        gaveUp: g,
      });
      const m = asInbound(record, { offset: at, timestamp: time });
      for (const [name, value] of changes) m.headers[name] = value;
      if (dropValue) m.value = null;
      return m;
    });

  it('decodeDeadLetter never throws and gives every field its type', () => {
    fc.assert(
      fc.property(fc.oneof(deadLetter, inbound(names)), (m) => {
        const letter = decodeDeadLetter(m);
        expect(letter.ref).toBe(`${m.topic}:${m.partition}:${m.offset}`);
        expect(letter.time === '' || isTimeMs(Date.parse(letter.time))).toBe(true);
        const o = letter.original;
        expect(o.topic === null || typeof o.topic === 'string').toBe(true);
        expect(o.partition === null || Number.isInteger(o.partition)).toBe(true);
        expect(o.offset === null || /^-?\d+$/.test(o.offset)).toBe(true);
        expect(o.time === null || isTimeMs(Date.parse(o.time))).toBe(true);
        for (const s of [letter.code, letter.message, letter.consumerGroup, letter.errorClass, letter.key]) {
          expect(s === null || typeof s === 'string').toBe(true);
        }
        expect(letter.attempts === null || Number.isInteger(letter.attempts)).toBe(true);
        expect(letter.correlationId === null || typeof letter.correlationId === 'string').toBe(true);
        expect(typeof letter.redriveCount).toBe('number');
        expect(() => JSON.stringify(letter)).not.toThrow();
        expect(() => deadLetterVerdict(m)).not.toThrow();
        expect(() => resultVerdict(m)).not.toThrow();
      }),
      { numRuns: 300 },
    );
  });

  it('describeDeadLetter never throws, and what it gives can be printed as JSON (patterns dlq show)', () => {
    fc.assert(
      fc.property(fc.oneof(deadLetter, inbound(names)), (m) => {
        const described = describeDeadLetter(m);
        expect(() => JSON.stringify(described, null, 2)).not.toThrow();
      }),
      { numRuns: 200 },
    );
  });

  it('describeDeadLetter shows every header that has a value, whatever its name', () => {
    fc.assert(
      fc.property(fc.oneof(deadLetter, inbound(names)), (m) => {
        const described = describeDeadLetter(m);
        const shown = Object.keys(described.headers);
        for (const name of Object.keys(m.headers)) {
          if (headerBytes(m.headers[name]) !== undefined) expect(shown).toContain(name);
        }
      }),
      { numRuns: 200 },
    );
  });

  it('matchesFilter and countByCode never throw, and a match satisfies the filter', () => {
    const filter = fc.record(
      {
        codes: fc.array(fc.constantFrom(...ERROR_CODES, ''), { maxLength: 2 }),
        since: fc.date({ noInvalidDate: true }),
        until: fc.date({ noInvalidDate: true }),
        correlationId: fc.oneof(id, fc.string({ maxLength: 4 })),
      },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(fc.array(fc.oneof(deadLetter, inbound(names)), { maxLength: 3 }), filter, (ms, f) => {
        const letters = ms.map(decodeDeadLetter);
        const counts = countByCode(letters);
        expect(Object.values(counts).reduce((a, b) => a + b, 0)).toBe(letters.length);
        for (const letter of letters) {
          if (!matchesFilter(letter, f)) continue;
          if (f.codes?.length) expect(f.codes).toContain(letter.code ?? '');
          if (f.correlationId) {
            expect(letter.correlationId?.toLowerCase()).toBe(f.correlationId.toLowerCase());
          }
          const time = Date.parse(letter.time);
          if (f.since && letter.time !== '') expect(time).toBeGreaterThanOrEqual(f.since.getTime());
          if (f.until && letter.time !== '') expect(time).toBeLessThan(f.until.getTime());
        }
      }),
      { numRuns: 200 },
    );
  });

  it('redriveRecord never throws: it skips with a reason, or sends the original back to a request topic', () => {
    fc.assert(
      fc.property(deadLetter, (m) => {
        const redrive = redriveRecord(m, names);
        if ('skip' in redrive) {
          expect(redrive.skip.length).toBeGreaterThan(0);
          return;
        }
        const { record } = redrive;
        expect(names.lookup(record.topic)?.role).toBe('request');
        expect(record.value).toBe(m.value);
        expect(record.key).toBe(m.key);
        expect(checkRecord(record)).toBeUndefined();
        for (const [raw] of headerEntries(record.headers)) {
          const name = String(raw);
          expect(name.startsWith('kafka_dlt-')).toBe(false);
          expect([HEADERS.replyTopic, HEADERS.replyPartition, HEADERS.deadline]).not.toContain(name);
        }
      }),
      { numRuns: 300 },
    );
  });

  /** What redriveRecord sends, when it does not skip (throws are the property above). */
  const redriven = (m: InboundMessage): OutboundRecord | undefined => {
    try {
      const redrive = redriveRecord(m, names);
      return 'record' in redrive ? redrive.record : undefined;
    } catch {
      return undefined;
    }
  };

  it("redriveRecord's pattern-redrive-of is coordinates the worker reads back as the message's identity", () => {
    fc.assert(
      fc.property(deadLetter, forgedCoordinates, (letter, header) => {
        const m = { ...letter, headers: headersOf([...Object.entries(letter.headers), header]) };
        const of = outboundValues(redriven(m), HEADERS.redriveOf).at(-1);
        if (of !== undefined) expect(readCoordinates(Buffer.from(String(of), 'latin1'))).toBe(String(of));
      }),
      { numRuns: 300 },
    );
  });

  it("redriveRecord's pattern-redrive-count is a whole number, one more than the dead letter's", () => {
    fc.assert(
      fc.property(deadLetter, forgedCount, (letter, header) => {
        const m = { ...letter, headers: headersOf([...Object.entries(letter.headers), header]) };
        const record = redriven(m);
        if (record === undefined) return;
        const count = String(outboundValues(record, HEADERS.redriveCount).at(-1));
        expect(count).toMatch(/^[1-9]\d*$/);
        expect(Number.isSafeInteger(Number(count))).toBe(true);
        expect(Number(count)).toBe(decodeDeadLetter(m).redriveCount + 1);
      }),
      { numRuns: 300 },
    );
  });
});

describe('replay order (operations/replay-merge.ts)', () => {
  it('writeTieRank ranks any value; mergeByTimestamp keeps every message, each partition in order', () => {
    const partitionOf = fc.tuple(
      fc.constantFrom('pattern.insert', 'pattern.usage'),
      fc.nat(2),
      fc.array(fc.tuple(valueBytes, timestamp), { maxLength: 6 }),
    );
    fc.assert(
      fc.property(
        fc.uniqueArray(partitionOf, { selector: ([t, p]) => `${t}:${p}`, maxLength: 4 }),
        (parts) => {
          const partitions = parts.map(([topic, p, sent]) => ({
            topic,
            partition: p,
            messages: sent.map(([value, time], i): InboundMessage => ({
              topic,
              partition: p,
              offset: String(i),
              key: null,
              value,
              headers: emptyHeaders(),
              timestamp: time,
            })),
          }));
          for (const p of partitions)
            for (const m of p.messages) expect([0, 1, 2]).toContain(writeTieRank(m));
          const merged = mergeByTimestamp(['pattern.insert', 'pattern.usage'], writeTieRank, partitions);
          expect(merged.length).toBe(partitions.reduce((n, p) => n + p.messages.length, 0));
          for (const p of partitions) {
            expect(merged.filter((m) => m.topic === p.topic && m.partition === p.partition)).toEqual(
              p.messages,
            );
          }
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('trace context (telemetry/tracing.ts)', () => {
  beforeAll(() => {
    propagation.setGlobalPropagator(
      new CompositePropagator({
        propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()],
      }),
    );
  });
  afterAll(() => {
    propagation.disable();
  });

  it('extractContext and the consumer spans take any traceparent, tracestate and baggage', () => {
    const traceHeaders = headers(
      fc.oneof(fc.constantFrom('traceparent', 'tracestate', 'baggage'), headerName),
    );
    const traceparent = fc
      .tuple(
        fc.constantFrom('00', 'ff', '01', 'zz'),
        fc.stringMatching(/^[0-9a-f]{32}$/),
        fc.stringMatching(/^[0-9a-f]{16}$/),
        fc.constantFrom('00', '01', 'xx'),
        fc.constantFrom('', '-extra'),
      )
      .map(([v, t, s, f, rest]) => Buffer.from(`${v}-${t}-${s}-${f}${rest}`));
    fc.assert(
      fc.property(
        traceHeaders,
        fc.option(traceparent, { nil: undefined }),
        fc.option(fc.string({ unit: 'binary', maxLength: 60 }), { nil: undefined }),
        (sent, tp, baggage) => {
          const hs = headersOf(Object.entries(sent));
          if (tp !== undefined) hs.traceparent = tp;
          if (baggage !== undefined) hs.baggage = baggage;
          const ctx = extractContext(hs);
          const span = trace.getSpanContext(ctx);
          if (span !== undefined) {
            expect(span.traceId).toMatch(/^[0-9a-f]{32}$/);
            expect(span.spanId).toMatch(/^[0-9a-f]{16}$/);
          }
          expect(() => propagation.getBaggage(ctx)?.getAllEntries()).not.toThrow();
          const m = {
            topic: 't.pattern.usage',
            partition: 0,
            offset: '1',
            key: Buffer.from('k'),
            headers: hs,
          };
          startConsumerSpan(m, 'g').end();
          startBatchSpan([m, m], 'g').end();
        },
      ),
      { numRuns: 300 },
    );
    expect(trace.getSpanContext(extractContext(emptyHeaders()))).toBeUndefined();
  });
});

interface BatchSpec {
  codec: CompressionAlgorithmValue;
  records: { key?: Buffer | undefined; value: Buffer; headers: [Buffer, Buffer][] }[];
  firstOffset: bigint;
}

describe('bounded batch reading (kafka/bounded-fetch.ts)', () => {
  const batchSpec = fc.record({
    codec: fc.constantFrom(...CODECS),
    records: fc.array(
      fc.record({
        key: fc.option(randomBytes(8), { nil: undefined }),
        value: randomBytes(32),
        headers: fc.array(fc.tuple(randomBytes(6), randomBytes(6)), { maxLength: 3 }),
      }),
      { minLength: 1, maxLength: 4 },
    ),
    firstOffset: fc.bigInt({ min: 0n, max: 2n ** 40n }),
  });
  const wireBatch = (s: BatchSpec): Buffer => {
    const bytes = Buffer.from(
      createRecordsBatch(
        s.records.map((r) => ({
          topic: 't',
          ...(r.key === undefined ? {} : { key: r.key }),
          value: r.value,
          headers: new Map(r.headers),
        })),
        { compression: s.codec },
      ).buffer,
    );
    bytes.writeBigInt64BE(s.firstOffset, 0);
    return bytes;
  };
  /** Real batches, then bytes overwritten, cut short, or nothing but noise. */
  const response = fc.oneof(
    fc
      .tuple(
        fc.array(batchSpec, { minLength: 1, maxLength: 3 }),
        fc.array(fc.tuple(fc.nat(), fc.nat(255)), { maxLength: 6 }),
        fc.option(fc.nat(), { nil: undefined }),
      )
      .map(([specs, flips, cut]) => {
        const wire = Buffer.concat(specs.map(wireBatch));
        for (const [at, byte] of flips) wire[at % wire.length] = byte;
        return cut === undefined ? wire : wire.subarray(0, cut % (wire.length + 1));
      }),
    randomBytes(200),
    fc
      .tuple(randomBytes(120), fc.integer({ min: -1, max: 200 }), fc.integer({ min: 0, max: 7 }))
      .map(([noise, length, codec]) => {
        // A batch header that says magic 2, with any length and codec, then noise.
        const wire = Buffer.concat([Buffer.alloc(61), noise]);
        wire.writeInt32BE(length, 8);
        wire.writeInt8(2, 16);
        wire.writeInt16BE(codec, 21);
        return wire;
      }),
  );

  it('readBatches never throws on any bytes: each batch is records or unreadable, within the buffer', () => {
    fc.assert(
      fc.property(
        response,
        fc.constantFrom(64, 1024 * 1024),
        fc.option(fc.bigInt({ min: -1n, max: 2n ** 40n }), { nil: undefined }),
        (wire, limit, from) => {
          const reader = Reader.from(wire);
          const budget = { limit, used: 0, maxEntries: 50 };
          const batches = readBatches(reader, budget, from);
          expect(reader.position).toBeLessThanOrEqual(wire.length);
          for (const b of batches) {
            expect(typeof b.firstOffset).toBe('bigint');
            if (b.unreadable) {
              expect(b.unreadable.message.length).toBeGreaterThan(0);
              expect(typeof b.unreadable.records).toBe('number');
              continue;
            }
            for (const r of b.records) {
              expect(r.key === null || Buffer.isBuffer(r.key)).toBe(true);
              expect(r.value === null || Buffer.isBuffer(r.value)).toBe(true);
              for (const [k, v] of r.headers) {
                expect(k === null || Buffer.isBuffer(k)).toBe(true);
                expect(v === null || Buffer.isBuffer(v)).toBe(true);
              }
            }
          }
          expect(budget.used).toBeLessThanOrEqual(2 * limit + 64 * 1024);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('decompressBounded gives at most the limit or throws an Error; lz4Bound and snappyBound say why', () => {
    const compressed = fc.tuple(fc.constantFrom(1, 2, 3, 4), randomBytes(300)).map(([codec, value]) => {
      const wire = wireBatch({
        codec: CODECS[codec] ?? 'gzip',
        records: [{ value, headers: [] }],
        firstOffset: 0n,
      });
      return [codec, wire.subarray(61)] as const;
    });
    const data = fc.oneof(
      compressed.chain(([codec, bytes]) =>
        fc
          .tuple(
            fc.array(fc.tuple(fc.nat(), fc.nat(255)), { maxLength: 4 }),
            fc.option(fc.nat(), { nil: undefined }),
          )
          .map(([flips, cut]) => {
            const copy = Buffer.from(bytes);
            for (const [at, byte] of flips) copy[at % copy.length] = byte;
            return [codec, cut === undefined ? copy : copy.subarray(0, cut % (copy.length + 1))] as const;
          }),
      ),
      fc.tuple(fc.integer({ min: 0, max: 7 }), randomBytes(64)),
    );
    const good = wireBatch({
      codec: 'lz4',
      records: [{ value: Buffer.from('ok'), headers: [] }],
      firstOffset: 0n,
    });
    const goodSnappy = wireBatch({
      codec: 'snappy',
      records: [{ value: Buffer.from('ok'), headers: [] }],
      firstOffset: 0n,
    });
    fc.assert(
      fc.property(data, fc.constantFrom(16, 64 * 1024), ([codec, bytes], limit) => {
        try {
          const out = decompressBounded(codec, bytes, limit);
          expect(out.length).toBeLessThanOrEqual(limit);
        } catch (err) {
          expect(err).toBeInstanceOf(Error);
          if (err instanceof BatchTooLargeError) expect(err.limit).toBe(limit);
        }
        for (const bound of [lz4Bound, snappyBound]) {
          try {
            const n = bound(bytes);
            expect(Number.isInteger(n) && n >= 0).toBe(true);
          } catch (err) {
            expect((err as Error).message).toMatch(/^its (lz4|snappy) /);
          }
        }
        // The decompressors are left fit for the next batch.
        expect(decompressBounded(3, good.subarray(61), 1024).length).toBeGreaterThan(0);
        expect(decompressBounded(2, goodSnappy.subarray(61), 1024).length).toBeGreaterThan(0);
      }),
      { numRuns: 300 },
    );
  });
});

describe("PatternClient's replies (client/pattern-client.ts)", () => {
  it('a reply of any bytes settles only the request it names, with a ModelResult or an Error, and never throws', async () => {
    const client = new PatternClient({ timeoutMs: 10_000, sendDeadlines: false });
    await client.connect();
    const onReply = replies.onReply;
    if (!onReply) throw new Error('the reply consumer was not made');
    const valid = fc.record({
      success: fc.boolean(),
      data: fc.jsonValue({ maxDepth: 2 }),
      error: fc.constant(null),
      metadata: fc.record({
        correlation_id: fc.option(id, { nil: null }),
        operation: fc.constant('get_by_id'),
        node: fc.constant('NodePatternQueryEffect'),
        duration_ms: fc.nat(),
      }),
    });
    try {
      await fc.assert(
        fc.asyncProperty(
          headers(),
          fc.option(
            fc.oneof(
              valid.map(json),
              valueBytes.map((v) => v ?? Buffer.alloc(0)),
            ),
            { nil: null },
          ),
          fc.constantFrom('ours', 'ours-repeated', 'ours-text', 'other'),
          async (sent, value, which) => {
            const hs = headersOf(Object.entries(sent));
            const correlationId = randomUUID();
            const abort = new AbortController();
            const call = client
              .request('get_by_id', { pattern_id: randomUUID() }, { correlationId, signal: abort.signal })
              .then(
                (result) => ({ result }),
                (err: unknown) => ({ err }),
              );
            if (which === 'ours') hs[HEADERS.correlationId] = Buffer.from(correlationId);
            if (which === 'ours-repeated')
              hs[HEADERS.correlationId] = [null, Buffer.from('x'), Buffer.from(correlationId)];
            if (which === 'ours-text') hs[HEADERS.correlationId] = correlationId;
            const message: InboundMessage = {
              topic: client.replyTopic,
              partition: 0,
              offset: '0',
              key: null,
              value,
              headers: hs,
              timestamp: '0',
            };
            expect(() => onReply(message)).not.toThrow();
            await new Promise((resolve) => setImmediate(resolve));
            const stop = new Error('not answered');
            abort.abort(stop);
            const outcome = await call;
            if (which === 'other') {
              expect(outcome).toEqual({ err: stop });
            } else if ('result' in outcome) {
              expect(modelResultSchema.safeParse(outcome.result).success).toBe(true);
            } else {
              expect(outcome.err).toBeInstanceOf(Error);
              expect(outcome.err).not.toBe(stop);
              expect((outcome.err as Error).message).toContain(correlationId);
            }
            expect(client.inFlight).toBe(0);
          },
        ),
        { numRuns: 150 },
      );
    } finally {
      await client.close();
    }
  });
});
