// Kafka plumbing for the scenarios: a unique topic prefix with the worker's topics, a fast bulk producer,
// and a counter that waits until a topic has received a number of messages.
import { randomBytes } from 'node:crypto';
import { Kafka, logLevel, type Consumer, type Message, type Producer } from 'kafkajs';
import { TopicNames } from '../../src/contracts/topics.ts';
import { KafkaClient } from '../../src/messaging/kafka/client.ts';
import { createTopics } from '../../src/messaging/kafka/topic-admin.ts';

export const BROKERS = (process.env.KAFKA_BROKERS || '127.0.0.1:9092').split(',');

export function benchKafka(clientId = 'bench'): Kafka {
  return new Kafka({ clientId, brokers: BROKERS, logLevel: logLevel.NOTHING, retry: { retries: 10 } });
}

/** A fresh prefix with every topic the worker needs; partitions as in production by default. */
export async function createBenchTopics(_kafka: Kafka, partitions = 6): Promise<TopicNames> {
  const names = new TopicNames(`bench${randomBytes(4).toString('hex')}.`);
  // The product's own admin (topic-admin.ts takes it), from the same brokers.
  const admin = new KafkaClient('bench', { brokers: BROKERS }).admin();
  await admin.connect();
  try {
    await createTopics(admin, names, {
      requestPartitions: partitions,
      resultPartitions: partitions,
      dlqPartitions: 1,
      replicationFactor: 1,
      replyPartitions: 4,
    });
  } finally {
    await admin.disconnect();
  }
  return names;
}

export async function deleteBenchTopics(kafka: Kafka, names: TopicNames): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const mine = (await admin.listTopics()).filter((t) => t.startsWith(names.prefix));
    if (mine.length > 0) await admin.deleteTopics({ topics: mine, timeout: 30_000 });
  } catch {
    // left for the broker's retention; prefixes are unique
  } finally {
    await admin.disconnect();
  }
}

export async function bulkProducer(kafka: Kafka): Promise<Producer> {
  const producer = kafka.producer({
    allowAutoTopicCreation: false,
    idempotent: true,
    maxInFlightRequests: 1,
  });
  await producer.connect();
  return producer;
}

/** Sends messages in batches of `batch`, with a few batches in flight, acks from all replicas. */
export async function produceAll(
  producer: Producer,
  topic: string,
  messages: Message[],
  batch = 1000,
): Promise<void> {
  const inFlight: Promise<unknown>[] = [];
  for (let i = 0; i < messages.length; i += batch) {
    inFlight.push(producer.send({ topic, acks: -1, messages: messages.slice(i, i + batch) }));
    if (inFlight.length >= 4) await inFlight.shift();
  }
  await Promise.all(inFlight);
}

/** Counts messages arriving on topics (from the start) and resolves waiters once a count is reached. */
export class TopicCounter {
  count = 0;
  failures = 0;
  lastAt = 0;
  readonly #consumer: Consumer;
  readonly #topics: string[];
  #waiters: { n: number; resolve: () => void }[] = [];

  constructor(kafka: Kafka, topics: string[]) {
    this.#topics = topics;
    this.#consumer = kafka.consumer({
      groupId: `bench-counter-${randomBytes(4).toString('hex')}`,
      maxWaitTimeInMs: 50,
    });
  }

  async start(): Promise<this> {
    await this.#consumer.connect();
    await this.#consumer.subscribe({ topics: this.#topics, fromBeginning: true });
    const joined = new Promise<void>((resolve) =>
      this.#consumer.on(this.#consumer.events.GROUP_JOIN, () => resolve()),
    );
    await this.#consumer.run({
      autoCommit: false,
      eachBatch: ({ batch }) => {
        for (const m of batch.messages) {
          // Results are {"success":...} first; a cheap check instead of parsing every one.
          if (m.value && m.value.indexOf('"success":false') >= 0) this.failures++;
        }
        this.count += batch.messages.length;
        this.lastAt = performance.now();
        this.#waiters = this.#waiters.filter((w) => {
          if (this.count < w.n) return true;
          w.resolve();
          return false;
        });
        return Promise.resolve();
      },
    });
    await joined;
    return this;
  }

  waitFor(n: number, timeoutMs: number): Promise<void> {
    if (this.count >= n) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`only ${this.count} of ${n} messages arrived within ${timeoutMs} ms`)),
        timeoutMs,
      );
      this.#waiters.push({
        n,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      });
    });
  }

  async stop(): Promise<void> {
    await this.#consumer.disconnect();
  }
}

/** Waits until a consumer group has committed up to the end of a topic (its backlog is worked off). */
export async function waitForDrain(
  kafka: Kafka,
  groupId: string,
  topic: string,
  timeoutMs: number,
): Promise<boolean> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const ends = await admin.fetchTopicOffsets(topic);
      const [committed] = await admin.fetchOffsets({ groupId, topics: [topic] });
      const lag = ends.reduce((sum, end) => {
        const c = committed?.partitions.find((p) => p.partition === end.partition)?.offset ?? '-1';
        return sum + Math.max(0, Number(end.high) - Math.max(0, Number(c)));
      }, 0);
      if (lag === 0) return true;
      await new Promise((r) => setTimeout(r, 250));
    }
    return false;
  } finally {
    await admin.disconnect();
  }
}
