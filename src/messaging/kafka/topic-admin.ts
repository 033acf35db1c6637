// Creates and checks the worker's topics. Request topics keep their data forever so that replay from
// the beginning works; results are kept for a week; dead letters for a month.
import type { TopicNames, TopicRole } from '../../contracts/topics.ts';
import { KafkaAdminError, kafkaErrorType, type KafkaAdmin, type TopicSpec } from './admin.ts';

export const RETENTION_MS: Record<TopicRole, string> = {
  request: '-1',
  result: String(7 * 24 * 3600 * 1000),
  dlq: String(30 * 24 * 3600 * 1000),
};

/** Kafka's default message.max.bytes (1 MiB plus record overhead) plus room for the dead-letter headers. */
export const DLQ_MAX_MESSAGE_BYTES = 1_048_588 + 64 * 1024;

/** Replies are read once, seconds after they are written. */
export const REPLY_RETENTION_MS = String(3600 * 1000);

export interface TopicLayout {
  requestPartitions: number;
  resultPartitions: number;
  dlqPartitions: number;
  replicationFactor: number;
  /** Partitions of the shared reply topic: one per concurrently connected PatternClient is ideal. */
  replyPartitions?: number;
}

export const DEFAULT_LAYOUT: TopicLayout = {
  requestPartitions: 6,
  resultPartitions: 6,
  dlqPartitions: 1,
  replicationFactor: 1,
  replyPartitions: 12,
};

export function topicConfigs(names: TopicNames, layout: TopicLayout = DEFAULT_LAYOUT): TopicSpec[] {
  const reply: TopicSpec = {
    topic: names.reply(),
    numPartitions: layout.replyPartitions ?? DEFAULT_LAYOUT.replyPartitions,
    replicationFactor: layout.replicationFactor,
    configEntries: [
      { name: 'retention.ms', value: REPLY_RETENTION_MS },
      { name: 'cleanup.policy', value: 'delete' },
    ],
  };
  const own: TopicSpec[] = names.all().map(({ name, role }) => ({
    topic: name,
    numPartitions:
      role === 'request'
        ? layout.requestPartitions
        : role === 'result'
          ? layout.resultPartitions
          : layout.dlqPartitions,
    replicationFactor: layout.replicationFactor,
    configEntries: [
      { name: 'retention.ms', value: RETENTION_MS[role] },
      { name: 'cleanup.policy', value: 'delete' },
      // Request records are stamped by the broker when appended (the order the live worker can see them
      // in), not by producer clocks: replay merges partitions and topics by this time (issue 22).
      ...(role === 'request' ? [{ name: 'message.timestamp.type', value: 'LogAppendTime' }] : []),
      // A dead letter is the request plus its dead-letter headers: a request at the size limit must fit.
      ...(role === 'dlq' ? [{ name: 'max.message.bytes', value: String(DLQ_MAX_MESSAGE_BYTES) }] : []),
    ],
  }));
  return [...own, reply];
}

/** Creates whichever of the worker's topics are missing; returns the names it created. */
export async function createTopics(
  admin: KafkaAdmin,
  names: TopicNames,
  layout: TopicLayout = DEFAULT_LAYOUT,
): Promise<string[]> {
  const existing = new Set(await admin.listTopics());
  const wanted = topicConfigs(names, layout).filter((t) => !existing.has(t.topic));
  if (wanted.length === 0) return [];
  await createTopicsAndWait(admin, wanted);
  return wanted.map((t) => t.topic);
}

const PROPAGATING = new Set(['UNKNOWN_TOPIC_OR_PARTITION', 'LEADER_NOT_AVAILABLE', 'NOT_LEADER_OR_FOLLOWER']);

/**
 * Runs `read` until the broker serves the topics it asks about. For a moment after a topic is created, a
 * KRaft broker answers UNKNOWN_TOPIC_OR_PARTITION, and a leader named in metadata can still refuse offset
 * requests; the client gives up on both after its own few retries.
 */
export async function whenServed<T>(read: () => Promise<T>, what: string, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await read();
    } catch (err) {
      const type = kafkaErrorType(err);
      if (type === undefined || !PROPAGATING.has(type)) throw err;
      if (Date.now() > deadline) {
        throw new Error(`timed out after ${timeoutMs} ms waiting for the broker to serve ${what} (${type})`, {
          cause: err,
        });
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Creates `topics` and waits until every partition has a leader that answers offset requests. */
export async function createTopicsAndWait(
  admin: KafkaAdmin,
  topics: TopicSpec[],
  timeoutMs = 30_000,
): Promise<void> {
  await admin.createTopics({ topics });
  const names = topics.map((t) => t.topic);
  await whenServed(
    async () => {
      const metadata = await admin.fetchTopicMetadata({ topics: names });
      const leaderless = metadata.topics.find((t) => t.partitions.some((p) => p.leader < 0));
      if (leaderless)
        throw new KafkaAdminError(`no leader yet for ${leaderless.name}`, 'LEADER_NOT_AVAILABLE');
      for (const topic of names) await admin.fetchTopicOffsets(topic);
    },
    names.join(', '),
    timeoutMs,
  );
}

export async function missingTopics(admin: KafkaAdmin, names: TopicNames): Promise<string[]> {
  const existing = new Set(await admin.listTopics());
  return names
    .all()
    .map((t) => t.name)
    .filter((t) => !existing.has(t));
}
