// The fetcher on the real broker: a partition added, resumed or sought while a round's long poll is out
// starts at once, in a fetch beside that poll, instead of after it. The poll here waits 8 s on an empty
// partition, so "at once" and "after the poll" are seconds apart. kafkajs writes the records.
import { Consumer } from '@platformatic/kafka';
import type { Producer } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { KafkaClient } from '../../src/messaging/kafka/client.ts';
import { PartitionFetcher, type FetchedRecord } from '../../src/messaging/kafka/fetcher.ts';
import { createTopicsAndWait } from '../../src/messaging/kafka/topic-admin.ts';
import { brokers, connectedProducer, testKafka, uniquePrefix } from '../support/kafka.ts';

vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

const client = new KafkaClient('fetcher-test', { brokers: brokers() });
const topic = `${uniquePrefix()}fetch`;
// One partition of 1,000 records, for a fetch handed over in slices.
const bulkTopic = `${topic}-bulk`;
// Stamped by the broker, as the worker's request topics are.
const appendTimeTopic = `${topic}-append`;
const BULK = 1_000;
const LONG_POLL_MS = 8_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let producer: Producer;
const consumers: Consumer[] = [];
const fetchers: PartitionFetcher[] = [];

beforeAll(async () => {
  const admin = client.admin();
  try {
    await createTopicsAndWait(admin, [
      { topic, numPartitions: 3 },
      { topic: bulkTopic, numPartitions: 1 },
      {
        topic: appendTimeTopic,
        numPartitions: 1,
        configEntries: [{ name: 'message.timestamp.type', value: 'LogAppendTime' }],
      },
    ]);
  } finally {
    await admin.disconnect();
  }
  producer = await connectedProducer(testKafka());
  // Partition 0 stays empty: the long poll waits on it. Partitions 1 and 2 hold ten records each.
  for (const partition of [1, 2]) {
    await producer.send({
      topic,
      messages: Array.from({ length: 10 }, (_, i) => ({ partition, value: `p${partition}-${i}` })),
    });
  }
  await producer.send({
    topic: bulkTopic,
    messages: Array.from({ length: BULK }, (_, i) => ({ partition: 0, value: `b-${i}` })),
  });
});

afterAll(async () => {
  await Promise.all(fetchers.map((f) => f.stop()));
  await Promise.all(consumers.map((c) => c.close(true).catch(() => undefined)));
  await producer?.disconnect();
  const admin = testKafka().admin();
  await admin.connect();
  await admin.deleteTopics({ topics: [topic, bulkTopic, appendTimeTopic] }).catch(() => undefined);
  await admin.disconnect();
});

/** A fetcher long-polling the empty partition 0, and what it delivered, with the time of delivery. */
async function pollingFetcher() {
  const consumer = new Consumer({ ...client.options('-fetcher-test'), groupId: `${topic}-g` });
  consumer.on('error', () => undefined);
  consumers.push(consumer);
  const delivered: { at: number; records: FetchedRecord[] }[] = [];
  const fetcher = new PartitionFetcher({
    consumer,
    connection: client.options('-fetcher-test'),
    startFrom: 'earliest',
    maxWaitMs: LONG_POLL_MS,
    onRecords: (_topic, _partition, records) => delivered.push({ at: Date.now(), records }),
  });
  fetchers.push(fetcher);
  fetcher.add([{ topic, partition: 0 }]);
  fetcher.start();
  await fetcher.positioned();
  // Let the first round's long poll go out.
  await sleep(500);
  return { fetcher, delivered };
}

async function deliveredWithin(delivered: { at: number; records: FetchedRecord[] }[], ms: number) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline && delivered.length === 0) await sleep(20);
  return delivered;
}

describe('PartitionFetcher on a LogAppendTime topic', () => {
  it("gives every record the broker's append time, not the time its producer wrote", async () => {
    // Two records of one batch, stamped by their producer an hour apart and a day ago.
    const dayAgo = Date.now() - 86_400_000;
    const before = Date.now();
    await producer.send({
      topic: appendTimeTopic,
      messages: [
        { partition: 0, value: 'a', timestamp: String(dayAgo) },
        { partition: 0, value: 'b', timestamp: String(dayAgo + 3_600_000) },
      ],
    });
    const after = Date.now();
    const consumer = new Consumer({ ...client.options('-fetcher-test'), groupId: `${topic}-append-g` });
    consumer.on('error', () => undefined);
    consumers.push(consumer);
    const got: FetchedRecord[] = [];
    const fetcher = new PartitionFetcher({
      consumer,
      connection: client.options('-fetcher-test'),
      startFrom: 'earliest',
      maxWaitMs: 100,
      onRecords: (_topic, _partition, records) => got.push(...records),
    });
    fetchers.push(fetcher);
    fetcher.add([{ topic: appendTimeTopic, partition: 0 }]);
    fetcher.start();
    for (let i = 0; i < 250 && got.length < 2; i++) await sleep(20);
    expect(got.map((r) => r.value?.toString())).toEqual(['a', 'b']);
    const [first, second] = got.map((r) => Number(r.timestamp));
    expect(first).toBe(second);
    // The broker's clock is this host's.
    expect(first).toBeGreaterThanOrEqual(before - 1_000);
    expect(first).toBeLessThanOrEqual(after + 1_000);
  });
});

describe('PartitionFetcher with a topic whose start cannot be found', () => {
  it("fetches the other topics' partitions, and says what failed", async () => {
    const consumer = new Consumer({ ...client.options('-fetcher-test'), groupId: `${topic}-absent-g` });
    consumer.on('error', () => undefined);
    consumers.push(consumer);
    const got: FetchedRecord[] = [];
    const errors: unknown[] = [];
    const fetcher = new PartitionFetcher({
      consumer,
      connection: client.options('-fetcher-test'),
      startFrom: 'committed',
      maxWaitMs: 100,
      onRecords: (_topic, _partition, records) => got.push(...records),
      onError: (_what, err) => errors.push(err),
    });
    fetchers.push(fetcher);
    // Assigned a topic that is gone (deleted under its assignment) beside one that is there.
    fetcher.add([
      { topic: `${topic}-absent`, partition: 0 },
      { topic: bulkTopic, partition: 0 },
    ]);
    fetcher.start();
    for (let i = 0; i < 500 && got.length < BULK; i++) await sleep(20);
    expect(got.length).toBe(BULK);
    expect(errors.length).toBeGreaterThan(0);
    expect(fetcher.positions().map((p) => p.topic)).toEqual([bulkTopic]);
  });
});

describe('PartitionFetcher beside a long poll', () => {
  it('fetches a partition added during the poll at once, from where it starts, in order', async () => {
    const { fetcher, delivered } = await pollingFetcher();
    const added = Date.now();
    fetcher.add([{ topic, partition: 1 }]);
    await deliveredWithin(delivered, LONG_POLL_MS);
    expect(delivered.length).toBeGreaterThan(0);
    expect(delivered[0]!.at - added).toBeLessThan(LONG_POLL_MS / 2);
    const values = delivered.flatMap((d) => d.records.map((r) => r.value?.toString()));
    expect(values).toEqual(Array.from({ length: 10 }, (_, i) => `p1-${i}`));
    expect(delivered.flatMap((d) => d.records.map((r) => r.partition))).toEqual(Array(10).fill(1));
  });

  it('fetches a partition resumed or sought during the poll at once, and nothing twice', async () => {
    const { fetcher, delivered } = await pollingFetcher();
    fetcher.add([{ topic, partition: 2, offset: 0n }]);
    await deliveredWithin(delivered, LONG_POLL_MS);
    expect(delivered.flatMap((d) => d.records.map((r) => r.value?.toString()))).toEqual(
      Array.from({ length: 10 }, (_, i) => `p2-${i}`),
    );

    // Paused, then sought back to offset 4 while the poll waits: resumed, it delivers 4..9 once.
    fetcher.pause(topic, 2);
    fetcher.seek(topic, 2, 4n);
    await sleep(300);
    delivered.length = 0;
    const resumed = Date.now();
    fetcher.resume(topic, 2);
    await deliveredWithin(delivered, LONG_POLL_MS);
    expect(delivered.length).toBeGreaterThan(0);
    expect(delivered[0]!.at - resumed).toBeLessThan(LONG_POLL_MS / 2);
    await sleep(500);
    expect(delivered.flatMap((d) => d.records.map((r) => r.value?.toString()))).toEqual(
      Array.from({ length: 6 }, (_, i) => `p2-${i + 4}`),
    );
  });
});

describe('PartitionFetcher handing a big fetch over in slices', () => {
  /** A fetcher of the bulk partition from offset 0; `onRecords` may pause it (as a lane's flow control does). */
  function bulkFetcher(onSlice: (fetcher: PartitionFetcher, records: FetchedRecord[]) => void) {
    const consumer = new Consumer({ ...client.options('-fetcher-test'), groupId: `${bulkTopic}-g` });
    consumer.on('error', () => undefined);
    consumers.push(consumer);
    const slices: { records: FetchedRecord[]; next: bigint; turn: number }[] = [];
    // Counts turns of the event loop (an immediate that queues the next): it moves only while the loop is free.
    let turn = 0;
    let ticking: NodeJS.Immediate;
    const tick = () => {
      turn += 1;
      ticking = setImmediate(tick);
    };
    tick();
    const fetcher: PartitionFetcher = new PartitionFetcher({
      consumer,
      connection: client.options('-fetcher-test'),
      startFrom: 'earliest',
      maxWaitMs: 100,
      sliceRecords: 100,
      onRecords: (_topic, _partition, records, next) => {
        slices.push({ records, next, turn });
        onSlice(fetcher, records);
      },
    });
    fetchers.push(fetcher);
    fetcher.add([{ topic: bulkTopic, partition: 0, offset: 0n }]);
    fetcher.start();
    return { fetcher, slices, stopTicking: () => clearImmediate(ticking) };
  }

  const offsets = (slices: { records: FetchedRecord[] }[]) =>
    slices.flatMap((s) => s.records.map((r) => r.offset));
  const all = (from: number) => Array.from({ length: BULK - from }, (_, i) => BigInt(from + i));
  const until = async (done: () => boolean, ms = 20_000) => {
    const deadline = Date.now() + ms;
    while (!done() && Date.now() < deadline) await sleep(20);
  };

  it('hands at most a slice at once, every offset once and in order, with the event loop free between', async () => {
    const { slices, stopTicking } = bulkFetcher(() => undefined);
    await until(() => offsets(slices).length >= BULK);
    stopTicking();
    expect(offsets(slices)).toEqual(all(0));
    expect(Math.max(...slices.map((s) => s.records.length))).toBeLessThanOrEqual(100);
    // Each slice says where the partition stands after it.
    for (const s of slices) expect(s.next).toBe(s.records[s.records.length - 1]!.offset + 1n);
    // The event loop turned between slices: a fetch was not handed over in one go.
    const fetched = slices.length;
    expect(fetched).toBeGreaterThanOrEqual(BULK / 100);
    expect(new Set(slices.map((s) => s.turn)).size).toBe(fetched);
  });

  it('stops handing over a fetch when the partition is paused, and fetches the rest again on resume', async () => {
    let paused = false;
    const { fetcher, slices, stopTicking } = bulkFetcher((f) => {
      if (!paused) {
        paused = true;
        f.pause(bulkTopic, 0);
      }
    });
    await until(() => slices.length > 0);
    await sleep(500);
    // The fetch brought far more than a slice; only the slice handed over before the pause arrived.
    expect(offsets(slices)).toEqual(all(0).slice(0, 100));
    fetcher.resume(bulkTopic, 0);
    await until(() => offsets(slices).length >= BULK);
    await sleep(300);
    stopTicking();
    expect(offsets(slices)).toEqual(all(0));
  });

  it('reads the end of a partition paused for longer than endsEveryMs, so its lag is not read from a stale end', async () => {
    // During a backlog a lane's partitions wait paused; the lag gauge read 0 while the broker counted
    // 300,000 behind.
    const consumer = new Consumer({ ...client.options('-fetcher-ends'), groupId: `${topic}-ends` });
    consumer.on('error', () => undefined);
    consumers.push(consumer);
    const got: FetchedRecord[] = [];
    const ends: [number, bigint, bigint][] = [];
    const fetcher = new PartitionFetcher({
      consumer,
      connection: client.options('-fetcher-ends'),
      startFrom: 'earliest',
      maxWaitMs: 100,
      endsEveryMs: 300,
      onRecords: (_topic, _partition, records) => got.push(...records),
      onHighWatermark: (_topic, partition, position, end) => ends.push([partition, position, end]),
    });
    fetchers.push(fetcher);
    fetcher.add([{ topic, partition: 1 }]);
    fetcher.start();
    await until(() => got.length >= 10);
    fetcher.pause(topic, 1);
    const before = ends.length;
    await producer.send({
      topic,
      messages: Array.from({ length: 5 }, (_, i) => ({ partition: 1, value: `later-${i}` })),
    });
    await until(() => ends.slice(before).some(([, , end]) => end === 15n));
    // Read at the paused position, with nothing more handed over.
    expect(ends.slice(before).find(([, , end]) => end === 15n)).toEqual([1, 10n, 15n]);
    expect(got).toHaveLength(10);
    await fetcher.stop();
  });

  it('reads a batch of more records than a fetch reads in parts, every offset once and in order', async () => {
    const consumer = new Consumer({ ...client.options('-fetcher-test'), groupId: `${topic}-parts` });
    consumer.on('error', () => undefined);
    consumers.push(consumer);
    const handed: FetchedRecord[][] = [];
    // The 1,000 records went in one send: one batch. A fetch reads 300 of them, handed over whole.
    const fetcher = new PartitionFetcher({
      consumer,
      connection: client.options('-fetcher-test'),
      startFrom: 'earliest',
      maxWaitMs: 100,
      sliceRecords: BULK,
      maxRecords: 300,
      onRecords: (_topic, _partition, records) => handed.push(records),
    });
    fetchers.push(fetcher);
    fetcher.add([{ topic: bulkTopic, partition: 0, offset: 0n }]);
    fetcher.start();
    await until(() => offsets(handed.map((records) => ({ records }))).length >= BULK);
    await sleep(300);
    expect(offsets(handed.map((records) => ({ records })))).toEqual(all(0));
    expect(handed.map((records) => records.length)).toEqual([300, 300, 300, 100]);
  });

  it('hands nothing more over once stopped, though the fetch brought more', async () => {
    let stopping: Promise<void> | undefined;
    const { slices, stopTicking } = bulkFetcher((f) => {
      stopping ??= f.stop();
    });
    await until(() => slices.length > 0);
    await stopping;
    await sleep(300);
    stopTicking();
    expect(offsets(slices)).toEqual(all(0).slice(0, 100));
  });
});
