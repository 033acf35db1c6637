// Dead letters in-process: decoding Spring's headers, the filters, and what a redrive sends (and why it
// keeps the message identity across redrives), over records built as the worker builds them.
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { messageIdentity } from '../../src/contracts/identity.ts';
import { TopicNames } from '../../src/contracts/topics.ts';
import {
  countByCode,
  decodeDeadLetter,
  describeDeadLetter,
  matchesFilter,
  redriveRecord,
} from '../../src/messaging/operations/dead-letters.ts';
import type { InboundMessage, OutboundRecord } from '../../src/messaging/engine/records.ts';
import { toInbound } from '../../src/messaging/kafka/inbound.ts';
import { deadLetterRecord } from '../../src/messaging/stages/encode.ts';
import { headersOf } from '../support/outbound-headers.ts';
import { fetchedRecord, roundTrip } from './kafka-wire.ts';

const names = new TopicNames('t.');

function original(overrides: Partial<InboundMessage> = {}): InboundMessage {
  return {
    topic: 't.pattern.usage',
    partition: 2,
    offset: '41',
    key: Buffer.from('p1'),
    value: Buffer.from(JSON.stringify({ operation: 'record_usage', pattern_id: 'x' })),
    headers: {},
    timestamp: String(Date.parse('2026-12-01T10:00:00Z')),
    ...overrides,
  };
}

/** The dead letter the worker would write for `request`, as it comes back from the broker. */
function dead(request: InboundMessage, code = 'INVALID_REFERENCE', offset = '7'): InboundMessage {
  const record = deadLetterRecord({
    topic: 't.pattern.usage.dlq',
    request,
    error: { code: code as 'INVALID_REFERENCE', message: 'a referenced pattern does not exist' },
    consumerGroup: 'g',
  });
  return toInbound({
    ...roundTrip(record),
    topic: record.topic,
    partition: 0,
    offset: BigInt(offset),
    timestamp: BigInt(Date.parse('2026-12-01T10:00:01Z')),
  });
}

/** A redriven record as it comes back from its request topic at `offset`. */
const landed = (record: OutboundRecord, offset: string): InboundMessage =>
  original({ offset, headers: toInbound(roundTrip(record)).headers });

describe('dead letters', () => {
  it("decodes Spring's headers, and a correlation id sent as Spring's 16 raw bytes as its UUID", () => {
    const id = randomUUID();
    const letter = decodeDeadLetter(
      dead(original({ headers: { kafka_correlationId: Buffer.from(id.replaceAll('-', ''), 'hex') } })),
    );
    expect(letter).toMatchObject({
      ref: 't.pattern.usage.dlq:0:7',
      time: '2026-12-01T10:00:01.000Z',
      original: { topic: 't.pattern.usage', partition: 2, offset: '41', time: '2026-12-01T10:00:00.000Z' },
      code: 'INVALID_REFERENCE',
      consumerGroup: 'g',
      correlationId: id,
      redriveCount: 0,
      key: 'p1',
    });
    const whole = describeDeadLetter(dead(original({ value: Buffer.from([0xff, 0x00]) })));
    expect(whole.value).toBe('base64:/wA=');
    expect(whole.headers['kafka_dlt-original-offset']).toBe(41);
  });

  it('lists a dead letter stamped with no time, or naming none, without a time instead of failing', () => {
    const letter = dead(original({ timestamp: '-9000000000000000000' }));
    const listed = decodeDeadLetter({ ...letter, timestamp: '9000000000000000' });
    expect(listed.time).toBe('');
    expect(listed.original.time).toBeNull();
    expect(describeDeadLetter(letter).offset).toBe('7');
  });

  it('filters by code, time and correlation id, and counts per code', () => {
    const letter = decodeDeadLetter(dead(original()));
    expect(matchesFilter(letter, { codes: ['INVALID_REFERENCE'] })).toBe(true);
    expect(matchesFilter(letter, { codes: ['VALIDATION_ERROR'] })).toBe(false);
    expect(matchesFilter(letter, { since: new Date('2026-12-01T10:00:02Z') })).toBe(false);
    expect(matchesFilter(letter, { until: new Date('2026-12-01T10:00:01Z') })).toBe(false);
    expect(matchesFilter(letter, { correlationId: 'other' })).toBe(false);
    expect(countByCode([letter, letter, decodeDeadLetter(dead(original(), 'VALIDATION_ERROR'))])).toEqual({
      INVALID_REFERENCE: 2,
      VALIDATION_ERROR: 1,
    });
  });

  it('redrives the original key, value and headers, without the dead-letter headers or the old reply path', () => {
    const request = original({
      headers: {
        traceparent: Buffer.from('00-abc-def-01'),
        kafka_replyTopic: Buffer.from('gone'),
        kafka_replyPartition: Buffer.from('3'),
        'pattern-deadline-ms': Buffer.from('1'),
      },
    });
    const redrive = redriveRecord(dead(request), names);
    if (!('record' in redrive)) throw new Error(redrive.skip);
    expect(redrive.record.topic).toBe('t.pattern.usage');
    expect(redrive.record.key?.toString()).toBe('p1');
    expect(redrive.record.value?.toString()).toBe(request.value?.toString());
    expect(Object.keys(headersOf(redrive.record)).sort()).toEqual([
      'pattern-redrive-count',
      'pattern-redrive-of',
      'traceparent',
    ]);
    expect(String(headersOf(redrive.record)['pattern-redrive-of'])).toBe('t.pattern.usage/2/41');
  });

  it('redrives the original headers exactly: order, repeats, headers without a value', () => {
    const raw: [string | Buffer, Buffer | null][] = [
      ['x-late', Buffer.from('first')],
      ['0', Buffer.from('a name JavaScript orders first')],
      [Buffer.from([0xc3, 0x28]), Buffer.from('a name that is not UTF-8')],
      ['x-flag', null],
      ['', Buffer.from('no name')],
      ['kafka_replyTopic', Buffer.from('gone')],
      ['x-late', Buffer.from('again')],
    ];
    const request = toInbound(
      fetchedRecord(Buffer.from('p1'), Buffer.from('{}'), raw, {
        topic: 't.pattern.usage',
        partition: 2,
        offset: 41n,
        timestamp: BigInt(Date.parse('2026-12-01T10:00:00Z')),
      }),
    );
    const letter = dead(request);
    // A name that is not UTF-8 is carried as Java reads it, and named with its bytes.
    expect(JSON.parse(String(letter.headers['kafka_dlt-original-headers-omitted']))).toEqual([
      expect.objectContaining({ name: '\ufffd(', reason: 'name not UTF-8', name_hex: 'c328' }),
    ]);
    const redrive = redriveRecord(letter, names);
    if (!('record' in redrive)) throw new Error(redrive.skip);
    // A name that is not UTF-8 comes back as Java reads it (U+FFFD for the bad byte).
    const bytes = (v: string | Buffer) => Buffer.from(String(v));
    expect(roundTrip(redrive.record).headers).toEqual([
      ...raw.filter(([name]) => name !== 'kafka_replyTopic').map(([n, v]) => [bytes(n), v]),
      [bytes('pattern-redrive-of'), bytes('t.pattern.usage/2/41')],
      [bytes('pattern-redrive-count'), bytes('1')],
    ]);
  });

  it('keeps the identity of a message without correlation id across two redrives', () => {
    const first = original();
    const identityOf = (m: InboundMessage) =>
      messageIdentity({
        bodyCorrelationId: null,
        headerCorrelationId: undefined,
        topic: m.topic,
        partition: m.partition,
        offset: m.offset,
        redriveOf: m.headers['pattern-redrive-of'] as Buffer | undefined,
      });
    const once = redriveRecord(dead(first), names);
    if (!('record' in once)) throw new Error(once.skip);
    // It lands at a new offset, fails again, and is redriven again.
    const atNinety = landed(once.record, '90');
    const twice = redriveRecord(dead(atNinety, 'INVALID_REFERENCE', '8'), names);
    if (!('record' in twice)) throw new Error(twice.skip);
    const again = landed(twice.record, '120');
    expect(identityOf(atNinety)).toBe(identityOf(first));
    expect(identityOf(again)).toBe(identityOf(first));
    expect(String(headersOf(twice.record)['pattern-redrive-count'])).toBe('2');
    // A malformed pattern-redrive-of is not an identity: the message's own coordinates are.
    expect(identityOf(original({ headers: { 'pattern-redrive-of': Buffer.from('x y') } }))).toBe(
      'off:t.pattern.usage/2/41',
    );
    // Nor is one that cannot be this message's original: another topic, or at or after it in its own
    // partition (a forged marker would take that later message's identity and have it refused).
    for (const forged of ['other.tenant.pattern.usage/2/7', 't.pattern.usage/2/41', 't.pattern.usage/2/42']) {
      expect(identityOf(original({ headers: { 'pattern-redrive-of': Buffer.from(forged) } }))).toBe(
        'off:t.pattern.usage/2/41',
      );
    }
    // A redrive keyed to another partition of the same topic keeps its original's identity.
    expect(
      identityOf(original({ headers: { 'pattern-redrive-of': Buffer.from('t.pattern.usage/0/900') } })),
    ).toBe('off:t.pattern.usage/0/900');
  });

  it('skips what cannot be redriven, saying why', () => {
    const tooLarge = dead(original());
    tooLarge.value = null;
    expect(redriveRecord(tooLarge, names)).toEqual({
      skip: expect.stringMatching(/value was not kept .* t\.pattern\.usage partition 2 offset 41/) as unknown,
    });
    expect(redriveRecord(dead(original()), new TopicNames('other.'))).toEqual({
      skip: expect.stringMatching(/not a request topic here \(is TOPIC_PREFIX right\?\)/) as unknown,
    });
    const bare = dead(original());
    delete bare.headers['kafka_dlt-original-topic'];
    expect(redriveRecord(bare, names)).toEqual({ skip: 'it has no kafka_dlt-original-topic header' });
  });
});
