// The live outcomes a replay reads back (src/messaging/operations/live-outcomes.ts), in-process: a result
// or dead letter is read for its verdict, and any bytes anyone writes to those topics are passed over,
// never thrown on (a throw would stop the replay).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  deadLetterVerdict,
  RefusedLive,
  resultVerdict,
  timestampStamp,
} from '../../src/messaging/operations/live-outcomes.ts';
import type { InboundMessage } from '../../src/messaging/engine/records.ts';

function message(
  value: Buffer | null,
  headers: InboundMessage['headers'] = {},
  timestamp = '0',
): InboundMessage {
  return {
    topic: 't.pattern.insert.result',
    partition: 0,
    offset: '3',
    key: null,
    value,
    headers,
    timestamp,
  };
}
const json = (v: unknown) => Buffer.from(JSON.stringify(v));

describe('live outcomes', () => {
  it("reads a result's verdict on its request", () => {
    const source = { topic: 't.pattern.insert', partition: 1, offset: '9' };
    expect(resultVerdict(message(json({ success: true, metadata: { source } })))).toEqual({
      at: 't.pattern.insert/1/9',
      ...source,
      code: null,
      stamp: 0,
    });
    const refused = { success: false, error: { code: 'VALIDATION_ERROR' }, metadata: { source } };
    expect(resultVerdict(message(json(refused)))?.code).toBe('VALIDATION_ERROR');
  });

  it('passes over a result that is JSON null, a scalar, or has null where objects belong', () => {
    for (const v of [null, 1, 'x', [], { metadata: null }, { metadata: { source: null } }, { error: null }])
      expect(resultVerdict(message(json(v)))).toBeUndefined();
  });

  it('never throws on any JSON or bytes on a result or dead-letter topic (property)', () => {
    const header = fc.option(
      fc.uint8Array({ maxLength: 12 }).map((b) => Buffer.from(b)),
      { nil: null },
    );
    fc.assert(
      fc.property(
        fc.oneof(
          fc.jsonValue().map(json),
          fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b)),
        ),
        fc.dictionary(
          fc.constantFrom(
            'kafka_dlt-original-topic',
            'kafka_dlt-original-partition',
            'kafka_dlt-original-offset',
            'kafka_dlt-original-timestamp',
            'kafka_dlt-exception-fqcn',
            'kafka_dlt-exception-message',
            'kafka_dlt-original-consumer-group',
            'kafka_correlationId',
          ),
          header,
        ),
        fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
        (value, headers, timestamp) => {
          const m = message(value, headers, timestamp.toString());
          resultVerdict(m);
          deadLetterVerdict(m);
        },
      ),
    );
  });
});

describe('RefusedLive', () => {
  it('keeps refusals of the replayed ranges only, a byte each, and any number of distinct codes bounded', () => {
    const refused = new RefusedLive([{ topic: 'p.usage', partition: 0, start: 100n, end: 200n }]);
    // 450,000 dead letters of other offsets, partitions and topics: nothing kept.
    for (let i = 0; i < 150_000; i++) {
      refused.refuse('p.usage', 0, String(200 + i), 'VALIDATION_ERROR');
      refused.refuse('p.usage', 1, String(i), 'VALIDATION_ERROR');
      refused.refuse('p.insert', 0, String(i), 'VALIDATION_ERROR');
    }
    expect(refused.size).toBe(0);
    refused.refuse('p.usage', 0, '150', 'NOT_FOUND');
    refused.refuse('p.usage', 0, '150', 'CONFLICT'); // the first verdict stays
    expect(refused.get('p.usage', 0, '150')).toBe('NOT_FOUND');
    // A success result clears a refusal; a dead letter saying the request itself succeeded wins for good.
    refused.answered('p.usage', 0, '150');
    expect(refused.get('p.usage', 0, '150')).toBeUndefined();
    refused.refuse('p.usage', 0, '151', 'INTERNAL');
    refused.applied('p.usage', 0, '151');
    refused.refuse('p.usage', 0, '151', 'INTERNAL');
    expect(refused.get('p.usage', 0, '151')).toBeUndefined();
    // Codes are whatever a dead letter's header says: past 250 distinct ones, the rest read as INTERNAL.
    for (let i = 0; i < 99; i++) refused.refuse('p.usage', 0, String(100 + i), `CODE_${i % 300}_${i}`);
    expect(refused.get('p.usage', 0, '100')).toBe('CODE_0_0');
    expect(refused.size).toBe(98); // 151 stays applied
    const many = new RefusedLive([{ topic: 't', partition: 0, start: 0n, end: 1000n }]);
    for (let i = 0; i < 1000; i++) many.refuse('t', 0, String(i), `CODE_${i}`);
    expect(many.get('t', 0, '10')).toBe('CODE_10');
    expect(many.get('t', 0, '999')).toBe('INTERNAL');
    expect(many.get('t', 0, 'not-an-offset')).toBeUndefined();
  });

  it('gives a record only the verdicts of its own request: one at its offset in a topic since deleted has another timestamp', () => {
    const topic = 't.pattern.usage';
    const range = [{ topic, partition: 0, start: 0n, end: 10n }];
    const [before, after] = ['1764990000000', '1764990600000'];
    const [old, now] = [timestampStamp(before), timestampStamp(after)];
    expect(old).not.toBe(now);
    expect(Math.min(old, now)).toBeGreaterThan(0);

    // The deleted topic's record at offset 1 was refused; the new one there was applied (a success result).
    const a = new RefusedLive(range);
    a.refuse(topic, 0, '1', 'VALIDATION_ERROR', old, true);
    a.answered(topic, 0, '1', now);
    expect(a.get(topic, 0, '1', after)).toBeUndefined();
    expect(a.get(topic, 0, '1', before)).toBe('VALIDATION_ERROR');

    // The other way round: the deleted record's success does not clear the new one's refusal.
    const b = new RefusedLive(range);
    b.refuse(topic, 0, '2', 'NOT_FOUND', now, true);
    b.answered(topic, 0, '2', old);
    expect(b.get(topic, 0, '2', after)).toBe('NOT_FOUND');
    expect(b.size).toBe(1);

    // Both refused: a later dead letter is of the newer record; an error result of the older one after it
    // changes nothing.
    const c = new RefusedLive(range);
    c.refuse(topic, 0, '3', 'VALIDATION_ERROR', old, true);
    c.refuse(topic, 0, '3', 'NOT_FOUND', now, true);
    c.refuse(topic, 0, '3', 'VALIDATION_ERROR', old);
    expect(c.get(topic, 0, '3', after)).toBe('NOT_FOUND');
    expect(c.size).toBe(1);

    // Of the same request, the first verdict stays.
    c.refuse(topic, 0, '4', 'NOT_FOUND', now, true);
    c.refuse(topic, 0, '4', 'CONFLICT', now, true);
    expect(c.get(topic, 0, '4', after)).toBe('NOT_FOUND');
    expect(c.size).toBe(2);
  });

  it('tells any two timestamps apart at the same coordinates (property): a byte of them was mistaken once in 255', () => {
    const topic = 't.pattern.usage';
    fc.assert(
      fc.property(
        fc.bigInt({ min: 0n, max: 253_402_300_799_999n }),
        fc.bigInt({ min: 0n, max: 253_402_300_799_999n }),
        fc.integer({ min: 0, max: 9_999 }),
        (a, b, offset) => {
          fc.pre(a !== b);
          const refused = new RefusedLive([{ topic, partition: 0, start: 0n, end: 10_000n }]);
          refused.refuse(topic, 0, String(offset), 'VALIDATION_ERROR', timestampStamp(String(a)), true);
          expect(refused.get(topic, 0, String(offset), String(b))).toBeUndefined();
          expect(refused.get(topic, 0, String(offset), String(a))).toBe('VALIDATION_ERROR');
        },
      ),
      { numRuns: 2_000 },
    );
  });

  it('gives a verdict written without a timestamp (an earlier version) to any record at its coordinates', () => {
    const topic = 't.pattern.usage';
    const refused = new RefusedLive([{ topic, partition: 0, start: 0n, end: 10n }]);
    refused.refuse(topic, 0, '5', 'VALIDATION_ERROR');
    expect(refused.get(topic, 0, '5', '1764990000000')).toBe('VALIDATION_ERROR');
    expect(refused.get(topic, 0, '5')).toBe('VALIDATION_ERROR');
    refused.answered(topic, 0, '5', timestampStamp('1764990000000'));
    expect(refused.get(topic, 0, '5', '1764990000000')).toBeUndefined();
  });

  it("reads the request's timestamp from a dead letter's and a result's own fields", () => {
    const source = { topic: 't.pattern.insert', partition: 1, offset: '9', timestamp: '1764990000000' };
    expect(resultVerdict(message(json({ success: true, metadata: { source } })))?.stamp).toBe(
      timestampStamp('1764990000000'),
    );
    const ts = Buffer.alloc(8);
    ts.writeBigInt64BE(1764990000000n);
    const letter = message(Buffer.from('{}'), {
      'kafka_dlt-original-topic': Buffer.from('t.pattern.insert'),
      'kafka_dlt-original-partition': Buffer.from([0, 0, 0, 1]),
      'kafka_dlt-original-offset': Buffer.from([0, 0, 0, 0, 0, 0, 0, 9]),
      'kafka_dlt-original-timestamp': ts,
      'kafka_dlt-exception-fqcn': Buffer.from('VALIDATION_ERROR'),
    });
    expect(deadLetterVerdict(letter)).toMatchObject({
      offset: '9',
      code: 'VALIDATION_ERROR',
      stamp: timestampStamp('1764990000000'),
    });
    for (const bad of [undefined, '', 'x', '1.5', '9'.repeat(30)]) expect(timestampStamp(bad)).toBe(0);
  });
});
