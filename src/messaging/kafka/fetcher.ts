// Fetching, apart from group membership: a position per partition, per-partition pause, resume and seek,
// and one fetch per leader per round on a connection pool of its own (a long poll must not hold up
// heartbeats and commits). A partition added, resumed or sought while a round's long poll is out starts
// at once, in a fetch of its own on a second pool (a broker answers one connection's requests in order),
// rather than after that poll: in a deploy, a partition handed over no longer waits for it. The lane consumer feeds it the partitions its group assigns; the reply
// consumer, the replay reader and the operator's range reads give it fixed partitions.
//
// The library's MessagesStream is not used for records: it has no per-partition pause, resume or seek,
// and it rewinds every assigned partition to its committed offset on every assignment change.
import {
  ConnectionPool,
  ListOffsetTimestamps,
  type BaseOptions,
  type ClusterMetadata,
  type Consumer,
} from '@platformatic/kafka';
import { partitionKey as key } from '../engine/records.ts';
import { DEFAULT_MAX_DECOMPRESSED_BATCH_BYTES } from '../../config.ts';
import { boundFetches, type ReadBatch, type Unreadable } from './bounded-fetch.ts';
import { knownTopicId, tagCommits, topicIdOfCommitMetadata } from './commit-tags.ts';
import type { PartitionEnds } from './transaction-holds.ts';

// The fetch types are not exported from the package root.
type FetchOptions = Parameters<Consumer['fetch']>[0];
type FetchRequestTopic = FetchOptions['topics'][number];
type FetchResponse = Awaited<ReturnType<Consumer['fetch']>>;
type FetchResponsePartition = FetchResponse['responses'][number]['partitions'][number];

/** A record as fetched: offsets and timestamps as bigints, headers as the wire has them (in order). */
export interface FetchedRecord {
  topic: string;
  partition: number;
  offset: bigint;
  timestamp: bigint;
  key: Buffer | null;
  value: Buffer | null;
  headers: [Buffer | null, Buffer | null][];
  /** A batch whose records were not read (bounded-fetch.ts) stands as one record at its last offset,
   * without key, value or headers. */
  unreadable?: (Unreadable & { firstOffset: bigint }) | undefined;
  /** The record's batch gave it an offset it cannot hold (bounded-fetch.ts, trustedDelta): the delta its
   * producer wrote, and the batch's offsets. The record stands at the next free offset. */
  forged?: { offsetDelta: number; firstOffset: bigint; lastOffset: bigint } | undefined;
}

/** Whether `record` holds an offset below `end`: an unreadable batch stands at its last offset, which
 * may lie past an end inside it (a range planned by time). */
export function startsBefore(record: FetchedRecord, end: bigint): boolean {
  return record.offset < end || (record.unreadable !== undefined && record.unreadable.firstOffset < end);
}

export interface TopicPartition {
  topic: string;
  partition: number;
}

/** Where a partition without a position starts. */
export type StartFrom = 'committed' | 'earliest' | 'latest';

export interface FetcherOptions {
  /** The library client that fetches (and, for 'committed', knows the group). */
  consumer: Consumer;
  /** The fetch pool's connection settings (client id, SASL, TLS): KafkaClient.options(). */
  connection: BaseOptions;
  /** Records of one partition in offset order; `next` is its position after them (control batches and
   * compacted gaps included); `highWatermark` the partition's end. A fetched partition may come in several
   * calls (see sliceRecords), in order; a partition paused, sought or removed in between gets no more of
   * that fetch, and fetches the rest again from its position; after stop() nothing more is handed over. */
  onRecords: (
    topic: string,
    partition: number,
    records: FetchedRecord[],
    next: bigint,
    highWatermark: bigint,
  ) => void;
  onError?: ((what: string, err: unknown) => void) | undefined;
  /** After each answer for a partition, with records or without: where this consumer stands in it, and
   * its ends (the lag, and whether an open transaction holds it: transaction-holds.ts). */
  onEnds?: ((topic: string, partition: number, ends: PartitionEnds) => void) | undefined;
  /** A partition's end, read apart from fetching when no fetch answered for it for `endsEveryMs`
   * (paused while its lane is full, or backing off): its lag would otherwise be read from a stale end. */
  onHighWatermark?:
    ((topic: string, partition: number, position: bigint, highWatermark: bigint) => void) | undefined;
  /** How often ends are read apart from fetching (onHighWatermark); default 2 s. */
  endsEveryMs?: number | undefined;
  /** The log no longer holds a partition's position (deleted by retention or by an operator below it, or
   * truncated above it): fetching goes on from `to`, and the records from `from` up to it are not read. */
  onSkipped?: ((topic: string, partition: number, from: bigint, to: bigint) => void) | undefined;
  /** A topic deleted and created again under the name (its topic id changed): where this fetcher was
   * reading it, it stops fetching its partitions and says so here (their positions are the deleted
   * topic's; a lane gives its member up). */
  onRecreated?: ((topic: string, before: string, now: string) => void) | undefined;
  /** A partition started from its log start, `from` (its committed offset) being the deleted topic's. */
  onRestarted?:
    ((topic: string, partition: number, from: bigint | undefined, to: bigint) => void) | undefined;
  /** The topic id each topic name was last read under, shared by the fetchers of one lane: a partition
   * first fetched under another id starts from its log start, whatever the group committed for the name
   * (commits are by name: those of the deleted topic's last moments land on the new one). With
   * 'committed', commits made through `consumer` also carry the partition's topic id (commit-tags.ts),
   * and a committed offset tagged with another id than the topic's now starts it from its log start
   * too: a worker started after the topic was created again cannot have read it. */
  topicIds?: Map<string, string> | undefined;
  /** For partitions added without an offset: the group's committed offset (falling back to `reset`), or
   * straight from `reset`. */
  startFrom: StartFrom;
  /** Where a partition without a committed offset, or out of range below the log start, starts. */
  reset?: 'earliest' | 'latest';
  /** For 'committed': a partition's start when the group has none, before `reset` (a replay's plan). */
  fallback?: ((topic: string, partition: number) => bigint | undefined) | undefined;
  maxWaitMs?: number;
  partitionMaxBytes?: number;
  maxBytes?: number;
  /** Records handed to onRecords at once at most (default 250), with the event loop free between
   * slices: a fetch of megabytes is decoded and validated in slices, so that what other lanes of the
   * process have to do (a search's reply) does not wait behind thousands of records. */
  sliceRecords?: number;
  /** The most bytes a record batch may decompress to (default 16 MiB); a larger one is handed over
   * unread, as one `unreadable` record. */
  maxBatchBytes?: number | undefined;
  /** Records and headers read of one fetch response, about (default MAX_ENTRIES); a batch of more is
   * read in parts. */
  maxRecords?: number | undefined;
}

/** After the n-th failure in a row: 200 ms, doubling, at most 5 s. */
const retryDelay = (failures: number): number => Math.min(100 * 2 ** failures, 5_000);

interface PartitionState extends TopicPartition {
  /** Next offset to fetch; undefined until it is known. */
  position: bigint | undefined;
  paused: boolean;
  /** Bumped by every seek: a fetch response asked for at an older generation is dropped. */
  generation: number;
  backoffUntil: number;
  failures: number;
  /** The topic id it is read under, from its first fetch (topicIds). */
  topicId?: string | undefined;
  /** The topic id its committed offset was tagged with, when it started from one (commit-tags.ts). */
  committedTopicId?: string | undefined;
  /** When a fetch last answered for it, or its end was last read (ms). */
  endsAt: number;
}

// Kafka error codes the loop treats itself.
const OFFSET_OUT_OF_RANGE = 1;
const METADATA_ERRORS = new Set([
  3, // UNKNOWN_TOPIC_OR_PARTITION
  5, // LEADER_NOT_AVAILABLE
  6, // NOT_LEADER_OR_FOLLOWER
  74, // FENCED_LEADER_EPOCH
  75, // UNKNOWN_LEADER_EPOCH
  100, // UNKNOWN_TOPIC_ID
]);
const CONTROL_BATCH = 0x20;
/** The batch's timestamps are the broker's (message.timestamp.type=LogAppendTime): every record has the
 * batch's maxTimestamp, whatever the producer wrote in its deltas. */
const LOG_APPEND_TIME = 0x08;

/** The response inside a library error (a ResponseError, possibly wrapped in MultipleErrors). */
function responseOf(err: unknown, depth = 0): FetchResponse | undefined {
  if (depth > 5 || typeof err !== 'object' || err === null) return undefined;
  const e = err as { response?: unknown; errors?: unknown[] };
  const r = e.response as FetchResponse | undefined;
  if (r && Array.isArray(r.responses)) return r;
  for (const inner of (e.errors ?? []).toReversed()) {
    const found = responseOf(inner, depth + 1);
    if (found) return found;
  }
  return undefined;
}

export class PartitionFetcher {
  readonly #o: FetcherOptions;
  readonly #pool: ConnectionPool;
  /** For fetches started beside a round's long poll. */
  readonly #promptPool: ConnectionPool;
  readonly #parts = new Map<string, PartitionState>();
  /** Partitions in a fetch request now; no second request asks for them meanwhile. */
  readonly #inFlight = new Set<string>();
  /** The position each partition in a fetch request now was asked at, by topic id: its response is read
   * from there (bounded-fetch.ts). */
  readonly #asking = new Map<string, bigint>();
  #running = false;
  #loop: Promise<void> | undefined;
  #wake: (() => void) | undefined;
  /** The fetch started beside the round for partitions that arrived during it, and whether another is due. */
  #prompt: Promise<void> | undefined;
  #promptAgain = false;
  /** Leaders the prompt pool has connected to ahead of need: a handover should not wait for a connect. */
  readonly #promptConnected = new Set<number>();
  #metadata: ClusterMetadata | undefined;
  #refreshMetadata = true;
  #loopFailures = 0;
  /** Finding where new partitions start failed this many times in a row; asked again from this time. */
  #positionFailures = 0;
  #positionRetryAt = 0;
  /** Bumped by add(): a failure of an attempt begun before it does not hold back what it added. */
  #added = 0;
  #positioned: { promise: Promise<void>; resolve: () => void } | undefined;
  #readingEnds: Promise<void> | undefined;
  #endsTimer: NodeJS.Timeout | undefined;
  /** The metadata each partition's committed offset was read back with (startFrom 'committed'). */
  readonly #committedMetadata = new Map<string, string | null>();

  constructor(options: FetcherOptions) {
    this.#o = options;
    if (options.startFrom === 'committed' && options.topicIds) {
      tagCommits(options.consumer, {
        topicIdOf: (topic, partition) => this.#parts.get(key(topic, partition))?.topicId,
        onCommitted: (topic, partition, metadata) =>
          this.#committedMetadata.set(key(topic, partition), metadata),
      });
    }
    boundFetches(options.consumer, {
      limit: options.maxBatchBytes ?? DEFAULT_MAX_DECOMPRESSED_BATCH_BYTES,
      maxEntries: options.maxRecords,
      positionOf: (topicId, partition) => this.#asking.get(`${topicId}:${partition}`),
    });
    this.#pool = new ConnectionPool(`${options.connection.clientId}-fetch`, options.connection);
    this.#promptPool = new ConnectionPool(`${options.connection.clientId}-fetch-prompt`, options.connection);
  }

  get assigned(): TopicPartition[] {
    return [...this.#parts.values()].map(({ topic, partition }) => ({ topic, partition }));
  }

  has(topic: string, partition: number): boolean {
    return this.#parts.has(key(topic, partition));
  }

  /** The next offset to fetch of each positioned partition. */
  positions(): (TopicPartition & { offset: bigint })[] {
    return [...this.#parts.values()].flatMap((p) =>
      p.position === undefined ? [] : [{ topic: p.topic, partition: p.partition, offset: p.position }],
    );
  }

  /** Starts fetching partitions; those without an offset start from `startFrom`. Known ones are kept. */
  add(parts: readonly (TopicPartition & { offset?: bigint | undefined })[]): void {
    for (const { topic, partition, offset } of parts) {
      const k = key(topic, partition);
      if (this.#parts.has(k)) continue;
      this.#parts.set(k, {
        topic,
        partition,
        position: offset,
        paused: false,
        generation: 0,
        backoffUntil: 0,
        failures: 0,
        endsAt: Date.now(),
      });
    }
    // Partitions newly assigned are positioned now, whatever an earlier failure's backoff says.
    this.#positionRetryAt = 0;
    this.#added += 1;
    this.#startNow();
  }

  remove(parts: readonly TopicPartition[]): void {
    for (const { topic, partition } of parts) this.#parts.delete(key(topic, partition));
  }

  pause(topic: string, partition: number): void {
    const p = this.#parts.get(key(topic, partition));
    if (p) p.paused = true;
  }

  resume(topic: string, partition: number): void {
    const p = this.#parts.get(key(topic, partition));
    if (p?.paused) {
      p.paused = false;
      this.#startNow();
    }
  }

  isPaused(topic: string, partition: number): boolean {
    return this.#parts.get(key(topic, partition))?.paused ?? false;
  }

  seek(topic: string, partition: number, offset: bigint): void {
    const p = this.#parts.get(key(topic, partition));
    if (!p) return;
    p.position = offset;
    p.generation += 1;
    this.#startNow();
  }

  /** Resolves once every partition added so far has a position (its start is known). */
  positioned(): Promise<void> {
    if (!this.#hasUnpositioned()) return Promise.resolve();
    this.#positioned ??= Promise.withResolvers<void>();
    return this.#positioned.promise;
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#loop = this.#fetchLoop();
    // On a timer of its own: a loop busy handing over a backlog goes round only now and then.
    if (this.#o.onHighWatermark) {
      const every = this.#o.endsEveryMs ?? 2_000;
      this.#endsTimer = setInterval(() => this.#readStaleEnds(), Math.max(100, every / 4));
      this.#endsTimer.unref();
    }
  }

  /** Stops fetching; resolves when no fetch is in flight. */
  async stop(): Promise<void> {
    this.#running = false;
    clearInterval(this.#endsTimer);
    this.#wake?.();
    await this.#loop?.catch(() => undefined);
    await this.#prompt;
    await this.#readingEnds;
    this.#loop = undefined;
    await Promise.all([this.#pool.close(), this.#promptPool.close()]).catch(() => undefined);
  }

  /** Wakes the loop now (an assignment changed, a heartbeat arrived). */
  wake(): void {
    this.#wake?.();
  }

  /** New work: an idle loop wakes; a loop inside a round's long poll gets a prompt fetch beside it. */
  #startNow(): void {
    if (!this.#running) return;
    if (this.#wake) {
      this.#wake();
      return;
    }
    if (this.#prompt) {
      this.#promptAgain = true;
      return;
    }
    this.#prompt = this.#promptFetches().finally(() => (this.#prompt = undefined));
  }

  async #promptFetches(): Promise<void> {
    do {
      this.#promptAgain = false;
      try {
        await this.#positionDue();
        await this.#fetchRound(this.#promptPool);
      } catch (err) {
        // The loop's next round asks again, with its backoff.
        this.#refreshMetadata = true;
        this.#o.onError?.('fetch', err);
        return;
      }
    } while (this.#promptAgain && this.#running);
  }

  async #fetchLoop(): Promise<void> {
    while (this.#running) {
      try {
        await this.#positionDue();
        const fetched = await this.#fetchRound();
        this.#loopFailures = 0;
        if (!fetched) await this.#idle(100);
      } catch (err) {
        // Metadata, offsets or the whole fetch failed: refresh metadata, back off, go on.
        this.#refreshMetadata = true;
        this.#loopFailures += 1;
        this.#o.onError?.('fetch', err);
        await this.#idle(retryDelay(this.#loopFailures));
      }
    }
  }

  /**
   * Reads the ends of partitions no fetch has answered for lately, beside the loop (one at a time): during
   * a backlog a lane's partitions wait paused, and the lag gauge read 0 while the broker counted 300,000
   * behind (the eighth audit), so the lag alerts could not fire.
   */
  #readStaleEnds(): void {
    const report = this.#o.onHighWatermark;
    if (!report || this.#readingEnds || !this.#running) return;
    const now = Date.now();
    const every = this.#o.endsEveryMs ?? 2_000;
    const stale = [...this.#parts.values()].filter(
      (p) => p.position !== undefined && now - p.endsAt >= every,
    );
    if (stale.length === 0) return;
    const parts = new Map<string, number[]>();
    for (const p of stale) {
      p.endsAt = now;
      parts.set(p.topic, [...(parts.get(p.topic) ?? []), p.partition]);
    }
    this.#readingEnds = this.#o.consumer
      .listOffsets({
        topics: [...parts.keys()],
        partitions: Object.fromEntries(parts),
        timestamp: ListOffsetTimestamps.LATEST,
      })
      .then((ends) => {
        for (const p of stale) {
          const end = ends.get(p.topic)?.[p.partition];
          if (
            end === undefined ||
            p.position === undefined ||
            this.#parts.get(key(p.topic, p.partition)) !== p
          )
            continue;
          report(p.topic, p.partition, p.position, end);
        }
      })
      .catch((err: unknown) => this.#o.onError?.('reading partition ends', err))
      .finally(() => (this.#readingEnds = undefined));
  }

  #hasUnpositioned(): boolean {
    for (const p of this.#parts.values()) if (p.position === undefined) return true;
    return false;
  }

  async #idle(ms: number): Promise<void> {
    if (!this.#running) return;
    const { promise, resolve } = Promise.withResolvers<void>();
    const timer = setTimeout(resolve, ms);
    this.#wake = resolve;
    await promise;
    clearTimeout(timer);
    this.#wake = undefined;
  }

  /**
   * Finds where new partitions start, unless that failed a moment ago: a failure (a topic deleted under
   * its assignment, a leader away) is said and tried again with its own backoff, and never stops the
   * partitions already positioned from being fetched.
   */
  async #positionDue(): Promise<void> {
    if (Date.now() < this.#positionRetryAt) return;
    const added = this.#added;
    try {
      await this.#initPositions();
      this.#positionFailures = 0;
    } catch (err) {
      this.#positionFailures += 1;
      if (added === this.#added) {
        this.#positionRetryAt = Date.now() + retryDelay(this.#positionFailures);
      }
      this.#refreshMetadata = true;
      this.#o.onError?.('fetch', err);
    }
  }

  /** Each topic's partitions apart, so that a topic whose offsets cannot be read holds up no other. */
  async #initPositions(): Promise<void> {
    const byTopic = new Map<string, number[]>();
    for (const p of this.#parts.values()) {
      if (p.position === undefined) byTopic.set(p.topic, [...(byTopic.get(p.topic) ?? []), p.partition]);
    }
    if (byTopic.size === 0) return;
    const outcomes = await Promise.allSettled(
      [...byTopic].map(([topic, partitions]) => this.#positionTopic(topic, partitions)),
    );
    if (!this.#hasUnpositioned() && this.#positioned) {
      this.#positioned.resolve();
      this.#positioned = undefined;
    }
    const failed = outcomes.find((o) => o.status === 'rejected');
    if (failed) throw failed.reason;
  }

  async #positionTopic(topic: string, partitions: number[]): Promise<void> {
    let missing = partitions;
    if (this.#o.startFrom === 'committed') {
      for (const partition of partitions) this.#committedMetadata.delete(key(topic, partition));
      const committed = await this.#o.consumer.listCommittedOffsets({ topics: [{ topic, partitions }] });
      missing = [];
      for (const partition of partitions) {
        const offset = committed.get(topic)?.[partition];
        const p = this.#parts.get(key(topic, partition));
        if (!p || p.position !== undefined) continue;
        const fallback = this.#o.fallback?.(topic, partition);
        if (offset !== undefined && offset >= 0n) {
          p.position = offset;
          p.committedTopicId = topicIdOfCommitMetadata(this.#committedMetadata.get(key(topic, partition)));
        } else if (fallback !== undefined) p.position = fallback;
        else missing.push(partition);
      }
    }
    const reset =
      this.#o.startFrom === 'latest'
        ? 'latest'
        : this.#o.startFrom === 'earliest'
          ? 'earliest'
          : (this.#o.reset ?? 'earliest');
    if (missing.length > 0) await this.#resetTo(new Map([[topic, missing]]), reset);
  }

  async #resetTo(parts: Map<string, number[]>, to: 'earliest' | 'latest'): Promise<void> {
    const offsets = await this.#o.consumer.listOffsets({
      topics: [...parts.keys()],
      partitions: Object.fromEntries(parts),
      timestamp: to === 'earliest' ? ListOffsetTimestamps.EARLIEST : ListOffsetTimestamps.LATEST,
    });
    for (const [topic, partitions] of parts) {
      for (const partition of partitions) {
        const p = this.#parts.get(key(topic, partition));
        const offset = offsets.get(topic)?.[partition];
        if (p && offset !== undefined && p.position === undefined) {
          p.position = offset;
          p.generation += 1;
        }
      }
    }
  }

  /** One fetch per leader for every fetchable partition not already asked for; false when there was
   * nothing to fetch. */
  async #fetchRound(pool: ConnectionPool = this.#pool): Promise<boolean> {
    const now = Date.now();
    const fetchable = [...this.#parts.values()].filter(
      (p) =>
        !p.paused &&
        p.position !== undefined &&
        p.backoffUntil <= now &&
        !this.#inFlight.has(key(p.topic, p.partition)),
    );
    if (fetchable.length === 0) return false;
    const topics = [...new Set(fetchable.map((p) => p.topic))];
    if (this.#refreshMetadata || !this.#metadata || topics.some((t) => !this.#metadata?.topics.has(t))) {
      this.#metadata = await this.#o.consumer.metadata({ topics, forceUpdate: true });
      this.#refreshMetadata = false;
    }
    const metadata = this.#metadata;
    const byNode = new Map<number, PartitionState[]>();
    for (const p of await this.#sameTopics(fetchable, metadata)) {
      const leader = metadata.topics.get(p.topic)?.partitions[p.partition]?.leader;
      if (leader === undefined || leader < 0) {
        this.#partitionFailed(p);
        this.#refreshMetadata = true;
        continue;
      }
      byNode.set(leader, [...(byNode.get(leader) ?? []), p]);
    }
    this.#connectPromptPool(metadata, [...byNode.keys()]);
    await Promise.all([...byNode].map(([node, parts]) => this.#fetchFrom(node, parts, metadata, pool)));
    return byNode.size > 0;
  }

  /**
   * The partitions of `fetchable` still read under the topic id their lane knows (topicIds). One fetched
   * for the first time under a new id (its topic deleted and created again since the lane last read it)
   * starts from its log start; one whose id changed since this fetcher began reading it is left out, and
   * said (onRecreated): its position, and what its lane holds of it, are the deleted topic's.
   */
  async #sameTopics(fetchable: PartitionState[], metadata: ClusterMetadata): Promise<PartitionState[]> {
    const seen = this.#o.topicIds;
    if (!seen) return fetchable;
    const kept: PartitionState[] = [];
    const restart: { p: PartitionState; id: string; from: bigint | undefined }[] = [];
    const recreated = new Map<string, { before: string; now: string }>();
    for (const p of fetchable) {
      const id = knownTopicId(metadata.topics.get(p.topic)?.id);
      if (id === undefined || p.topicId === id) {
        kept.push(p);
      } else if (p.topicId !== undefined) {
        recreated.set(p.topic, { before: p.topicId, now: id });
      } else {
        // The committed offset's own tag first: the lane may have read the deleted topic, or not at all.
        const before = p.committedTopicId ?? seen.get(p.topic);
        if (before !== undefined && before !== id) {
          restart.push({ p, id, from: p.position });
          continue;
        }
        p.topicId = id;
        seen.set(p.topic, id);
        kept.push(p);
      }
    }
    for (const [topic, { before, now }] of recreated) this.#o.onRecreated?.(topic, before, now);
    if (restart.length === 0) return kept;
    const parts = new Map<string, number[]>();
    for (const { p } of restart) {
      p.position = undefined;
      parts.set(p.topic, [...(parts.get(p.topic) ?? []), p.partition]);
    }
    // Should this fail, the partitions are positioned again (from the name's committed offsets) and
    // restarted again at the next round: the id is taken as known only once they start from the log start.
    await this.#resetTo(parts, 'earliest');
    for (const { p, id, from } of restart) {
      if (p.position === undefined) continue;
      p.topicId = id;
      seen.set(p.topic, id);
      this.#o.onRestarted?.(p.topic, p.partition, from, p.position);
      kept.push(p);
    }
    return kept;
  }

  #connectPromptPool(metadata: ClusterMetadata, nodes: number[]): void {
    for (const node of nodes) {
      const broker = metadata.brokers.get(node);
      if (!broker || this.#promptConnected.has(node)) continue;
      this.#promptConnected.add(node);
      // Best effort: a prompt fetch connects itself if this did not.
      this.#promptPool.get(broker).catch(() => this.#promptConnected.delete(node));
    }
  }

  async #fetchFrom(
    node: number,
    parts: PartitionState[],
    metadata: ClusterMetadata,
    pool: ConnectionPool,
  ): Promise<void> {
    const keys = parts.map((p) => key(p.topic, p.partition));
    for (const k of keys) this.#inFlight.add(k);
    try {
      await this.#fetchAndApply(node, parts, metadata, pool);
    } finally {
      for (const k of keys) this.#inFlight.delete(k);
    }
  }

  async #fetchAndApply(
    node: number,
    parts: PartitionState[],
    metadata: ClusterMetadata,
    pool: ConnectionPool,
  ): Promise<void> {
    // What each partition looked like when asked for: a response is applied only if it still matches.
    const asked = new Map(
      parts.map((p) => [key(p.topic, p.partition), { generation: p.generation, position: p.position }]),
    );
    const topics = new Map<string, FetchRequestTopic>();
    const names = new Map<string, string>();
    for (const p of parts) {
      const id = metadata.topics.get(p.topic)?.id;
      if (!id || p.position === undefined) continue;
      names.set(id, p.topic);
      this.#asking.set(`${id}:${p.partition}`, p.position);
      let t = topics.get(id);
      if (!t) topics.set(id, (t = { topicId: id, partitions: [] }));
      t.partitions.push({
        partition: p.partition,
        fetchOffset: p.position,
        partitionMaxBytes: this.#o.partitionMaxBytes ?? 1_048_576,
        currentLeaderEpoch: -1,
        lastFetchedEpoch: -1,
      });
    }
    if (topics.size === 0) return;
    let response: FetchResponse;
    try {
      response = await this.#fetch(node, topics, pool);
    } finally {
      for (const [id, t] of topics)
        for (const { partition } of t.partitions) this.#asking.delete(`${id}:${partition}`);
    }
    const handedOver = { sinceYield: 0 };
    for (const t of response.responses) {
      const topic = names.get(t.topicId) ?? t.topicId;
      for (const r of t.partitions) {
        const p = this.#parts.get(key(topic, r.partitionIndex));
        const was = asked.get(key(topic, r.partitionIndex));
        // Removed, sought or paused meanwhile: drop what came back (a paused partition fetches it again).
        if (!p || !was || p.generation !== was.generation || p.position !== was.position || p.paused)
          continue;
        if (r.errorCode !== 0) {
          await this.#partitionError(p, r);
          continue;
        }
        p.failures = 0;
        await this.#deliver(p, r, handedOver);
        p.endsAt = Date.now();
        if (p.position !== undefined && this.#parts.get(key(topic, r.partitionIndex)) === p)
          this.#o.onEnds?.(topic, r.partitionIndex, {
            position: p.position,
            highWatermark: r.highWatermark,
            stableOffset: r.lastStableOffset,
          });
      }
    }
  }

  async #fetch(
    node: number,
    topics: Map<string, FetchRequestTopic>,
    pool: ConnectionPool,
  ): Promise<FetchResponse> {
    try {
      return await this.#o.consumer.fetch({
        node,
        topics: [...topics.values()],
        maxWaitTime: this.#o.maxWaitMs ?? 100,
        minBytes: 1,
        maxBytes: this.#o.maxBytes ?? 4 * 1_048_576,
        connectionPool: pool,
      });
    } catch (err) {
      // A partition error fails the whole request; the response inside still carries the other partitions.
      const inner = responseOf(err);
      if (!inner) throw err;
      return inner;
    }
  }

  async #deliver(
    p: PartitionState,
    r: FetchResponsePartition,
    handedOver: { sinceYield: number },
  ): Promise<void> {
    const from = p.position;
    if (from === undefined || !r.records || r.records.length === 0) return;
    const out: FetchedRecord[] = [];
    let next = from;
    for (const batch of r.records as ReadBatch[]) {
      const end = batch.firstOffset + BigInt(batch.lastOffsetDelta) + 1n;
      if (end <= from) continue;
      if (end > next) next = end;
      // Control batches (transaction markers) are skipped; the position still moves past them.
      if ((batch.attributes & CONTROL_BATCH) !== 0) continue;
      if (batch.unreadable) {
        out.push({
          topic: p.topic,
          partition: p.partition,
          offset: end - 1n,
          timestamp: batch.maxTimestamp,
          key: null,
          value: null,
          headers: [],
          unreadable: { ...batch.unreadable, firstOffset: batch.firstOffset },
        });
        continue;
      }
      // Cut short (bounded-fetch.ts): the rest of the batch is fetched again from past its last record
      // read, never from past the batch.
      if (batch.truncated) {
        const last = batch.records.at(-1);
        const after = last ? batch.firstOffset + BigInt(last.offsetDelta) + 1n : from;
        next = after > from ? after : from;
      }
      const appendTime = (batch.attributes & LOG_APPEND_TIME) !== 0 ? batch.maxTimestamp : undefined;
      for (const rec of batch.records) {
        const offset = batch.firstOffset + BigInt(rec.offsetDelta);
        if (offset < from) continue;
        out.push({
          topic: p.topic,
          partition: p.partition,
          offset,
          // As the broker computes it (a Java long): a forged delta wraps, never leaves int64.
          timestamp: appendTime ?? BigInt.asIntN(64, batch.firstTimestamp + rec.timestampDelta),
          key: rec.key,
          value: rec.value,
          headers: rec.headers,
          ...(rec.forgedOffsetDelta === undefined
            ? {}
            : {
                forged: {
                  offsetDelta: rec.forgedOffsetDelta,
                  firstOffset: batch.firstOffset,
                  lastOffset: end - 1n,
                },
              }),
        });
      }
    }
    if (next === from) return;
    const slice = Math.max(1, this.#o.sliceRecords ?? 250);
    const generation = p.generation;
    for (let i = 0; i === 0 || i < out.length; i += slice) {
      // A seek while a slice was taken in (the lane is full: it reads the rest again later) ends the
      // hand-over, even if the partition was resumed since: what follows would leave a gap.
      if (p.generation !== generation) return;
      if (handedOver.sinceYield >= slice) {
        handedOver.sinceYield = 0;
        const at = { generation: p.generation, position: p.position };
        await new Promise<void>((resolve) => setImmediate(resolve));
        const still = this.#parts.get(key(p.topic, p.partition)) === p;
        // Stopping: what was not handed over is left to whoever fetches the partition next.
        if (!this.#running || !still) return;
        if (p.generation !== at.generation || p.position !== at.position || p.paused) return;
      }
      const records = out.length <= slice ? out : out.slice(i, i + slice);
      const last = records[records.length - 1];
      const to = i + slice >= out.length || !last ? next : last.offset + 1n;
      handedOver.sinceYield += records.length;
      p.position = to;
      this.#o.onRecords(p.topic, p.partition, records, to, r.highWatermark);
    }
  }

  async #partitionError(p: PartitionState, r: FetchResponsePartition): Promise<void> {
    if (r.errorCode === OFFSET_OUT_OF_RANGE) {
      // Below the log start (or no log start known): from the earliest; above the end: from the end.
      const from = p.position;
      const below = from !== undefined && from < r.logStartOffset;
      p.position = undefined;
      await this.#resetTo(
        new Map([[p.topic, [p.partition]]]),
        below || r.logStartOffset < 0n ? 'earliest' : 'latest',
      );
      // Said, never silent: the records in between are gone, and nothing else would tell.
      if (from !== undefined && p.position !== undefined && p.position !== from) {
        this.#o.onSkipped?.(p.topic, p.partition, from, p.position);
      }
      return;
    }
    if (METADATA_ERRORS.has(r.errorCode)) this.#refreshMetadata = true;
    this.#partitionFailed(p);
    this.#o.onError?.('fetch', new Error(`${p.topic}/${p.partition}: Kafka error code ${r.errorCode}`));
  }

  #partitionFailed(p: PartitionState): void {
    p.failures += 1;
    p.backoffUntil = Date.now() + Math.min(100 * 2 ** p.failures, 5_000);
  }
}
