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
const LONG_POLL_MS = 8_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let producer: Producer;
const consumers: Consumer[] = [];
const fetchers: PartitionFetcher[] = [];

beforeAll(async () => {
  const admin = client.admin();
  try {
    await createTopicsAndWait(admin, [{ topic, numPartitions: 3 }]);
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
});

afterAll(async () => {
  await Promise.all(fetchers.map((f) => f.stop()));
  await Promise.all(consumers.map((c) => c.close(true).catch(() => undefined)));
  await producer?.disconnect();
  const admin = testKafka().admin();
  await admin.connect();
  await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
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
