// Creates and checks the worker's topics. Request topics keep their data forever so that replay from
// the beginning works; results are kept for a week; dead letters for a month.
import type { Admin, ITopicConfig } from 'kafkajs';
import type { TopicNames, TopicRole } from '../contracts/topics.ts';

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

export function topicConfigs(names: TopicNames, layout: TopicLayout = DEFAULT_LAYOUT): ITopicConfig[] {
  const reply: ITopicConfig = {
    topic: names.reply(),
    numPartitions: layout.replyPartitions ?? DEFAULT_LAYOUT.replyPartitions,
    replicationFactor: layout.replicationFactor,
    configEntries: [
      { name: 'retention.ms', value: REPLY_RETENTION_MS },
      { name: 'cleanup.policy', value: 'delete' },
    ],
  };
  const own: ITopicConfig[] = names.all().map(({ name, role }) => ({
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
      // A dead letter is the request plus its dead-letter headers: a request at the size limit must fit.
      ...(role === 'dlq' ? [{ name: 'max.message.bytes', value: String(DLQ_MAX_MESSAGE_BYTES) }] : []),
    ],
  }));
  return [...own, reply];
}

/** Creates whichever of the worker's topics are missing; returns the names it created. */
export async function createTopics(
  admin: Admin,
  names: TopicNames,
  layout: TopicLayout = DEFAULT_LAYOUT,
): Promise<string[]> {
  const existing = new Set(await admin.listTopics());
  const wanted = topicConfigs(names, layout).filter((t) => !existing.has(t.topic));
  if (wanted.length === 0) return [];
  await createTopicsAndWait(admin, wanted);
  return wanted.map((t) => t.topic);
}

const PROPAGATING = new Set([
  'UNKNOWN_TOPIC_OR_PARTITION',
  'LEADER_NOT_AVAILABLE',
  'NOT_LEADER_FOR_PARTITION',
]);

/**
 * Creates `topics` and waits until every partition answers an offset request at its leader. kafkajs's own
 * `waitForLeaders` gives up on UNKNOWN_TOPIC_OR_PARTITION, which a KRaft broker answers for a moment after
 * creating a topic, and a leader named in metadata can still refuse offset requests for a moment after that.
 */
export async function createTopicsAndWait(
  admin: Admin,
  topics: ITopicConfig[],
  timeoutMs = 30_000,
): Promise<void> {
  await admin.createTopics({ topics, waitForLeaders: false });
  const names = topics.map((t) => t.topic);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let waitingFor: string;
    try {
      const metadata = await admin.fetchTopicMetadata({ topics: names });
      const leaderless = metadata.topics.find((t) => t.partitions.some((p) => p.leader < 0));
      if (!leaderless) {
        for (const topic of names) await admin.fetchTopicOffsets(topic);
        return;
      }
      waitingFor = `a leader for ${leaderless.name}`;
    } catch (err) {
      const type = (err as { type?: string }).type;
      if (type === undefined || !PROPAGATING.has(type)) throw err;
      waitingFor = `${names.join(', ')} to be served (${type})`;
    }
    if (Date.now() > deadline) {
      throw new Error(`created topics but timed out after ${timeoutMs} ms waiting for ${waitingFor}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

export async function missingTopics(admin: Admin, names: TopicNames): Promise<string[]> {
  const existing = new Set(await admin.listTopics());
  return names
    .all()
    .map((t) => t.name)
    .filter((t) => !existing.has(t));
}
