// A lane's membership of its consumer group with the next-generation protocol (KIP-848): the broker
// assigns partitions incrementally, so a join, a leave or a crash moves only the partitions that change
// owner, and the others keep flowing. Records come from a PartitionFetcher over the assigned partitions.
//
// The library's membership runs inside consume(): it starts the ConsumerGroupHeartbeat loop and keeps the
// topics tracked. The stream it returns is never read (its records would come with rewinds to the
// committed offsets on every assignment change); the library pauses and resumes every stream around a
// revocation, which would switch an unread stream into flowing mode, so this stream's pause and resume
// are disabled and it never fetches.
import { Consumer, type GroupAssignment, type MessagesStream } from '@platformatic/kafka';
import type { PartitionOffset } from '../engine/ports.ts';
import { partitionKey } from '../engine/records.ts';
import type { KafkaClient } from './client.ts';
import { PartitionFetcher, type FetchedRecord, type TopicPartition } from './fetcher.ts';
import type { PartitionEnds } from './transaction-holds.ts';

export interface GroupMemberHooks {
  /** Records of one partition in offset order, `next` its position after them, `highWatermark` its end. */
  onRecords(
    topic: string,
    partition: number,
    records: FetchedRecord[],
    next: bigint,
    highWatermark: bigint,
  ): void;
  /** After each fetch answer for a partition: where this member stands in it, and its ends. */
  onEnds?(topic: string, partition: number, ends: PartitionEnds): void;
  /** A partition's end read apart from fetching, when no fetch answered for it lately (fetcher.ts). */
  onHighWatermark?(topic: string, partition: number, position: bigint, highWatermark: bigint): void;
  /** The log no longer held a partition's position: records from `from` up to `to` were not read. */
  onSkipped?(topic: string, partition: number, from: bigint, to: bigint): void;
  /** A partition of a topic deleted and created again since its lane last read it starts from its log
   * start, `to`; `from` was the group's committed offset for the name (the deleted topic's). */
  onRestarted?(topic: string, partition: number, from: bigint | undefined, to: bigint): void;
  /** Partitions this member gained and lost. */
  onAssignment(added: TopicPartition[], removed: TopicPartition[]): void;
  onMembership(joined: boolean, detail: string): void;
  /** The member lost the group for good (no heartbeat accepted for too long, or its membership ended):
   * the lane replaces it. */
  onFatal(err: Error): void;
  /** Errors the member recovers from by itself (logged). */
  onError(what: string, err: unknown): void;
}

export interface GroupMemberOptions {
  client: KafkaClient;
  groupId: string;
  topics: string[];
  /** Tells this member's connections apart (the lane's name). */
  name: string;
  /** Where a partition without a committed offset starts: the plan's offset, else `reset`. */
  fallbackStart?: ((topic: string, partition: number) => bigint | undefined) | undefined;
  reset: 'earliest' | 'latest';
  maxBytesPerPartition: number;
  maxDecompressedBatchBytes?: number | undefined;
  /** The topic id each topic was last read under by the lane's members (the lane keeps it across them). */
  topicIds?: Map<string, string> | undefined;
  /** How long without an accepted heartbeat before the member is given up on (ms). */
  stallTimeoutMs: number;
  hooks: GroupMemberHooks;
}

/** What a lane needs of its group membership; the in-process tests give a fake. */
export interface GroupMember {
  /** Joins the group; rejects when the broker refuses (authentication, authorisation, no such protocol). */
  start(): Promise<void>;
  pause(topic: string, partition: number): void;
  resume(topic: string, partition: number): void;
  seek(topic: string, partition: number, offset: bigint): void;
  isAssigned(topic: string, partition: number): boolean;
  /** The id the broker knows this member by; undefined until it has joined. */
  readonly memberId: string | undefined;
  commit(offsets: PartitionOffset[]): Promise<void>;
  /** Stops fetching; the member stays in the group, so what was handed over can still commit. */
  stopFetching(): Promise<void>;
  /** Leaves the group at once (its partitions go to the others without waiting for a timeout). */
  close(): Promise<void>;
}

export type GroupMemberFactory = (options: GroupMemberOptions) => GroupMember;

/** How long partitions of an unnamed topic may stay assigned before the member rejoins to name them. */
const UNNAMED_GRACE_MS = 3_000;

/** Kafka's error code for a member the group coordinator does not know (any more). */
const UNKNOWN_MEMBER_ID = 25;

/** The Kafka error code of a refused request, as the library reports it (ResponseError.response). */
function responseErrorCode(error: unknown): number | undefined {
  const code = (error as { response?: { errorCode?: unknown } } | undefined)?.response?.errorCode;
  return typeof code === 'number' ? code : undefined;
}

export const createGroupMember: GroupMemberFactory = (options) => new Kip848Member(options);

class Kip848Member implements GroupMember {
  readonly #o: GroupMemberOptions;
  readonly #consumer: Consumer;
  readonly #fetcher: PartitionFetcher;
  #stream: MessagesStream<Buffer, Buffer, Buffer, Buffer> | undefined;
  #seen: GroupAssignment[] | null = null;
  #syncTimer: NodeJS.Timeout | undefined;
  #closing = false;
  #joined = false;
  /** Set once the member gave its membership up (#lost): its lane replaces it. */
  #gaveUp = false;
  /** Since when the assignment has held partitions of a topic without a name. */
  #unnamedSince: number | undefined;

  constructor(options: GroupMemberOptions) {
    this.#o = options;
    const { client, groupId, hooks } = options;
    this.#consumer = new Consumer({
      ...client.options(`-${options.name}`),
      groupId,
      groupProtocol: 'consumer',
      // The time this member has to give up revoked partitions (it gives them up at once); the library
      // checks it against its classic session timeout (60 s), which this protocol does not use.
      rebalanceTimeout: 60_000,
      heartbeatStallTimeout: options.stallTimeoutMs,
      autocommit: false,
    });
    this.#fetcher = new PartitionFetcher({
      consumer: this.#consumer,
      connection: client.options(`-${options.name}`),
      startFrom: 'committed',
      reset: options.reset,
      fallback: options.fallbackStart,
      partitionMaxBytes: options.maxBytesPerPartition,
      maxBytes: options.maxBytesPerPartition * 4,
      maxBatchBytes: options.maxDecompressedBatchBytes,
      maxWaitMs: 100,
      onRecords: (topic, partition, records, next, highWatermark) =>
        hooks.onRecords(topic, partition, records, next, highWatermark),
      onError: (what, err) => hooks.onError(what, err),
      onEnds: (topic, partition, ends) => hooks.onEnds?.(topic, partition, ends),
      onHighWatermark: (topic, partition, position, highWatermark) =>
        hooks.onHighWatermark?.(topic, partition, position, highWatermark),
      onSkipped: (topic, partition, from, to) => hooks.onSkipped?.(topic, partition, from, to),
      topicIds: options.topicIds,
      onRestarted: (topic, partition, from, to) => hooks.onRestarted?.(topic, partition, from, to),
      // What the lane holds of the deleted topic goes with this member; the next one starts the new
      // topic's partitions from their log start (topicIds).
      onRecreated: (topic, before, now) =>
        this.#lost(
          `${topic} was deleted and created again (topic id ${before}, now ${now}); rejoining, to read ` +
            'its partitions from their start',
        ),
    });
    // An EventEmitter without an 'error' listener throws: the library emits heartbeat failures it retries.
    this.#consumer.on('error', (err: unknown) => hooks.onError('group', err));
    this.#consumer.on('consumer:heartbeat:end', () => {
      this.#sync();
      // An accepted heartbeat proves membership (readiness); a refused one puts it in doubt until the next.
      if (this.#joined && !this.#closing) hooks.onMembership(true, 'heartbeat accepted');
    });
    this.#consumer.on('consumer:heartbeat:error', (e: unknown) => {
      const error = (e as { error?: unknown } | undefined)?.error;
      hooks.onError('heartbeat', error);
      if (!this.#joined || this.#closing) return;
      // The broker dropped this member (its session expired: the process was paused, or cut off, for
      // longer than the group's session timeout) and has given its partitions to others. The library would
      // send the same member id until the stall timeout, while this member went on fetching and
      // processing partitions it no longer owns; the lane replaces it at once instead.
      if (responseErrorCode(error) === UNKNOWN_MEMBER_ID) {
        this.#lost(
          'the broker no longer knows this member (UNKNOWN_MEMBER_ID: its session expired, as after a pause ' +
            'longer than the group session timeout); its partitions went to other members',
        );
        return;
      }
      const reason = error instanceof Error ? error.message : 'unknown error';
      hooks.onMembership(false, `heartbeat failed: ${reason}`);
    });
    this.#consumer.on('consumer:heartbeat:stalled', (e: unknown) => {
      if (this.#closing) return;
      const lastError = (e as { lastError?: unknown } | undefined)?.lastError;
      const reason = lastError instanceof Error ? `: ${lastError.message}` : '';
      hooks.onMembership(false, `no heartbeat accepted for ${options.stallTimeoutMs} ms${reason}`);
      hooks.onFatal(
        new Error(`no heartbeat accepted for ${options.stallTimeoutMs} ms${reason}`, { cause: lastError }),
      );
    });
  }

  async start(): Promise<void> {
    const stream = await this.#consumer.consume({
      topics: this.#o.topics,
      autocommit: false,
      mode: 'latest',
    });
    stream.pause = () => stream;
    stream.resume = () => stream;
    stream.on('error', (err: unknown) => this.#o.hooks.onError('membership', err));
    stream.once('close', () => {
      // Closing the stream untracks the topics: the member drops out of the group.
      if (this.#closing || this.#stream !== stream) return;
      this.#o.hooks.onMembership(false, 'membership ended');
      this.#o.hooks.onFatal(new Error('the group membership ended'));
    });
    this.#stream = stream;
    this.#fetcher.start();
    // Heartbeats bring assignment changes; the timer covers a change applied after the heartbeat ended.
    this.#syncTimer = setInterval(() => this.#sync(), 100);
    this.#sync();
  }

  /** Gives the membership up at once: the lane replaces this member with a new one. */
  #lost(reason: string): void {
    if (this.#closing || this.#gaveUp) return;
    this.#gaveUp = true;
    this.#o.hooks.onMembership(false, reason);
    this.#o.hooks.onFatal(new Error(reason));
  }

  /** Applies the broker's current assignment: new partitions start from their committed offsets, kept ones
   * keep their positions and queued work, revoked ones stop. */
  #sync(): void {
    if (this.#closing) return;
    const current = this.#consumer.assignments;
    if (current === null) return;
    if (!this.#joined) {
      this.#joined = true;
      this.#o.hooks.onMembership(true, `joined group ${this.#o.groupId}`);
    }
    // The library names assigned topics from metadata it may have cached before a topic of that name was
    // deleted and created again; the new topic's partitions come without a name, and the library names
    // them only at a later assignment change. The named ones are fetched meanwhile; if a name is still
    // missing after UNNAMED_GRACE_MS, a new member joins with fresh metadata.
    if (!current.some((a) => typeof a.topic !== 'string')) this.#unnamedSince = undefined;
    else if (this.#unnamedSince === undefined) this.#unnamedSince = Date.now();
    else if (Date.now() - this.#unnamedSince >= UNNAMED_GRACE_MS) {
      this.#lost(
        `the broker assigned partitions of a topic this member could not name for ${UNNAMED_GRACE_MS} ms ` +
          '(a topic deleted and created again?); rejoining with fresh metadata',
      );
      return;
    }
    if (current === this.#seen) return;
    this.#seen = current;
    const wanted = new Map<string, TopicPartition>();
    for (const a of current) {
      if (typeof a.topic !== 'string') continue;
      for (const partition of a.partitions)
        wanted.set(partitionKey(a.topic, partition), { topic: a.topic, partition });
    }
    const removed = this.#fetcher.assigned.filter((p) => !wanted.has(partitionKey(p.topic, p.partition)));
    const added = [...wanted.values()].filter((p) => !this.#fetcher.has(p.topic, p.partition));
    if (added.length === 0 && removed.length === 0) return;
    this.#fetcher.remove(removed);
    this.#o.hooks.onAssignment(added, removed);
    this.#fetcher.add(added);
  }

  pause(topic: string, partition: number): void {
    this.#fetcher.pause(topic, partition);
  }

  resume(topic: string, partition: number): void {
    this.#fetcher.resume(topic, partition);
  }

  seek(topic: string, partition: number, offset: bigint): void {
    this.#fetcher.seek(topic, partition, offset);
  }

  isAssigned(topic: string, partition: number): boolean {
    return this.#fetcher.has(topic, partition);
  }

  get memberId(): string | undefined {
    return this.#joined ? (this.#consumer.memberId ?? undefined) : undefined;
  }

  /** Commits offsets of partitions assigned now and drops the rest: the broker checks only the member
   * epoch, so a commit of a partition that moved would be accepted and could rewind its new owner. */
  async commit(offsets: PartitionOffset[]): Promise<void> {
    const allowed = offsets.filter((o) => this.#fetcher.has(o.topic, o.partition));
    if (allowed.length === 0) return;
    await this.#consumer.commit({
      offsets: allowed.map((o) => ({
        topic: o.topic,
        partition: o.partition,
        offset: BigInt(o.offset),
        leaderEpoch: -1,
      })),
    });
  }

  async stopFetching(): Promise<void> {
    await this.#fetcher.stop();
  }

  async close(): Promise<void> {
    this.#closing = true;
    if (this.#syncTimer) clearInterval(this.#syncTimer);
    await this.#fetcher.stop();
    const stream = this.#stream;
    this.#stream = undefined;
    if (stream) {
      // Give the stream its methods back, so that close() can end it.
      delete (stream as { pause?: unknown }).pause;
      delete (stream as { resume?: unknown }).resume;
    }
    // Leaves the group with a leave heartbeat (epoch -1): the broker reassigns at once.
    await this.#consumer.close(true);
  }
}
