// PatternClient's SendQueue against the real broker, read back with kafkajs: concurrent calls batched and
// kept in order, a refused message failing only its own call, repeated and absent headers, a missing topic
// rejected within the deadline, and calls still queued at close rejected.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Admin, Kafka } from 'kafkajs';
import { KafkaClient } from '../../src/messaging/kafka/client.ts';
import { SendQueue } from '../../src/messaging/kafka/send-queue.ts';
import { SendError } from '../../src/messaging/engine/ports.ts';
import { brokers, Collector, testKafka, uniquePrefix } from '../support/kafka.ts';

const client = new KafkaClient('send-queue-test', { brokers: brokers() });

const outcome = (p: Promise<void>): Promise<unknown> =>
  p.then(
    () => 'sent',
    (e: unknown) => e,
  );

describe('SendQueue against the broker', () => {
  let kafka: Kafka;
  let admin: Admin;
  let collector: Collector;
  const prefix = uniquePrefix();
  const topic = `${prefix}requests`;
  const small = `${prefix}small`;

  beforeAll(async () => {
    kafka = testKafka();
    admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({
      waitForLeaders: true,
      topics: [
        { topic, numPartitions: 2 },
        { topic: small, numPartitions: 1, configEntries: [{ name: 'max.message.bytes', value: '2000' }] },
      ],
    });
    collector = await new Collector(kafka, [topic, small]).start();
  }, 60_000);

  afterAll(async () => {
    await collector?.stop();
    await admin?.disconnect();
  });

  it('sends concurrent calls in batches, in the order of the calls', async () => {
    const queue = new SendQueue(client, 50);
    await queue.connect();
    try {
      const calls = Array.from({ length: 400 }, (_, i) =>
        queue.enqueue(topic, { key: i % 2 ? 'odd' : 'even', value: String(i) }),
      );
      await Promise.all(calls);
      const got = await collector.waitForCount(topic, 400);
      for (const key of ['odd', 'even']) {
        const values = got.filter((m) => m.key?.toString() === key).map((m) => Number(m.value?.toString()));
        expect(values).toEqual(
          Array.from({ length: 400 }, (_, i) => i).filter((i) => (i % 2 ? 'odd' : 'even') === key),
        );
      }
    } finally {
      await queue.close();
    }
  });

  it('writes repeated headers in order and leaves out undefined ones', async () => {
    const queue = new SendQueue(client);
    try {
      await queue.enqueue(topic, {
        key: 'headers',
        value: '{}',
        headers: { kafka_correlationId: 'c-1', absent: undefined, repeated: ['one', Buffer.from('two')] },
      });
      const got = await collector.waitFor((all) => all.some((m) => m.key?.toString() === 'headers'));
      const m = got.find((x) => x.key?.toString() === 'headers');
      expect(Object.keys(m?.headers ?? {})).toEqual(['kafka_correlationId', 'repeated']);
      expect((m?.headers.repeated as Buffer[]).map(String)).toEqual(['one', 'two']);
    } finally {
      await queue.close();
    }
  });

  it('fails only the call whose message the broker refuses for good', async () => {
    const queue = new SendQueue(client);
    try {
      const results = await Promise.all([
        outcome(queue.enqueue(small, { key: 'q', value: 'before' })),
        outcome(queue.enqueue(small, { key: 'q', value: Buffer.alloc(5000, 0x41) })),
        outcome(queue.enqueue(small, { key: 'q', value: 'after' })),
      ]);
      expect(results[0]).toBe('sent');
      expect(results[2]).toBe('sent');
      expect(results[1]).toBeInstanceOf(SendError);
      expect((results[1] as SendError).refused).toBe(true);
      const got = await collector.waitFor(
        (all) => all.filter((m) => m.topic === small && m.key?.toString() === 'q').length >= 2,
      );
      expect(
        got.filter((m) => m.topic === small && m.key?.toString() === 'q').map((m) => String(m.value)),
      ).toEqual(['before', 'after']);
    } finally {
      await queue.close();
    }
  });

  it('rejects a call to a missing topic within the deadline, retriable and naming the topic, and goes on', async () => {
    const queue = new SendQueue(client, 1000, 1000);
    try {
      const missing = `${prefix}missing`;
      const started = Date.now();
      const err = await outcome(queue.enqueue(missing, { key: 'k', value: 'v' }));
      expect(Date.now() - started).toBeLessThan(1000 + 500);
      expect(err).toBeInstanceOf(SendError);
      expect((err as SendError).refused).toBe(false);
      expect((err as SendError).message).toContain(missing);
      await queue.enqueue(topic, { key: 'after', value: 'after-missing' });
    } finally {
      await queue.close();
    }
  });

  it('rejects calls after close, and a header value that is neither bytes nor text as refused', async () => {
    const queue = new SendQueue(client);
    const bad = await outcome(queue.enqueue(topic, { value: 'v', headers: { bad: 5 as unknown as string } }));
    expect(bad).toBeInstanceOf(SendError);
    expect((bad as SendError).refused).toBe(true);
    const pending = outcome(queue.enqueue(topic, { value: 'queued at close' }));
    await queue.close();
    expect(await pending).toBeInstanceOf(SendError);
    expect(await outcome(queue.enqueue(topic, { value: 'late' }))).toBeInstanceOf(SendError);
  });
});
