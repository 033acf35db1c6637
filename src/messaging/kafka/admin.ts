// The project's admin client: topics, their offsets, consumer groups and their committed offsets, over the
// admin client of @platformatic/kafka. Its parameters and results are plain objects owned by the project
// (offsets as decimal strings, as the rest of the code holds them); the library's types stay in here.
// Broker refusals are thrown as KafkaAdminError, whose `type` is Kafka's name for the error.
import {
  Admin,
  consumerGroupDescribeV0,
  FindCoordinatorKeyTypes,
  FetchIsolationLevels,
  ListOffsetTimestamps,
  UserError,
  type BaseOptions,
  type ClusterMetadata,
} from '@platformatic/kafka';
import { knownTopicId, topicIdOfCommitMetadata } from './commit-tags.ts';

/** A topic to create. */
export interface TopicSpec {
  topic: string;
  /** Default: the broker's num.partitions. */
  numPartitions?: number;
  /** Default: the broker's default.replication.factor. */
  replicationFactor?: number;
  configEntries?: { name: string; value: string }[];
}

export interface PartitionMetadata {
  partitionId: number;
  /** Broker id of the leader; negative while there is none. */
  leader: number;
  replicas: number[];
  isr: number[];
}

export interface TopicMetadata {
  name: string;
  /** Undefined where the broker has no topic ids. */
  id?: string | undefined;
  partitions: PartitionMetadata[];
}

/** The offsets a partition holds: [low, high). */
export interface PartitionWatermarks {
  partition: number;
  /** The earliest offset still held. */
  low: string;
  /** The offset the next record will get. */
  high: string;
  /** The last stable offset: what a read_committed reader can read up to now (below `high` while a
   * transaction there is open). */
  stable: string;
}

export interface PartitionOffset {
  partition: number;
  /** "-1" where there is none (nothing committed; no record at or after the time). */
  offset: string;
  /** A committed offset's: the id of the topic a worker read it from (commit-tags.ts), if it says. */
  topicId?: string | undefined;
}

export interface TopicOffsets {
  topic: string;
  partitions: PartitionOffset[];
}

export interface DescribedMember {
  memberId: string;
  clientId: string;
  host: string;
  /** Assigned partitions per topic. */
  partitions: Record<string, number[]>;
  /** The partitions the broker means this member to have (KIP-848 groups only): those of `partitions`
   * plus those still being given up by other members, minus those it is giving up. */
  targetPartitions?: Record<string, number[]>;
}

export interface DescribedGroup {
  groupId: string;
  /** As the broker names it: Empty, Stable, PreparingRebalance, Reconciling, Assigning, Dead, ... */
  state: string;
  /** The group protocol: 'consumer' (KIP-848) or 'classic'. */
  protocol: 'consumer' | 'classic';
  members: DescribedMember[];
}

function byTopic(assigned: { topicName: string; partitions: number[] }[]): Record<string, number[]> {
  const partitions: Record<string, number[]> = {};
  for (const t of assigned) partitions[t.topicName] = [...t.partitions];
  return partitions;
}

/** A refusal by the broker, or a failure to reach it. */
export class KafkaAdminError extends Error {
  /** Kafka's name of the error (UNKNOWN_TOPIC_OR_PARTITION, NOT_LEADER_OR_FOLLOWER, ...), when it has one. */
  readonly type: string | undefined;

  constructor(message: string, type: string | undefined, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'KafkaAdminError';
    this.type = type;
  }
}

interface LibraryError {
  message?: string;
  apiId?: string;
  serverErrorMessage?: string | null;
  canRetry?: boolean;
  errors?: unknown[];
  cause?: unknown;
}

/** Every error of a library error's chain (MultipleErrors hold theirs in `errors`). */
function chain(err: unknown, depth = 0): LibraryError[] {
  if (depth > 8 || typeof err !== 'object' || err === null) return [];
  const e = err as LibraryError;
  return [e, ...(e.errors ?? []).flatMap((inner) => chain(inner, depth + 1)), ...chain(e.cause, depth + 1)];
}

const UNKNOWN_TOPIC = /^Unknown topic (.*)\.$/;

/** The topic the library says does not exist ("Unknown topic <name>."), if that is what `err` says. */
export function unknownTopicOf(err: unknown): string | undefined {
  for (const e of chain(err)) {
    const named = e instanceof UserError ? UNKNOWN_TOPIC.exec(e.message)?.[1] : undefined;
    if (named !== undefined) return named;
  }
  return undefined;
}

/** The broker's name for `err`: the first protocol error of the chain; unknown topics are named too. */
export function kafkaErrorType(err: unknown): string | undefined {
  for (const e of chain(err)) {
    if (typeof e.apiId === 'string') return e.apiId;
    if (e instanceof UserError && UNKNOWN_TOPIC.test(e.message)) return 'UNKNOWN_TOPIC_OR_PARTITION';
    // KafkaAdminError, or an error that names its Kafka error the same way.
    if (typeof (e as { type?: unknown }).type === 'string') return (e as { type: string }).type;
  }
  return undefined;
}

/** True unless some error of the chain says it cannot succeed on a retry. */
function retriable(err: unknown): boolean {
  return !chain(err).some((e) => e.canRetry === false);
}

/** The messages along the last attempt of a library error: what failed, down to the socket's reason. */
function lastCause(err: unknown): string {
  const messages: string[] = [];
  let e: unknown = err;
  for (let depth = 0; typeof e === 'object' && e !== null && depth < 8; depth++) {
    const { message, errors, cause } = e as LibraryError;
    const text = message?.replace(/\.$/, '');
    if (text && !messages.includes(text)) messages.push(text);
    e = errors?.at(-1) ?? cause;
  }
  return messages.length > 0 ? messages.join(': ') : String(err);
}

function translate(what: string, err: unknown): KafkaAdminError {
  if (err instanceof KafkaAdminError) return err;
  const type = kafkaErrorType(err);
  const detail = chain(err).find((e) => e.apiId !== undefined);
  const reason = detail ? (detail.serverErrorMessage ?? detail.message) : lastCause(err);
  return new KafkaAdminError(`${what} failed: ${type ? `${type}: ` : ''}${reason}`, type, err);
}

/** The API key of ConsumerGroupDescribe (KIP-848). */
const CONSUMER_GROUP_DESCRIBE = 69;

const str = (n: bigint) => n.toString();
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** The admin client of one connection. Reusable: disconnect() closes it, the next call connects again. */
export class KafkaAdmin {
  readonly #options: BaseOptions;
  #admin: Admin | undefined;
  /** Whether the brokers know ConsumerGroupDescribe (Kafka 4.0+, or 3.7+ with KIP-848 enabled). */
  #describesConsumerGroups: Promise<boolean> | undefined;

  constructor(options: BaseOptions) {
    this.#options = options;
  }

  get #client(): Admin {
    if (!this.#admin || this.#admin.closed) this.#admin = new Admin({ ...this.#options });
    return this.#admin;
  }

  async #call<T>(what: string, run: (admin: Admin) => Promise<T>): Promise<T> {
    try {
      return await run(this.#client);
    } catch (err) {
      throw translate(what, err);
    }
  }

  /** Reaches a broker and reads the cluster's metadata: fails when no broker answers. */
  async connect(): Promise<void> {
    await this.#call('connecting to Kafka', (a) => a.metadata({ topics: [], forceUpdate: true }));
  }

  async disconnect(): Promise<void> {
    const admin = this.#admin;
    this.#admin = undefined;
    if (admin && !admin.closed) await admin.close();
  }

  /** Names of the topics (internal topics left out). */
  async listTopics(): Promise<string[]> {
    return this.#call('listing topics', (a) => a.listTopics());
  }

  /** Partitions and leaders of `topics`; throws a KafkaAdminError UNKNOWN_TOPIC_OR_PARTITION, at once, for
   * a topic that does not exist. */
  async fetchTopicMetadata({ topics }: { topics: string[] }): Promise<{ topics: TopicMetadata[] }> {
    const metadata = await this.#metadata(topics);
    return {
      topics: topics.map((name) => {
        const topic = metadata.topics.get(name);
        if (!topic) throw new KafkaAdminError(`no metadata for topic ${name}`, 'UNKNOWN_TOPIC_OR_PARTITION');
        return {
          name,
          id: knownTopicId(topic.id),
          partitions: topic.partitions.map((p, partitionId) => ({
            partitionId,
            leader: p.leader,
            replicas: p.replicas,
            isr: p.isr,
          })),
        };
      }),
    };
  }

  /** Fresh metadata. The library retries an unknown topic as long as any other error: ask once without
   * retries, and retry only what is not an unknown topic. */
  async #metadata(topics: string[]): Promise<ClusterMetadata> {
    const what = `reading the metadata of ${topics.join(', ')}`;
    try {
      return await this.#client.metadata({ topics, forceUpdate: true, retries: 0 });
    } catch (err) {
      if (kafkaErrorType(err) === 'UNKNOWN_TOPIC_OR_PARTITION' || !retriable(err)) throw translate(what, err);
    }
    return this.#call(what, (a) => a.metadata({ topics, forceUpdate: true }));
  }

  /** Partitions of `topic` with a leader, or a LEADER_NOT_AVAILABLE error. */
  async #partitions(topic: string): Promise<number[]> {
    const [metadata] = (await this.fetchTopicMetadata({ topics: [topic] })).topics;
    const partitions = metadata?.partitions ?? [];
    const leaderless = partitions.find((p) => p.leader < 0);
    if (leaderless) {
      throw new KafkaAdminError(
        `partition ${leaderless.partitionId} of ${topic} has no leader`,
        'LEADER_NOT_AVAILABLE',
      );
    }
    return partitions.map((p) => p.partitionId);
  }

  async #listOffsets(
    topic: string,
    partitions: number[],
    timestamp: bigint,
    committedOnly = false,
  ): Promise<Map<number, bigint>> {
    const listed = await this.#call(`listing the offsets of ${topic}`, (a) =>
      a.listOffsets({
        topics: [
          { name: topic, partitions: partitions.map((partitionIndex) => ({ partitionIndex, timestamp })) },
        ],
        isolationLevel: committedOnly
          ? FetchIsolationLevels.READ_COMMITTED
          : FetchIsolationLevels.READ_UNCOMMITTED,
      }),
    );
    return new Map(
      listed.flatMap((t) => (t.name === topic ? t.partitions : [])).map((p) => [p.partitionIndex, p.offset]),
    );
  }

  /** The low and high watermarks of every partition of `topic`, in partition order. */
  async fetchTopicOffsets(topic: string): Promise<PartitionWatermarks[]> {
    const partitions = await this.#partitions(topic);
    if (partitions.length === 0) return [];
    const [low, high, stable] = await Promise.all([
      this.#listOffsets(topic, partitions, ListOffsetTimestamps.EARLIEST),
      this.#listOffsets(topic, partitions, ListOffsetTimestamps.LATEST),
      this.#listOffsets(topic, partitions, ListOffsetTimestamps.LATEST, true),
    ]);
    return partitions.map((partition) => ({
      partition,
      low: str(low.get(partition) ?? 0n),
      high: str(high.get(partition) ?? 0n),
      stable: str(stable.get(partition) ?? high.get(partition) ?? 0n),
    }));
  }

  /** Per partition of `topic`, the first offset whose record is stamped at or after `timestamp` (ms);
   * "-1" where there is none. */
  async fetchTopicOffsetsByTimestamp(topic: string, timestamp: number): Promise<PartitionOffset[]> {
    const partitions = await this.#partitions(topic);
    if (partitions.length === 0) return [];
    const found = await this.#listOffsets(topic, partitions, BigInt(timestamp));
    return partitions.map((partition) => ({ partition, offset: str(found.get(partition) ?? -1n) }));
  }

  /** The offsets `groupId` committed on every partition of `topics` ("-1": none). */
  async fetchOffsets({ groupId, topics }: { groupId: string; topics: string[] }): Promise<TopicOffsets[]> {
    if (topics.length === 0) return [];
    const wanted = await Promise.all(
      topics.map(async (name) => ({ name, partitionIndexes: await this.#partitionIds(name) })),
    );
    const [group] = await this.#call(`reading the committed offsets of group ${groupId}`, (a) =>
      a.listConsumerGroupOffsets({ groups: [{ groupId, topics: wanted }] }),
    );
    return wanted.map(({ name, partitionIndexes }) => {
      const listed = new Map(
        (group?.topics.find((t) => t.name === name)?.partitions ?? []).map((p) => [p.partitionIndex, p]),
      );
      return {
        topic: name,
        partitions: partitionIndexes.map((partition) => {
          const p = listed.get(partition);
          const topicId = topicIdOfCommitMetadata(p?.metadata);
          return { partition, offset: str(p?.committedOffset ?? -1n), ...(topicId ? { topicId } : {}) };
        }),
      };
    });
  }

  async #partitionIds(topic: string): Promise<number[]> {
    const [metadata] = (await this.fetchTopicMetadata({ topics: [topic] })).topics;
    return (metadata?.partitions ?? []).map((p) => p.partitionId);
  }

  /**
   * Commits `topics`' offsets for `groupId` as an admin (no member, no generation), in one request: the
   * broker stores them together or not at all. Refused while the group has members: here when it is
   * described with members, and by the broker in any case (an offset commit without a generation or
   * member epoch is accepted only for an empty group).
   */
  async alterGroupOffsets({ groupId, topics }: { groupId: string; topics: TopicOffsets[] }): Promise<void> {
    const wanted = topics.filter((t) => t.partitions.length > 0);
    if (wanted.length === 0) return;
    const [group] = await this.describeGroups([groupId]);
    if (group && group.members.length > 0) {
      throw new KafkaAdminError(
        `group ${groupId} has ${group.members.length} member(s): its offsets can be altered only while it is empty`,
        'NON_EMPTY_GROUP',
      );
    }
    await this.#call(`committing offsets for group ${groupId}`, (a) =>
      a.alterConsumerGroupOffsets({
        groupId,
        topics: wanted.map((t) => ({
          name: t.topic,
          partitionOffsets: t.partitions.map((p) => ({ partition: p.partition, offset: BigInt(p.offset) })),
        })),
      }),
    );
  }

  /**
   * Each group's state and members with their assigned partitions, whichever protocol it uses: a KIP-848
   * group (`consumer`) is described by ConsumerGroupDescribe, any other by DescribeGroups. A group that
   * does not exist is described as classic, in state Dead, without members.
   */
  async describeGroups(groupIds: string[]): Promise<DescribedGroup[]> {
    return Promise.all(groupIds.map((id) => this.#describeGroup(id)));
  }

  async #describeGroup(groupId: string): Promise<DescribedGroup> {
    const consumer = await this.#consumerGroupDescribe(groupId);
    if (consumer) return consumer;
    const described = await this.#call(`describing group ${groupId}`, (a) =>
      a.describeGroups({ groups: [groupId] }),
    );
    const group = described.get(groupId);
    return {
      groupId,
      state: group?.state ?? 'Dead',
      protocol: 'classic',
      members: [...(group?.members.values() ?? [])].map((m) => {
        const partitions: Record<string, number[]> = {};
        for (const [topic, assigned] of m.assignments ?? []) partitions[topic] = [...assigned.partitions];
        return { memberId: m.id, clientId: m.clientId, host: m.clientHost, partitions };
      }),
    };
  }

  /** A KIP-848 group as ConsumerGroupDescribe tells it; undefined when the group is not one (or does not
   * exist: GROUP_ID_NOT_FOUND either way). */
  async #consumerGroupDescribe(groupId: string): Promise<DescribedGroup | undefined> {
    const what = `describing group ${groupId}`;
    this.#describesConsumerGroups ??= this.#call('asking the broker for its APIs', (a) => a.listApis()).then(
      (apis) => apis.some((api) => api.apiKey === CONSUMER_GROUP_DESCRIBE && api.minVersion <= 0),
      (err: unknown) => {
        this.#describesConsumerGroups = undefined;
        throw err;
      },
    );
    if (!(await this.#describesConsumerGroups)) return undefined;
    for (let attempt = 0; ; attempt++) {
      try {
        const [coordinator] = await this.#client.findCoordinator({
          keyType: FindCoordinatorKeyTypes.GROUP,
          keys: [groupId],
        });
        if (!coordinator)
          throw new KafkaAdminError(`no coordinator for group ${groupId}`, 'COORDINATOR_NOT_AVAILABLE');
        const connection = await this.#client.connections.get(coordinator);
        const response = await consumerGroupDescribeV0.api.async(connection, [groupId], false);
        const group = response.groups.find((g) => g.groupId === groupId);
        if (!group) return undefined;
        return {
          groupId,
          state: group.groupState,
          protocol: 'consumer',
          members: group.members.map((m) => ({
            memberId: m.memberId,
            clientId: m.clientId,
            host: m.clientHost,
            partitions: byTopic(m.assignment.topicPartitions),
            targetPartitions: byTopic(m.targetAssignment.topicPartitions),
          })),
        };
      } catch (err) {
        const type = kafkaErrorType(err);
        if (type === 'GROUP_ID_NOT_FOUND') return undefined;
        const retries = typeof this.#options.retries === 'number' ? this.#options.retries : 3;
        if (!retriable(err) || attempt >= retries) throw translate(what, err);
        await sleep(typeof this.#options.retryDelay === 'number' ? this.#options.retryDelay : 250);
      }
    }
  }

  /**
   * Creates `topics`; a topic that exists already is left as it is (as when another replica created it
   * meanwhile). Returns the names it created. Partitions may have no leader yet when it returns
   * (createTopicsAndWait in topic-admin.ts waits for them).
   */
  async createTopics({ topics }: { topics: TopicSpec[] }): Promise<string[]> {
    // The library gives one set of configs to every topic of a request: one request per topic.
    const created = await Promise.all(
      topics.map(async (t) => {
        try {
          await this.#client.createTopics({
            topics: [t.topic],
            partitions: t.numPartitions ?? -1,
            replicas: t.replicationFactor ?? -1,
            configs: (t.configEntries ?? []).map(({ name, value }) => ({ name, value })),
          });
          return t.topic;
        } catch (err) {
          if (kafkaErrorType(err) === 'TOPIC_ALREADY_EXISTS') return undefined;
          throw translate(`creating topic ${t.topic}`, err);
        }
      }),
    );
    return created.filter((t): t is string => t !== undefined);
  }
}
