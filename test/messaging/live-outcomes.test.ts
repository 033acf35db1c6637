// The live outcomes a replay reads back (src/messaging/operations/live-outcomes.ts), in-process: a result
// or dead letter is read for its verdict, and any bytes anyone writes to those topics are passed over,
// never thrown on (a throw would stop the replay).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { deadLetterVerdict, resultVerdict } from '../../src/messaging/operations/live-outcomes.ts';
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
