// Reads one partition of the shared reply topic, without a consumer group: a PartitionFetcher reads the
// partition directly. It starts at the partition's end offset taken before start() resolves (so before any
// request is sent): no reply can be missed. It commits nothing: a reply is read once, by whoever is
// waiting for it.
import { Consumer } from '@platformatic/kafka';
import type { InboundMessage } from '../engine/records.ts';
import type { KafkaAdmin } from './admin.ts';
import type { KafkaClient } from './client.ts';
import { PartitionFetcher } from './fetcher.ts';
import { toInbound } from './inbound.ts';
import { createTopicsAndWait, DEFAULT_LAYOUT, REPLY_RETENTION_MS, whenServed } from './topic-admin.ts';

/** A reply as read: coordinates, key, value, headers (bytes, in a map without a prototype). */
export type ReplyMessage = InboundMessage;

export interface ReplyConsumerOptions {
  client: KafkaClient;
  topic: string;
  /** A fixed partition; otherwise one is picked at random. */
  partition?: number;
  /** Create the reply topic when it is missing (needs the CreateTopics right). */
  createTopic: boolean;
  /** Topics that must exist (the request topics), checked on start for a clear error. */
  requireTopics: string[];
  onReply(message: ReplyMessage): void;
  /** How long start() may wait for the brokers to serve the reply partition's end offset. */
  startTimeoutMs: number;
}

async function partitionCount(
  admin: KafkaAdmin,
  topic: string,
  create: boolean,
  required: string[],
): Promise<number> {
  const existing = new Set(await admin.listTopics());
  const missing = required.filter((t) => !existing.has(t));
  if (missing.length > 0) {
    throw new Error(
      `request topic${missing.length > 1 ? 's' : ''} ${missing.join(', ')} do${missing.length > 1 ? '' : 'es'} not exist; ` +
        'check the topic prefix, or create them with `patterns topics create`',
    );
  }
  if (!existing.has(topic)) {
    if (!create) {
      throw new Error(`reply topic "${topic}" does not exist; create it with \`patterns topics create\``);
    }
    await createTopicsAndWait(admin, [
      {
        topic,
        numPartitions: DEFAULT_LAYOUT.replyPartitions ?? 12,
        configEntries: [{ name: 'retention.ms', value: REPLY_RETENTION_MS }],
      },
    ]);
  }
  const metadata = await whenServed(
    () => admin.fetchTopicMetadata({ topics: [topic] }),
    `reply topic ${topic}`,
  );
  return metadata.topics[0]?.partitions.length ?? 0;
}

const describe = (err: unknown) => (err instanceof Error ? err.message : String(err));

export class ReplyConsumer {
  readonly topic: string;
  partition = -1;
  readonly #options: ReplyConsumerOptions;
  #consumer: Consumer | undefined;
  #fetcher: PartitionFetcher | undefined;

  constructor(options: ReplyConsumerOptions) {
    this.#options = options;
    this.topic = options.topic;
  }

  /** Picks the partition (creating the reply topic if allowed) and resolves once its end offset is known
   * and fetching from there has begun. */
  async start(): Promise<void> {
    const { client, topic, startTimeoutMs } = this.#options;
    const admin = client.admin();
    try {
      const partitions = await partitionCount(
        admin,
        topic,
        this.#options.createTopic,
        this.#options.requireTopics,
      );
      const wanted = this.#options.partition ?? Math.floor(Math.random() * partitions);
      if (!Number.isInteger(wanted) || wanted < 0 || wanted >= partitions) {
        throw new Error(`reply partition ${wanted} is out of range: "${topic}" has ${partitions} partitions`);
      }
      this.partition = wanted;
    } finally {
      await admin.disconnect().catch(() => undefined);
    }

    // Only fetch, metadata and offsets are asked of this consumer: it never joins its group.
    const consumer = new Consumer({
      ...client.options('-reply'),
      groupId: `${client.clientId}.reply-reader`,
    });
    consumer.on('error', () => undefined);
    let lastError: unknown;
    const fetcher = new PartitionFetcher({
      consumer,
      connection: client.options('-reply'),
      startFrom: 'latest',
      maxWaitMs: 250,
      onRecords: (_topic, _partition, records) => {
        for (const record of records) this.#options.onReply(toInbound(record));
      },
      onError: (_what, err) => {
        lastError = err;
      },
    });
    this.#consumer = consumer;
    this.#fetcher = fetcher;
    fetcher.add([{ topic, partition: this.partition }]);
    fetcher.start();
    // The fetcher retries its offset requests until the brokers serve the partition (a new broker, a new
    // topic whose leader is not settled yet): wait for that, within the bound.
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const reason = lastError === undefined ? '' : ` (last error: ${describe(lastError)})`;
        reject(
          new Error(
            `reply consumer could not read the end offset of ${topic}/${this.partition} within ${startTimeoutMs} ms${reason}`,
            { cause: lastError },
          ),
        );
      }, startTimeoutMs);
    });
    try {
      await Promise.race([fetcher.positioned(), timedOut]);
    } catch (err) {
      await this.stop();
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  async stop(): Promise<void> {
    const fetcher = this.#fetcher;
    const consumer = this.#consumer;
    this.#fetcher = undefined;
    this.#consumer = undefined;
    await fetcher?.stop();
    await consumer?.close().catch(() => undefined);
  }
}
