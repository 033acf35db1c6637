// The group-less range readers on the real broker: readRanges (patterns status, dlq, live outcomes) and
// MergedRead (replay). Ranges end exactly at the planned end offsets, whatever is appended meanwhile; a
// range ending in a transaction marker ends at once; a range ends at the last stable offset, so no read
// waits for a transaction left open; replay's read is in merged time order, with bounded buffering. kafkajs is the independent client that writes the records.
import { CompressionTypes, type Producer } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { InboundMessage } from '../../src/messaging/engine/records.ts';
import { KafkaClient } from '../../src/messaging/kafka/client.ts';
import { planRanges, readRanges, type PartitionRange } from '../../src/messaging/kafka/operator-io.ts';
import { MergedRead } from '../../src/messaging/kafka/replay-reader.ts';
import { createTopicsAndWait } from '../../src/messaging/kafka/topic-admin.ts';
import { createLogger } from '../../src/telemetry/logger.ts';
import { brokers, connectedProducer, testKafka, uniquePrefix } from '../support/kafka.ts';
import { openTransaction } from '../support/poison/client.ts';

vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

const client = new KafkaClient('operator-io-test', { brokers: brokers() });
const kafka = testKafka();
const prefix = uniquePrefix();
const a = `${prefix}a`;
const b = `${prefix}b`;
const tx = `${prefix}tx`;
const held = `${prefix}held`;
const T0 = 1_780_000_000_000;

async function plan(topics: string[], window: { since?: Date; until?: Date } = {}) {
  const admin = client.admin();
  try {
    return await planRanges(admin, topics, window);
  } finally {
    await admin.disconnect();
  }
}

/** Everything a merged read gives, in the order it gives it; the reader is closed after. */
async function takeAll(reader: MergedRead, ranges: PartitionRange[]): Promise<InboundMessage[]> {
  const taken: InboundMessage[] = [];
  try {
    await reader.start(ranges);
    const deadline = Date.now() + 30_000;
    while (!reader.done) {
      if (Date.now() > deadline) throw new Error(`merge stuck after ${taken.length}`);
      const m = reader.take();
      if (m) taken.push(m);
      else await reader.wait(200);
    }
  } finally {
    await reader.close();
  }
  return taken;
}

describe('range readers', () => {
  let producer: Producer;
  beforeAll(async () => {
    const admin = client.admin();
    try {
      await createTopicsAndWait(admin, [
        { topic: a, numPartitions: 2 },
        { topic: b, numPartitions: 1 },
        { topic: tx, numPartitions: 1 },
        { topic: held, numPartitions: 1 },
      ]);
    } finally {
      await admin.disconnect();
    }
    producer = await connectedProducer(kafka);
    // a/0: even timestamps, a/1: odd ones, b/0: every tenth; 300 records per partition of a.
    for (let chunk = 0; chunk < 3; chunk++) {
      await producer.send({
        topic: a,
        messages: Array.from({ length: 200 }, (_, j) => {
          const i = chunk * 200 + j;
          return {
            partition: i % 2,
            value: `a${i}`,
            timestamp: String(T0 + i * 10),
            headers: { n: String(i) },
          };
        }),
      });
    }
    await producer.send({
      topic: b,
      messages: Array.from({ length: 60 }, (_, i) => ({
        partition: 0,
        value: `b${i}`,
        timestamp: String(T0 + i * 100 + 5),
      })),
    });
    // Two committed transactions: the range of tx ends in a commit marker.
    const transactional = kafka.producer({
      transactionalId: `${prefix}tx-producer`,
      idempotent: true,
      maxInFlightRequests: 1,
    });
    await transactional.connect();
    for (let t = 0; t < 2; t++) {
      const txn = await transactional.transaction();
      await txn.send({ topic: tx, messages: [{ value: `t${t}.0` }, { value: `t${t}.1` }] });
      await txn.commit();
    }
    await transactional.disconnect();
  });
  afterAll(async () => {
    await producer.disconnect();
  });

  it('planRanges: the whole topic, or from the first record at or after `since` until `until`', async () => {
    expect(await plan([a, b])).toEqual([
      { topic: a, partition: 0, start: 0n, end: 300n },
      { topic: a, partition: 1, start: 0n, end: 300n },
      { topic: b, partition: 0, start: 0n, end: 60n },
    ]);
    // a/0 holds T0 + 20k, a/1 T0 + 20k + 10.
    const window = await plan([a], { since: new Date(T0 + 1000), until: new Date(T0 + 2000) });
    expect(window).toEqual([
      { topic: a, partition: 0, start: 50n, end: 100n },
      { topic: a, partition: 1, start: 50n, end: 100n },
    ]);
  });

  it('readRanges reads each range exactly, in offset order per partition, awaiting each message', async () => {
    const ranges = await plan([a, b]);
    // Appended after the plan: not read.
    await producer.send({ topic: a, messages: [{ partition: 0, value: 'late' }] });
    const part: PartitionRange[] = [
      ...ranges.filter((r) => r.topic === a),
      { topic: b, partition: 0, start: 10n, end: 20n },
    ];
    const seen: InboundMessage[] = [];
    let inside = 0;
    let progress = 0;
    const { read } = await readRanges(
      client,
      part,
      async (m) => {
        inside += 1;
        expect(inside).toBe(1); // one at a time
        await new Promise((r) => setImmediate(r));
        seen.push(m);
        inside -= 1;
      },
      { groupPrefix: 'operator-io-test', idleMs: 30_000, onProgress: (n) => (progress = n) },
    );
    expect(read).toBe(610);
    expect(progress).toBe(610);
    expect(seen).toHaveLength(610);
    for (const [topic, partition, from, to] of [
      [a, 0, 0, 300],
      [a, 1, 0, 300],
      [b, 0, 10, 20],
    ] as const) {
      const offsets = seen.filter((m) => m.topic === topic && m.partition === partition).map((m) => m.offset);
      expect(offsets).toEqual(Array.from({ length: to - from }, (_, i) => String(from + i)));
    }
    const first = seen.find((m) => m.topic === a && m.partition === 1 && m.offset === '0');
    expect(first?.value?.toString()).toBe('a1');
    expect(first?.headers.n).toEqual(Buffer.from('1'));
    expect(first?.timestamp).toBe(String(T0 + 10));
    expect(seen.some((m) => m.value?.toString() === 'late')).toBe(false);
  });

  it('readRanges ends a range whose last offset is a transaction marker at once, not after idleMs', async () => {
    const ranges = await plan([tx]);
    expect(ranges).toEqual([{ topic: tx, partition: 0, start: 0n, end: 6n }]);
    const started = Date.now();
    const seen: string[] = [];
    await readRanges(client, ranges, (m) => void seen.push(m.value?.toString() ?? ''), {
      groupPrefix: 'operator-io-test',
      idleMs: 30_000,
    });
    expect(seen).toEqual(['t0.0', 't0.1', 't1.0', 't1.1']);
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('plans to the last stable offset, so no read waits for a transaction left open, and names what it holds back', async () => {
    await producer.send({ topic: held, messages: ['h0', 'h1', 'h2'].map((value) => ({ value })) });
    // librdkafka opens a transaction at offset 3 and never ends it (for a minute, as far as the broker knows).
    const hostile = await openTransaction(brokers().join(','), held, 'open', 60_000);
    try {
      await producer.send({ topic: held, messages: ['h4', 'h5'].map((value) => ({ value })) });
      const ranges = await plan([held]);
      expect(ranges).toEqual([
        { topic: held, partition: 0, start: 0n, end: 3n, heldBack: { from: 3n, records: 3n } },
      ]);
      const started = Date.now();
      const seen: string[] = [];
      await readRanges(client, ranges, (m) => void seen.push(m.value?.toString() ?? ''), {
        groupPrefix: 'operator-io-test',
        idleMs: 30_000,
      });
      const reader = new MergedRead(client, ranges, {
        groupId: 'operator-io-test-held',
        topicOrder: [held],
        logger: createLogger('silent'),
        idleMs: 30_000,
      });
      const merged = (await takeAll(reader, ranges)).map((m) => m.value?.toString());
      expect(seen).toEqual(['h0', 'h1', 'h2']);
      expect(merged).toEqual(['h0', 'h1', 'h2']);
      // Neither waited for the transaction (before, each waited out its idle time, then took the partition
      // as ended without a word, whatever was behind the transaction).
      expect(Date.now() - started).toBeLessThan(10_000);
    } finally {
      hostile.kill('SIGKILL');
    }
  });

  it('readRanges fails with the error of onMessage, and reads nothing for empty ranges', async () => {
    const ranges = await plan([b]);
    await expect(
      readRanges(
        client,
        ranges,
        (m) => {
          if (m.offset === '3') throw new Error('stop here');
        },
        { groupPrefix: 'operator-io-test' },
      ),
    ).rejects.toThrowError('stop here');
    expect(
      await readRanges(client, [{ topic: b, partition: 0, start: 5n, end: 5n }], () => undefined, {
        groupPrefix: 'operator-io-test',
      }),
    ).toEqual({ read: 0 });
  });

  it('MergedRead gives every range in timestamp order, to the planned ends, buffering a bounded amount', async () => {
    const ranges = (await plan([a, b, tx])).map((r) =>
      r.topic === b ? { ...r, end: 40n } : r.topic === a && r.partition === 1 ? { ...r, start: 100n } : r,
    );
    await producer.send({ topic: b, messages: [{ partition: 0, value: 'late', timestamp: String(T0) }] });
    const reader = new MergedRead(client, ranges, {
      groupId: 'operator-io-test-replay',
      topicOrder: [a, b, tx],
      logger: createLogger('silent'),
      highWater: 20,
      idleMs: 30_000,
    });
    const taken = await takeAll(reader, ranges);
    const count = (topic: string, partition: number) =>
      taken.filter((m) => m.topic === topic && m.partition === partition).length;
    // a/0 whole (301 with the late record of the readRanges test: planned now), a/1 from 100, b to 40, tx.
    expect(count(a, 0)).toBe(301);
    expect(count(a, 1)).toBe(200);
    expect(count(b, 0)).toBe(40);
    expect(count(tx, 0)).toBe(4);
    expect(taken.some((m) => m.topic === b && m.value?.toString() === 'late')).toBe(false);
    // The merged order: timestamps never go back within a's and b's records (tx's are stamped now).
    const stamped = taken.filter((m) => m.topic !== tx && m.value?.toString() !== 'late');
    for (let i = 1; i < stamped.length; i++) {
      expect(BigInt(stamped[i]!.timestamp)).toBeGreaterThanOrEqual(BigInt(stamped[i - 1]!.timestamp));
    }
    // Offsets in order within each partition.
    for (const [topic, partition] of [
      [a, 0],
      [a, 1],
      [b, 0],
      [tx, 0],
    ] as const) {
      const offsets = taken
        .filter((m) => m.topic === topic && m.partition === partition)
        .map((m) => BigInt(m.offset));
      expect(offsets).toEqual([...offsets].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0)));
    }
  });

  it('MergedRead gives an unreadable batch that starts before a range end inside it', async () => {
    const gz = `${prefix}gz`;
    const admin = client.admin();
    try {
      await createTopicsAndWait(admin, [{ topic: gz, numPartitions: 1 }]);
    } finally {
      await admin.disconnect();
    }
    // One gzip batch of three records, over the 1 KiB this reader decompresses.
    const value = 'z'.repeat(2048);
    await producer.send({
      topic: gz,
      compression: CompressionTypes.GZIP,
      messages: [{ value }, { value }, { value }],
    });
    // A range that ends inside the batch, as one planned by time can.
    const ranges = [{ topic: gz, partition: 0, start: 0n, end: 1n }];
    const reader = new MergedRead(client, ranges, {
      groupId: 'operator-io-test-unreadable',
      topicOrder: [gz],
      logger: createLogger('silent'),
      maxDecompressedBatchBytes: 1024,
    });
    const taken = await takeAll(reader, ranges);
    expect(taken.map((m) => [m.offset, m.unreadable?.details])).toEqual([
      ['2', { first_offset: '0', last_offset: '2', records: 3 }],
    ]);
    expect(taken[0]?.unreadable?.message).toContain('decompresses to more than 1024 bytes');
  });
});
