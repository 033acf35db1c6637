// One isolated stack per test file: a throwaway database, a unique topic prefix with its topics created,
// a producer, and a collector on the result and dead-letter topics.
import type { Kafka, Message, Producer } from 'kafkajs';
import { TopicNames, type RequestTopic } from '../../src/contracts/topics.ts';
import { KafkaClient } from '../../src/messaging/kafka/client.ts';
import { createTopics, createTopicsAndWait } from '../../src/messaging/kafka/topic-admin.ts';
import { createTestDatabase, type TestDatabase } from './database.ts';
import { brokers, Collector, connectedProducer, testKafka, uniquePrefix } from './kafka.ts';
import { startWorker, type WorkerProcess } from './worker-process.ts';

export interface Stack {
  db: TestDatabase;
  names: TopicNames;
  kafka: Kafka;
  producer: Producer;
  results: Collector;
  env: Record<string, string>;
  send(topic: RequestTopic, messages: (Message | Record<string, unknown>)[]): Promise<void>;
  worker(extraEnv?: Record<string, string>): Promise<WorkerProcess>;
  close(): Promise<void>;
}

/**
 * Right after topics are created the broker can still answer "does not host this topic-partition" while
 * it applies the new metadata (seen when several test files create topics at once): try again shortly.
 */
async function startCollector(kafka: Kafka, topics: string[], attempts = 4): Promise<Collector> {
  for (let attempt = 1; ; attempt++) {
    const collector = new Collector(kafka, topics);
    try {
      return await collector.start();
    } catch (err) {
      await collector.stop().catch(() => undefined);
      const retriable = err instanceof Error && /topic-partition|leader/i.test(err.message);
      if (!retriable || attempt >= attempts) throw err;
      await new Promise((r) => setTimeout(r, 500 * attempt));
    }
  }
}

export async function createStack(
  options: {
    partitions?: number;
    extraTopics?: string[];
    /** Create and collect pattern.reply. */ reply?: boolean;
  } = {},
): Promise<Stack> {
  const db = await createTestDatabase();
  const names = new TopicNames(uniquePrefix());
  const extraTopics = [...(options.extraTopics ?? []), ...(options.reply ? [names.reply()] : [])];
  const kafka = testKafka();
  // The worker's own admin client creates the topics, as `patterns topics create` does.
  const admin = new KafkaClient('pattern-worker-test', { brokers: brokers() }).admin();
  await admin.connect();
  const partitions = options.partitions ?? 3;
  await createTopics(admin, names, {
    requestPartitions: partitions,
    resultPartitions: 3,
    dlqPartitions: 1,
    replicationFactor: 1,
    replyPartitions: 3,
  });
  if (extraTopics.length) {
    await createTopicsAndWait(
      admin,
      extraTopics.map((topic) => ({ topic, numPartitions: 3 })),
    );
  }
  await admin.disconnect();
  const producer = await connectedProducer(kafka);
  const observed = names
    .all()
    .filter((t) => t.role !== 'request')
    .map((t) => t.name);
  const results = await startCollector(kafka, [...observed, ...extraTopics]);
  const env = {
    DATABASE_URL: db.url,
    KAFKA_BROKERS: process.env.KAFKA_BROKERS ?? '127.0.0.1:9092',
    TOPIC_PREFIX: names.prefix,
    KAFKA_GROUP_ID: `${names.prefix}worker`,
    DB_POOL_MIN: '1',
    DB_POOL_MAX: '5',
    WORKER_RETRY_INITIAL_MS: '100',
    WORKER_RETRY_MAX_MS: '1000',
    LOG_LEVEL: 'warn',
  };
  const workers: WorkerProcess[] = [];
  return {
    db,
    names,
    kafka,
    producer,
    results,
    env,
    async send(topic, messages) {
      await producer.send({
        topic: names.request(topic),
        acks: -1,
        messages: messages.map((m) =>
          'value' in m && (Buffer.isBuffer(m.value) || typeof m.value === 'string' || m.value === null)
            ? (m as Message)
            : { value: JSON.stringify(m) },
        ),
      });
    },
    async worker(extraEnv = {}) {
      const w = await startWorker({ ...env, ...extraEnv });
      workers.push(w);
      await w.waitReady();
      return w;
    },
    async close() {
      // SIGTERM, so that a worker exits normally (and writes its coverage); SIGKILL after 5 s.
      await Promise.all(workers.map((w) => w.stop('SIGTERM', 5_000)));
      await results.stop();
      await producer.disconnect();
      await db.drop();
    },
  };
}
