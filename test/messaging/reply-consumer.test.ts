// The reply reader without a consumer group (issue 25, point 5), on the real broker: it reads exactly its
// partition from the end taken before start() resolves, whatever was there before; it creates a missing
// reply topic and is ready at once on it; it names missing topics clearly. PatternClient round trips
// through it with a stand-in responder (kafkajs, an independent client) instead of the worker.
import { randomUUID } from 'node:crypto';
import type { Producer } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { PatternClient } from '../../src/client/index.ts';
import { HEADERS, readReplyPartition } from '../../src/contracts/headers.ts';
import { TopicNames } from '../../src/contracts/topics.ts';
import { KafkaClient } from '../../src/messaging/kafka/client.ts';
import { ReplyConsumer, type ReplyMessage } from '../../src/messaging/kafka/reply-consumer.ts';
import { createTopicsAndWait } from '../../src/messaging/kafka/topic-admin.ts';
import { brokers, connectedProducer, testKafka, uniquePrefix } from '../support/kafka.ts';

vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

const client = new KafkaClient('reply-consumer-test', { brokers: brokers() });
const kafka = testKafka();

async function until(check: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function createTopics(topics: { topic: string; numPartitions: number }[]): Promise<void> {
  const admin = client.admin();
  try {
    await createTopicsAndWait(admin, topics);
  } finally {
    await admin.disconnect();
  }
}

describe('ReplyConsumer', () => {
  const prefix = uniquePrefix();
  const names = new TopicNames(prefix);
  let producer: Producer;
  beforeAll(async () => {
    await createTopics(names.requests().map((topic) => ({ topic, numPartitions: 1 })));
    producer = await connectedProducer(kafka);
  });
  afterAll(async () => {
    await producer.disconnect();
  });

  const reader = (received: ReplyMessage[], extra: { partition?: number; createTopic?: boolean } = {}) =>
    new ReplyConsumer({
      client,
      topic: names.reply(),
      createTopic: extra.createTopic ?? true,
      requireTopics: names.requests(),
      startTimeoutMs: 30_000,
      ...(extra.partition === undefined ? {} : { partition: extra.partition }),
      onReply: (m) => void received.push(m),
    });

  it('creates a missing reply topic and reads its partition from the first record sent after start', async () => {
    const received: ReplyMessage[] = [];
    const replies = reader(received, { partition: 2 });
    // The topic is created here: start() must wait for whatever the new topic needs before it resolves.
    await replies.start();
    try {
      expect(replies.partition).toBe(2);
      await producer.send({
        topic: names.reply(),
        messages: [
          { partition: 1, value: 'other partition' },
          {
            partition: 2,
            key: 'k',
            value: 'first',
            headers: { [HEADERS.correlationId]: 'c1', x: ['1', '2'] },
          },
          { partition: 2, value: 'second' },
        ],
      });
      await until(() => received.length >= 2, 'two replies');
      await new Promise((r) => setTimeout(r, 300));
      expect(received.map((m) => m.value?.toString())).toEqual(['first', 'second']);
      const [first] = received;
      expect(first?.topic).toBe(names.reply());
      expect(first?.partition).toBe(2);
      expect(first?.offset).toBe('0');
      expect(first?.key?.toString()).toBe('k');
      expect(first?.headers[HEADERS.correlationId]).toEqual(Buffer.from('c1'));
      expect(first?.headers.x).toEqual([Buffer.from('1'), Buffer.from('2')]);
      expect(Object.getPrototypeOf(first?.headers)).toBeNull();
    } finally {
      await replies.stop();
    }
  });

  it('starts at the end: what the partition held before start() is not read', async () => {
    await producer.send({
      topic: names.reply(),
      messages: Array.from({ length: 5 }, (_, i) => ({ partition: 3, value: `old ${i}` })),
    });
    const received: ReplyMessage[] = [];
    const replies = reader(received, { partition: 3 });
    await replies.start();
    try {
      // Sent right after start() resolved, as a request's reply can be: it must not be missed.
      await producer.send({ topic: names.reply(), messages: [{ partition: 3, value: 'new' }] });
      await until(() => received.length >= 1, 'the new reply');
      await new Promise((r) => setTimeout(r, 300));
      expect(received.map((m) => [m.offset, m.value?.toString()])).toEqual([['5', 'new']]);
    } finally {
      await replies.stop();
    }
    // Stopped: nothing more is read.
    await producer.send({ topic: names.reply(), messages: [{ partition: 3, value: 'after stop' }] });
    await new Promise((r) => setTimeout(r, 500));
    expect(received).toHaveLength(1);
  });

  it('picks a partition of the topic at random when none is given', async () => {
    const replies = reader([]);
    await replies.start();
    await replies.stop();
    expect(replies.partition).toBeGreaterThanOrEqual(0);
    expect(replies.partition).toBeLessThan(12);
  });

  it('names missing request topics, a missing reply topic it may not create, a partition out of range', async () => {
    const other = new TopicNames(uniquePrefix());
    const missingRequests = new ReplyConsumer({
      client,
      topic: other.reply(),
      createTopic: true,
      requireTopics: other.requests(),
      startTimeoutMs: 10_000,
      onReply: () => undefined,
    });
    await expect(missingRequests.start()).rejects.toThrowError(
      /request topics .*pattern\.insert.* do not exist; check the topic prefix/,
    );

    await createTopics(other.requests().map((topic) => ({ topic, numPartitions: 1 })));
    const noReplyTopic = new ReplyConsumer({
      client,
      topic: other.reply(),
      createTopic: false,
      requireTopics: other.requests(),
      startTimeoutMs: 10_000,
      onReply: () => undefined,
    });
    await expect(noReplyTopic.start()).rejects.toThrowError(
      `reply topic "${other.reply()}" does not exist; create it with \`patterns topics create\``,
    );

    await expect(reader([], { partition: 12 }).start()).rejects.toThrowError(
      `reply partition 12 is out of range: "${names.reply()}" has 12 partitions`,
    );
  });
});

describe('PatternClient over the reply reader, with a stand-in responder', () => {
  const prefix = uniquePrefix();
  const names = new TopicNames(prefix);
  const responder = kafka.consumer({ groupId: `responder-${randomUUID()}`, maxWaitTimeInMs: 50 });
  let producer: Producer;
  beforeAll(async () => {
    await createTopics(names.requests().map((topic) => ({ topic, numPartitions: 1 })));
    producer = await connectedProducer(kafka);
    await responder.connect();
    await responder.subscribe({ topics: names.requests(), fromBeginning: true });
    await responder.run({
      eachMessage: async ({ message }) => {
        const headers = message.headers ?? {};
        const replyTopic = headers[HEADERS.replyTopic]?.toString();
        const partition = readReplyPartition(headers[HEADERS.replyPartition]);
        if (!replyTopic || !partition.ok || partition.value === undefined) return;
        const request = JSON.parse(message.value?.toString() ?? '{}') as Record<string, unknown>;
        await producer.send({
          topic: replyTopic,
          messages: [
            {
              partition: partition.value,
              value: JSON.stringify({
                success: true,
                data: { echoed: request.operation },
                error: null,
                metadata: {
                  correlation_id: request.correlation_id,
                  operation: request.operation,
                  node: 'stand-in',
                  duration_ms: 0,
                },
              }),
              headers: { [HEADERS.correlationId]: headers[HEADERS.correlationId] ?? '' },
            },
          ],
        });
      },
    });
  });
  afterAll(async () => {
    await responder.disconnect();
    await producer.disconnect();
  });

  it('connects on a reply topic it creates and gets every answer of many concurrent requests', async () => {
    const patterns = await new PatternClient({
      brokers: brokers(),
      topicPrefix: prefix,
      clientId: 'echo-client',
      timeoutMs: 30_000,
    }).connect();
    try {
      const results = await Promise.all(Array.from({ length: 200 }, () => patterns.getTop({ limit: 1 })));
      expect(
        results.every((r) => r.success && (r.data as unknown as { echoed: string }).echoed === 'get_top'),
      ).toBe(true);
      expect(new Set(results.map((r) => r.metadata.correlation_id)).size).toBe(200);
      expect(patterns.inFlight).toBe(0);
    } finally {
      await patterns.close();
    }
  });
});
