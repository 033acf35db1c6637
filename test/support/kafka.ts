// Real-broker helpers for tests: a unique topic prefix per test file, and a collector for result topics.
import { randomBytes } from 'node:crypto';
import { Kafka, logLevel, type Consumer, type IHeaders, type Producer } from 'kafkajs';

export function brokers(): string[] {
  return (process.env.KAFKA_BROKERS || '127.0.0.1:9092').split(',');
}

export function testKafka(clientId = 'pattern-worker-test'): Kafka {
  return new Kafka({ clientId, brokers: brokers(), logLevel: logLevel.NOTHING, retry: { retries: 10 } });
}

/** A topic prefix no other test run uses, so tests never see each other's messages. */
export function uniquePrefix(): string {
  return `t${randomBytes(4).toString('hex')}.`;
}

export interface CollectedMessage {
  topic: string;
  partition: number;
  offset: string;
  key: Buffer | null;
  value: Buffer | null;
  headers: IHeaders;
  timestamp: string;
  /** When the collector received it (Date.now()), for latency checks. */
  receivedAt: number;
  json<T = Record<string, unknown>>(): T;
}

/** Consumes topics from the beginning and keeps every message, for assertions. */
export class Collector {
  readonly messages: CollectedMessage[] = [];
  readonly #consumer: Consumer;
  readonly #topics: string[];

  constructor(kafka: Kafka, topics: string[]) {
    this.#topics = topics;
    this.#consumer = kafka.consumer({
      groupId: `collector-${randomBytes(4).toString('hex')}`,
      maxWaitTimeInMs: 50,
    });
  }

  async start(): Promise<this> {
    await this.#consumer.connect();
    await this.#consumer.subscribe({ topics: this.#topics, fromBeginning: true });
    let joined!: () => void;
    const ready = new Promise<void>((resolve) => (joined = resolve));
    this.#consumer.on(this.#consumer.events.GROUP_JOIN, () => joined());
    await this.#consumer.run({
      eachMessage: ({ topic, partition, message }) => {
        this.messages.push({
          topic,
          partition,
          offset: message.offset,
          key: message.key,
          value: message.value,
          headers: message.headers ?? {},
          timestamp: message.timestamp,
          receivedAt: Date.now(),
          json<T>() {
            return JSON.parse(message.value?.toString('utf8') ?? 'null') as T;
          },
        });
        return Promise.resolve();
      },
    });
    await ready;
    return this;
  }

  on(topic: string): CollectedMessage[] {
    return this.messages.filter((m) => m.topic === topic);
  }

  async waitFor(
    predicate: (messages: CollectedMessage[]) => boolean,
    timeoutMs = 20_000,
    what = 'messages',
  ): Promise<CollectedMessage[]> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate(this.messages)) {
      if (Date.now() > deadline) {
        throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; have ${this.messages.length}`);
      }
      await new Promise((r) => setTimeout(r, 25));
    }
    return this.messages;
  }

  /** Waits until `count` messages are on `topic`. */
  async waitForCount(topic: string, count: number, timeoutMs = 20_000): Promise<CollectedMessage[]> {
    await this.waitFor(
      (all) => all.filter((m) => m.topic === topic).length >= count,
      timeoutMs,
      `${count} on ${topic}`,
    );
    return this.on(topic);
  }

  async stop(): Promise<void> {
    await this.#consumer.disconnect();
  }
}

export async function connectedProducer(kafka: Kafka): Promise<Producer> {
  const producer = kafka.producer({ allowAutoTopicCreation: false });
  await producer.connect();
  return producer;
}
