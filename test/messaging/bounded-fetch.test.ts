// Bounded decompression of fetched record batches (src/messaging/kafka/bounded-fetch.ts), in-process on
// batches built by the client library's own encoder: what is read equals what the library reads, a batch
// over the bound or unreadable is handed back unread with its record count instead of failing the
// response, and a response never decompresses more than about twice the bound.
import fc from 'fast-check';
import { createRecordsBatch, kGetApi, readRecordsBatches, Reader } from '@platformatic/kafka';
import { describe, expect, it } from 'vitest';
import {
  BatchTooLargeError,
  boundFetches,
  decompressBounded,
  CODECS,
  lz4Bound,
  readBatches,
  snappyBound,
  UnsupportedBrokerError,
} from '../../src/messaging/kafka/bounded-fetch.ts';

const BITS = { none: 0, gzip: 1, snappy: 2, lz4: 3, zstd: 4 } as const;
const KiB = 1024;

/** One record batch as the wire has it, at `firstOffset`, of values made of `fill` (zeros compress best). */
function batch(codec: (typeof CODECS)[number], values: Buffer[], firstOffset = 0n): Buffer {
  const bytes = Buffer.from(
    createRecordsBatch(
      values.map((value, i) => ({ topic: 't', key: Buffer.from(`k${i}`), value })),
      { compression: codec },
    ).buffer,
  );
  bytes.writeBigInt64BE(firstOffset, 0);
  return bytes;
}

/** An uncompressed batch whose records (values r0, r1, ...) carry the offset deltas given, as a producer
 * can write them: the broker checks the record count against the last delta, not the deltas. */
function forgedBatch(deltas: number[], firstOffset: bigint, lastDelta = deltas.length - 1): Buffer {
  const varint = (n: number): Buffer => {
    const out: number[] = [];
    for (let z = (n << 1) ^ (n >> 31); ; z >>>= 7) {
      if (z >>> 7 === 0) return Buffer.from([...out, z]);
      out.push((z & 0x7f) | 0x80);
    }
  };
  const records = deltas.map((delta, i) => {
    const value = Buffer.from(`r${i}`);
    const body = Buffer.concat([
      Buffer.from([0]),
      varint(0),
      varint(delta),
      varint(-1),
      varint(value.length),
      value,
      varint(0),
    ]);
    return Buffer.concat([varint(body.length), body]);
  });
  const header = Buffer.alloc(61);
  header.writeBigInt64BE(firstOffset, 0);
  header.writeInt32BE(61 - 12 + records.reduce((n, r) => n + r.length, 0), 8);
  header.writeInt8(2, 16); // magic; the CRC (17) is not read
  header.writeInt32BE(lastDelta, 23);
  header.writeBigInt64BE(-1n, 43); // producer id
  header.writeInt16BE(-1, 51);
  header.writeInt32BE(-1, 53);
  header.writeInt32BE(deltas.length, 57);
  return Buffer.concat([header, ...records]);
}

const zeros = (n: number) => Buffer.alloc(n);
const budget = (limit: number) => ({ limit, used: 0 });

describe('bounded decompression', () => {
  it('reads batches of every codec exactly as the library does', () => {
    for (const codec of CODECS) {
      const values = [Buffer.from('{"operation":"search"}'), zeros(5000), Buffer.from('x'.repeat(300))];
      const wire = Buffer.concat([batch(codec, values, 7n), batch(codec, values.slice(1), 10n)]);
      const ours = readBatches(Reader.from(wire), budget(1024 * KiB));
      const theirs = readRecordsBatches(Reader.from(wire));
      expect(ours, codec).toEqual(theirs);
    }
  });

  it('hands a batch over the bound back unread, with its offsets and record count, and reads the next', () => {
    for (const codec of CODECS.filter((c) => c !== 'none')) {
      const bomb = batch(codec, [zeros(600 * KiB), zeros(600 * KiB)], 0n);
      const next = batch(codec, [Buffer.from('after')], 2n);
      const [refused, after, ...rest] = readBatches(
        Reader.from(Buffer.concat([bomb, next])),
        budget(512 * KiB),
      );
      expect(rest).toEqual([]);
      expect(refused?.firstOffset).toBe(0n);
      expect(refused?.lastOffsetDelta).toBe(1);
      expect(refused?.records).toEqual([]);
      expect(refused?.unreadable, codec).toEqual({
        tooLarge: true,
        records: 2,
        message: `it decompresses to more than ${512 * KiB} bytes`,
      });
      expect(
        after?.records.map((r) => r.value?.toString()),
        codec,
      ).toEqual(['after']);
    }
  });

  it('hands a batch whose records cannot be read back unread instead of failing the response', () => {
    const corrupt = batch('gzip', [Buffer.from('x'.repeat(2000))], 0n);
    corrupt.fill(0xff, 75, 100); // inside the gzip stream (its header ends at 71)
    const short = batch('none', [Buffer.from('one')], 1n);
    short.writeInt32BE(5, 57); // says five records, holds one
    const fine = batch('zstd', [Buffer.from('fine')], 2n);
    const read = readBatches(Reader.from(Buffer.concat([corrupt, short, fine])), budget(1024 * KiB));
    expect(read.map((b) => b.unreadable?.tooLarge)).toEqual([false, false, undefined]);
    expect(read[0]?.unreadable?.message).toMatch(/^its records cannot be read \(/);
    expect(read[1]?.unreadable?.records).toBe(5);
    expect(read[2]?.records.map((r) => r.value?.toString())).toEqual(['fine']);
  });

  it('stops decompressing once a response has used its bound, leaving the rest for the next fetch', () => {
    const batches = [0, 1, 2, 3, 4].map((i) => batch('zstd', [zeros(400 * KiB)], BigInt(i)));
    const plain = batch('none', [Buffer.from('plain')], 5n);
    const wire = Buffer.concat([...batches, plain]);
    const reader = Reader.from(wire);
    const spent = budget(1024 * KiB);
    const read = readBatches(reader, spent);
    // 400 + 400 + 400 KiB: the third starts below the bound; the fourth would start above it.
    expect(read.map((b) => b.firstOffset)).toEqual([0n, 1n, 2n]);
    expect(spent.used - 3 * 400 * KiB).toBeGreaterThanOrEqual(0); // the values, and their records' framing
    expect(spent.used - 3 * 400 * KiB).toBeLessThan(100);
    expect(reader.position).toBe(batches.slice(0, 3).reduce((n, b) => n + b.length, 0));
  });

  it('sizes lz4 and snappy from their headers, never below what they decompress to', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('lz4', 'snappy'),
        fc.array(fc.oneof(fc.uint8Array({ maxLength: 3000 }), fc.nat(200_000)), {
          minLength: 1,
          maxLength: 4,
        }),
        (codec, parts) => {
          const value = Buffer.concat(parts.map((p) => (typeof p === 'number' ? zeros(p) : Buffer.from(p))));
          const wire = batch(codec, [value]);
          const data = wire.subarray(61);
          const bound = codec === 'lz4' ? lz4Bound(data) : snappyBound(data);
          const out = decompressBounded(BITS[codec], data, 1 << 30);
          expect(bound).toBeGreaterThanOrEqual(out.length);
          if (out.length > 0)
            expect(() => decompressBounded(BITS[codec], data, out.length - 1)).toThrow(BatchTooLargeError);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('never throws, reads a prefix in order, and decompresses less than twice the bound (property)', () => {
    const limit = 256 * KiB;
    const spec = fc.record({
      codec: fc.constantFrom(...CODECS),
      sizes: fc.array(fc.nat(2 * limit), { minLength: 1, maxLength: 3 }),
      corrupt: fc.boolean(),
    });
    fc.assert(
      fc.property(fc.array(spec, { minLength: 1, maxLength: 8 }), (specs) => {
        const wires = specs.map((s, i) => {
          const values = s.sizes.map((n, j) => (j === 0 ? zeros(n) : Buffer.from(`v${i}.${j}`)));
          const wire = batch(s.codec, values, BigInt(i * 10));
          if (s.corrupt && s.codec !== 'none') wire.fill(0x5a, 61, Math.min(wire.length, 75));
          return wire;
        });
        const spent = budget(limit);
        const read = readBatches(Reader.from(Buffer.concat(wires)), spent);
        expect(spent.used).toBeLessThan(2 * limit);
        expect(read.map((b) => b.firstOffset)).toEqual(
          specs.slice(0, read.length).map((_, i) => BigInt(i * 10)),
        );
        for (const [i, b] of read.entries()) {
          const s = specs[i]!;
          const raw = s.sizes.reduce((n, size) => n + size, 0);
          if (b.unreadable) {
            expect(b.records).toEqual([]);
            expect(b.unreadable.records).toBe(s.sizes.length);
            // Over the bound (decompressed, with framing), or corrupted on purpose.
            expect(s.corrupt || raw > limit - 200 * s.sizes.length).toBe(true);
          } else {
            expect(b.records.map((r) => r.value?.length)).toEqual(
              s.sizes.map((n, j) => (j === 0 ? n : Buffer.byteLength(`v${i}.${j}`))),
            );
          }
        }
        // Stopped early only before a compressed batch, once the bound was used.
        if (read.length < specs.length) {
          expect(specs[read.length]?.codec).not.toBe('none');
          expect(spent.used).toBeGreaterThanOrEqual(limit);
        }
      }),
      { numRuns: 80 },
    );
  });

  it('reads a batch of more records than a fetch holds in parts, each from where the last stopped', () => {
    const values = Array.from({ length: 120 }, (_, i) => Buffer.from(`r${i}`));
    const wire = Buffer.concat([batch('zstd', values, 0n), batch('none', [Buffer.from('next')], 120n)]);
    const parts: string[][] = [];
    for (let from = 0n; from < 121n;) {
      const read = readBatches(Reader.from(wire), { limit: 1024 * KiB, used: 0, maxEntries: 50 }, from);
      const last = read.at(-1)!;
      const got = read.flatMap((b) => b.records.filter((r) => b.firstOffset + BigInt(r.offsetDelta) >= from));
      parts.push(got.map((r) => r.value!.toString()));
      from = last.truncated
        ? last.firstOffset + BigInt(last.records.at(-1)!.offsetDelta) + 1n
        : last.firstOffset + BigInt(last.lastOffsetDelta) + 1n;
    }
    expect(parts.map((p) => p.length)).toEqual([50, 50, 21]);
    expect(parts.flat()).toEqual([...values.map(String), 'next']);
  });

  it('gives every record an offset its batch holds, in order, whatever deltas its producer wrote (property)', () => {
    // Deltas as a hostile producer may write them (the broker keeps them), and the gaps compaction leaves.
    const written = fc.oneof(
      fc.array(fc.integer({ min: -3, max: 40 }), { minLength: 1, maxLength: 12 }),
      fc
        .uniqueArray(fc.integer({ min: 0, max: 40 }), { minLength: 1, maxLength: 12 })
        .map((d) => d.sort((a, b) => a - b)),
    );
    fc.assert(
      fc.property(written, fc.nat(30), fc.integer({ min: 1, max: 6 }), (deltas, extra, maxEntries) => {
        const honest = deltas.every((d, i) => d > (deltas[i - 1] ?? -1));
        const lastDelta =
          Math.max(deltas.length - 1, honest ? (deltas.at(-1) ?? 0) : 0) + (honest ? 0 : extra % 2);
        const wire = Buffer.concat([
          forgedBatch(deltas, 100n, lastDelta),
          batch('none', [Buffer.from('next')], 101n + BigInt(lastDelta)),
        ]);
        const [whole] = readBatches(Reader.from(wire), budget(1024 * KiB));
        const offsets = whole!.records.map((r) => r.offsetDelta);
        expect(offsets).toHaveLength(deltas.length);
        offsets.forEach((d, i) => {
          expect(d).toBeGreaterThan(offsets[i - 1] ?? -1);
          expect(d).toBeLessThanOrEqual(lastDelta);
          // Kept as written where it can be, and the written one named where it was not.
          expect(whole!.records[i]!.forgedOffsetDelta).toBe(d === deltas[i] ? undefined : deltas[i]);
        });
        if (honest && (deltas.at(-1) ?? 0) <= lastDelta) expect(offsets).toEqual(deltas);
        // Read again from any offset of the batch: the same records at the same offsets.
        for (let from = 100n; from <= 100n + BigInt(lastDelta); from++) {
          const [again] = readBatches(Reader.from(wire), budget(1024 * KiB), from);
          const expected = whole!.records.filter((r) => 100n + BigInt(r.offsetDelta) >= from);
          expect(again!.records.map((r) => [r.offsetDelta, r.value?.toString()])).toEqual(
            expected.map((r) => [r.offsetDelta, r.value?.toString()]),
          );
        }
        // Cut short by the fetch's bound, each read moves past its last record: every record once, in order.
        const parts: string[] = [];
        for (let from = 100n, reads = 0; from < 101n + BigInt(lastDelta); reads++) {
          expect(reads).toBeLessThan(50);
          const [part] = readBatches(Reader.from(wire), { limit: 1024 * KiB, used: 0, maxEntries }, from);
          parts.push(...part!.records.map((r) => r.value!.toString()));
          from = part!.truncated
            ? 100n + BigInt(part!.records.at(-1)!.offsetDelta) + 1n
            : 101n + BigInt(part!.lastOffsetDelta);
        }
        expect(parts).toEqual(deltas.map((_, i) => `r${i}`));
      }),
      { numRuns: 300 },
    );
  });

  it('refuses a batch that says it holds more records than its offsets', () => {
    const [read] = readBatches(Reader.from(forgedBatch([0, 1, 2], 0n, 1)), budget(1024 * KiB));
    expect(read?.records).toEqual([]);
    expect(read?.unreadable?.message).toBe(
      'its records cannot be read (it says it holds 3 records in 2 offsets)',
    );
  });

  it('reads nothing of a batch wholly below the position, and not even a bomb there', () => {
    const bomb = batch('zstd', [zeros(600 * KiB)], 0n);
    const next = batch('none', [Buffer.from('x'), Buffer.from('y')], 1n);
    const read = readBatches(Reader.from(Buffer.concat([bomb, next])), budget(512 * KiB), 2n);
    expect(read[0]?.unreadable).toBeUndefined();
    expect(read[0]?.records).toEqual([]);
    expect(read[1]?.records.map((r) => r.value?.toString())).toEqual(['y']);
  });

  it('refuses a batch with a record of more headers than a fetch reads, before reading them', () => {
    const next = batch('none', [Buffer.from('v')], 1n);
    // One record of 11 empty headers.
    const many = Buffer.from(
      createRecordsBatch(
        [
          {
            topic: 't',
            value: Buffer.from('v'),
            headers: new Map(Array.from({ length: 11 }, (_, i) => [Buffer.from(`h${i}`), Buffer.alloc(0)])),
          },
        ],
        { compression: 'gzip' },
      ).buffer,
    );
    const read = readBatches(Reader.from(Buffer.concat([many, next])), {
      limit: 1024 * KiB,
      used: 0,
      maxEntries: 10,
    });
    expect(read[0]?.unreadable?.message).toBe(
      'its records cannot be read (a record holds 11 headers, more than the 10 a fetch reads)',
    );
    expect(read[1]?.records).toHaveLength(1);
  });

  it('hands a message of format 0 or 1 back unread at its offset, and reads the batch after it', () => {
    // Format 1: offset, size, crc, magic 1, attributes, timestamp, key -1, value "old".
    const message = Buffer.alloc(12 + 4 + 1 + 1 + 8 + 4 + 4 + 3);
    message.writeBigInt64BE(41n, 0);
    message.writeInt32BE(message.length - 12, 8);
    message.writeInt8(1, 16);
    message.writeInt32BE(-1, 26);
    message.writeInt32BE(3, 30);
    message.write('old', 34);
    const next = batch('none', [Buffer.from('new')], 42n);
    const [old, after] = readBatches(Reader.from(Buffer.concat([message, next])), budget(1024 * KiB));
    expect(old?.firstOffset).toBe(41n);
    expect(old?.lastOffsetDelta).toBe(0);
    expect(old?.unreadable?.message).toBe('is of message format 1; only record batches of format 2 are read');
    expect(after?.records.map((r) => r.value?.toString())).toEqual(['new']);
  });

  it('gives an unreadable transaction marker a record that marks nothing, as the library reads its first', () => {
    const marker = batch('none', [Buffer.from('m')], 5n);
    marker.writeInt16BE(0x20, 21); // the control bit
    marker.writeInt32BE(3, 57); // says three records, holds one
    const [read] = readBatches(Reader.from(marker), budget(1024 * KiB), 9n);
    expect(read?.unreadable?.tooLarge).toBe(false);
    expect(read?.records).toHaveLength(1);
    expect(read?.records[0]?.key).toBeNull();
  });
});

describe('the Fetch version a broker speaks', () => {
  /** A consumer whose brokers negotiate `version` for every API. */
  function consumerSpeaking(version: number) {
    type Callback = (error: Error | null, api?: { version: number }) => void;
    const answer = { version };
    const consumer = {
      [kGetApi]: (_name: string, callback: Callback) => callback(null, answer),
    };
    boundFetches(consumer as never, { limit: 1024 * KiB });
    const getApi = (name: string) =>
      new Promise<{ version: number }>((resolve, reject) =>
        consumer[kGetApi](name, (error, api) => (error ? reject(error) : resolve(api!))),
      );
    return { getApi, answer };
  }

  it('refuses a broker older than Kafka 3.1 by name, instead of reading its fetches without bounds', async () => {
    const { getApi, answer } = consumerSpeaking(12);
    const refused = await getApi('Fetch').catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(UnsupportedBrokerError);
    expect((refused as Error).message).toMatch(/Fetch only up to version 12.*Kafka 3\.1.*upgrade the broker/);
    expect(await getApi('Metadata')).toBe(answer); // only the Fetch is refused
  });

  it('reads a Kafka 3.1+ broker through the bounded reader', async () => {
    const { getApi, answer } = consumerSpeaking(17);
    const fetch = await getApi('Fetch');
    expect(fetch.version).toBe(17);
    expect(fetch).not.toBe(answer); // the bounded API in place of the library's
  });
});
