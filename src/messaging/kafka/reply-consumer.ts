// Reads one partition of the shared reply topic. kafkajs has no manual assignment, so each client is
// the only member of its own consumer group and a fixed assigner gives it exactly its partition. It
// starts at the partition's end offset taken before any request is sent, so no reply can be missed,
// and commits nothing: a reply is read once, by whoever is waiting for it.
import { randomUUID } from 'node:crypto';
import {
  AssignerProtocol,
  type Admin,
  type Consumer,
  type Kafka,
  type KafkaMessage,
  type PartitionAssigner,
} from 'kafkajs';
import { createTopicsAndWait, DEFAULT_LAYOUT, REPLY_RETENTION_MS, whenServed } from './topic-admin.ts';

const { MemberAssignment, MemberMetadata } = AssignerProtocol;

export function fixedPartitionAssigner(topic: string, partition: number): PartitionAssigner {
  return () => ({
    name: 'PatternClientFixedPartition',
    version: 1,
    assign({ members }) {
      return Promise.resolve(
        members.map((member, i) => ({
          memberId: member.memberId,
          // Only one member is expected; any other gets nothing rather than a duplicate stream.
          memberAssignment: MemberAssignment.encode({
            version: 1,
            assignment: i === 0 ? { [topic]: [partition] } : {},
            userData: Buffer.alloc(0),
          }),
        })),
      );
    },
    protocol({ topics }) {
      return {
        name: 'PatternClientFixedPartition',
        metadata: MemberMetadata.encode({ version: 1, topics, userData: Buffer.alloc(0) }),
      };
    },
  });
}

export interface ReplyConsumerOptions {
  kafka: Kafka;
  topic: string;
  clientId: string;
  /** A fixed partition; otherwise one is picked at random. */
  partition?: number;
  /** Create the reply topic when it is missing (needs the CreateTopics right). */
  createTopic: boolean;
  /** Topics that must exist (the request topics), checked on start for a clear error. */
  requireTopics: string[];
  onReply(message: KafkaMessage): void;
  joinTimeoutMs: number;
}

async function partitionCount(
  admin: Admin,
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
        numPartitions: DEFAULT_LAYOUT.replyPartitions,
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

export class ReplyConsumer {
  readonly topic: string;
  partition = -1;
  #consumer: Consumer | undefined;
  readonly #options: ReplyConsumerOptions;

  constructor(options: ReplyConsumerOptions) {
    this.#options = options;
    this.topic = options.topic;
  }

  async start(): Promise<void> {
    const { kafka, topic } = this.#options;
    const admin = kafka.admin();
    await admin.connect();
    let endOffset: string;
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
      const offsets = await whenServed(() => admin.fetchTopicOffsets(topic), `reply topic ${topic}`);
      endOffset = offsets.find((o) => o.partition === wanted)?.high ?? '0';
    } finally {
      await admin.disconnect();
    }

    const consumer = kafka.consumer({
      groupId: `${this.#options.clientId}.reply.${randomUUID()}`,
      partitionAssigners: [fixedPartitionAssigner(topic, this.partition)],
      maxWaitTimeInMs: 250,
      allowAutoTopicCreation: false,
    });
    this.#consumer = consumer;
    // Nothing is committed, so every join (the first, and any after a broker restart or a consumer crash)
    // seeks to the next unread reply: the end offset taken before any request was sent, then the offset
    // after the last reply read. The seek happens in the join event, before the first fetch of that
    // generation; seeking right after run() fails while a new broker has no group coordinator yet
    // ("Consumer group was not initialized"), since kafkajs then restarts its consumer group.
    let next = endOffset;
    const joined = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`reply consumer did not join within ${this.#options.joinTimeoutMs} ms`)),
        this.#options.joinTimeoutMs,
      );
      consumer.on(consumer.events.GROUP_JOIN, () => {
        consumer.seek({ topic, partition: this.partition, offset: next });
        clearTimeout(timer);
        resolve();
      });
    });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: false });
    await consumer.run({
      autoCommit: false,
      eachBatch: ({ batch }) => {
        for (const message of batch.messages) {
          this.#options.onReply(message);
          next = (BigInt(message.offset) + 1n).toString();
        }
        return Promise.resolve();
      },
    });
    try {
      await joined;
    } catch (err) {
      await consumer.disconnect();
      throw err;
    }
  }

  async stop(): Promise<void> {
    await this.#consumer?.disconnect();
    this.#consumer = undefined;
  }
}
