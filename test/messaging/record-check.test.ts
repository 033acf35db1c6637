// checkRecord: what the worker's producer can encode and the broker takes, decided before a record is queued.
import { describe, expect, it } from 'vitest';
import {
  checkRecord,
  DEFAULT_MAX_RECORD_BYTES,
  recordLimits,
} from '../../src/messaging/stages/record-check.ts';
import { recordSize } from '../../src/messaging/engine/record-size.ts';
import { roundTrip } from './kafka-wire.ts';

const ok = {
  topic: 'pattern.insert.result',
  key: 'k',
  value: '{}',
  headers: { 'content-type': 'application/json' },
};

describe('checkRecord', () => {
  it('passes what the producer encodes: bytes, text or null, repeats, an empty name, a map or entries in order', () => {
    const records = [
      ok,
      { ...ok, key: null, partition: 0 },
      { ...ok, value: null, headers: { a: [Buffer.from('1'), '2'], b: Buffer.alloc(0), n: null, '': 'x' } },
      { topic: 'a_b-c.d', value: Buffer.from('x') },
      { ...ok, headers: [] },
      {
        ...ok,
        headers: [
          ['b', '1'],
          ['0', 'zero'],
          ['é', null],
          ['', Buffer.from('e')],
          ['b', '2'],
        ],
      },
    ];
    for (const r of records) {
      expect(checkRecord(r)).toBeUndefined();
      expect(() => roundTrip(r as never)).not.toThrow();
    }
    // Entries keep their order, repeats and headers without a value.
    expect(roundTrip(records[5] as never).headers).toEqual([
      [Buffer.from('b'), Buffer.from('1')],
      [Buffer.from('0'), Buffer.from('zero')],
      [Buffer.from('é'), null],
      [Buffer.alloc(0), Buffer.from('e')],
      [Buffer.from('b'), Buffer.from('2')],
    ]);
  });

  it('names each header value the producer would throw on', () => {
    const bad: [unknown, RegExp][] = [
      [undefined, /header "h" has a value that is undefined/],
      [Object, /header "h" has a value that is function/],
      [{ nested: 1 }, /header "h" has a value that is object/],
      [[Buffer.from('a'), undefined], /header "h" has a value that is undefined/],
      [42, /header "h" has a value that is number/],
    ];
    for (const [value, reason] of bad) {
      const record = { ...ok, headers: { h: value } };
      expect(checkRecord(record)).toMatch(reason);
      expect(() => roundTrip(record as never)).toThrow();
      const entries = { ...ok, headers: [['h', value]] };
      if (!Array.isArray(value)) expect(checkRecord(entries)).toMatch(reason);
    }
    expect(checkRecord({ ...ok, headers: 'x' })).toMatch(/headers are string/);
    expect(checkRecord({ ...ok, headers: [['h']] })).toMatch(/not a \[name, value\] pair/);
    expect(checkRecord({ ...ok, headers: [[7, 'v']] })).toMatch(/not a \[name, value\] pair/);
    expect(() => roundTrip({ ...ok, headers: [[7, 'v']] } as never)).toThrow();
  });

  it('refuses a bad topic, partition, key or value', () => {
    expect(checkRecord({ ...ok, topic: '' })).toMatch(/1 to 249/);
    expect(checkRecord({ ...ok, topic: 'x'.repeat(250) })).toMatch(/1 to 249/);
    expect(checkRecord({ ...ok, topic: 'a b' })).toMatch(/not a legal topic name/);
    expect(checkRecord({ ...ok, topic: '..' })).toMatch(/not a legal topic name/);
    expect(checkRecord({ ...ok, topic: 7 })).toMatch(/topic is number/);
    expect(checkRecord({ ...ok, partition: -1 })).toMatch(/partition -1/);
    expect(checkRecord({ ...ok, partition: 1.5 })).toMatch(/partition 1.5/);
    expect(checkRecord({ ...ok, partition: 2 ** 31 })).toMatch(/32-bit/);
    expect(checkRecord({ ...ok, partition: '1' })).toMatch(/partition is string/);
    expect(checkRecord({ ...ok, key: { a: 1 } })).toMatch(/key is object/);
    expect(checkRecord({ ...ok, value: 5 })).toMatch(/value is number/);
  });

  it('bounds the key, and key plus value plus headers', () => {
    const limits = recordLimits({ maxKeyBytes: 256, maxResultBytes: 900_000 });
    expect(limits.maxRecordBytes).toBe(DEFAULT_MAX_RECORD_BYTES);
    expect(checkRecord({ ...ok, key: 'k'.repeat(256) }, limits)).toBeUndefined();
    expect(checkRecord({ ...ok, key: Buffer.alloc(900_000) }, limits)).toMatch(
      /key is 900000 bytes, more than the 256/,
    );
    // Each part under the limit, the record over it: the old check measured the value only.
    const nearly = {
      ...ok,
      key: 'k'.repeat(200),
      value: 'v'.repeat(900_000),
      headers: { h: 'x'.repeat(200_000) },
    };
    expect(recordSize(nearly)).toBeGreaterThan(1_100_000);
    expect(checkRecord(nearly, limits)).toMatch(
      /is \d+ bytes \(key 200, value 900000, headers 2000\d\d\).*too large/,
    );
    expect(recordLimits({ maxKeyBytes: 256, maxResultBytes: 5_000_000 }).maxRecordBytes).toBe(5_065_536);
  });
});
