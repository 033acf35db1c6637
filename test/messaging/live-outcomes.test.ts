// The live outcomes a replay reads back (src/messaging/operations/live-outcomes.ts), in-process: a result
// or dead letter is read for its verdict, and any bytes anyone writes to those topics are passed over,
// never thrown on (a throw would stop the replay).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  deadLetterVerdict,
  RefusedLive,
  resultVerdict,
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
});
