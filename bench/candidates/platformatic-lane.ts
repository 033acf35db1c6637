// Bench-only candidate for issue 25: what the engine asks of a Kafka consumer (ports.ts's ConsumerControl:
// per-partition pause, resume, seek, commit) on @platformatic/kafka with the KIP-848 consumer group protocol.
//
// The library's MessagesStream cannot be used for records: it has no per-partition pause, resume or seek,
// and on every assignment change it rewinds every assigned partition to its committed offset
// (#refreshOffsets/#assignOffsets). So membership and fetching are split:
// - membership: consume({ topics }) starts the ConsumerGroupHeartbeat loop and keeps the topics tracked; the
//   stream it returns is never read. The library pauses and resumes every stream around a revocation, which
//   would put an unread stream into flowing mode (it then fetches and drops records), so this stream's
//   pause/resume are disabled: it stays with readableFlowing === null and never fetches.
// - records: an own fetch loop over consumer.fetch() on an own connection pool (a long poll must not hold up
//   heartbeats and commits on the coordinator's connection), with a position per assigned partition.
import {
  ConnectionPool,
  Consumer,
  ListOffsetTimestamps,
  type ClusterMetadata,
  type GroupAssignment,
  type MessagesStream,
} from '@platformatic/kafka';
import type { ConsumerControl, PartitionOffset } from '../../src/messaging/engine/ports.ts';

// The fetch types are not exported from the package root.
type FetchOptions = Parameters<Consumer['fetch']>[0];
type FetchRequestTopic = FetchOptions['topics'][number];
type FetchResponse = Awaited<ReturnType<Consumer['fetch']>>;
type FetchResponsePartition = FetchResponse['responses'][number]['partitions'][number];

export interface LaneRecord {
  topic: string;
  partition: number;
  offset: bigint;
  timestamp: bigint;
  key: Buffer | null;
  value: Buffer | null;
  headers: [Buffer | null, Buffer | null][];
}

export interface TopicPartition {
  topic: string;
  partition: number;
}

export interface PlatformaticLaneOptions {
  brokers: string[];
  clientId: string;
  groupId: string;
  topics: string[];
  /** Records of one partition in offset order; `next` is the partition's position after them (control
   * batches and compacted gaps included). Called synchronously from the fetch loop. */
  onRecords: (topic: string, partition: number, records: LaneRecord[], next: bigint) => void;
  /** Partitions this member gained and lost, as the broker's assignment changes (KIP-848: incremental). */
  onAssignment?: (added: TopicPartition[], removed: TopicPartition[]) => void;
  onError?: (what: string, err: unknown) => void;
  maxWaitMs?: number;
  partitionMaxBytes?: number;
  maxBytes?: number;
  /** How long after a revocation a commit of the partition is still sent (ms, default 1000). */
  revokedCommitGraceMs?: number;
  /** Rebalance timeout the member announces (ms). */
  rebalanceTimeoutMs?: number;
}

interface PartitionState {
  topic: string;
  partition: number;
  /** Next offset to fetch; undefined until the committed (or earliest) offset is known. */
  position: bigint | undefined;
  paused: boolean;
  /** Bumped by every seek and by reassignment: a fetch response from an older generation is dropped. */
  generation: number;
  backoffUntil: number;
  failures: number;
}

const key = (topic: string, partition: number) => `${topic}\u0000${partition}`;
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

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

export class PlatformaticLane implements ConsumerControl {
  readonly consumer: Consumer;
  readonly #o: PlatformaticLaneOptions;
  readonly #pool: ConnectionPool;
  readonly #parts = new Map<string, PartitionState>();
  readonly #revokedAt = new Map<string, number>();
  #stream: MessagesStream<Buffer, Buffer, Buffer, Buffer> | undefined;
  #seenAssignments: GroupAssignment[] | null = null;
  #running = false;
  #loop: Promise<void> | undefined;
  #wake: (() => void) | undefined;
  #metadata: ClusterMetadata | undefined;
  #refreshMetadata = true;
  #loopFailures = 0;
  /** Counters for the bench. */
  readonly stats = {
    fetches: 0,
    fetchErrors: 0,
    droppedSought: 0,
    controlBatches: 0,
    assignmentChanges: 0,
    commitsDropped: 0,
  };

  constructor(options: PlatformaticLaneOptions) {
    this.#o = options;
    this.consumer = new Consumer({
      clientId: options.clientId,
      bootstrapBrokers: options.brokers,
      groupId: options.groupId,
      groupProtocol: 'consumer',
      // The library checks it against its classic sessionTimeout (default 60 s), unused by this protocol.
      rebalanceTimeout: options.rebalanceTimeoutMs ?? 60_000,
      autocommit: false,
      // Fetches are retried by this loop itself (with metadata refresh); others keep the library's delay.
      retryDelay: (_client, operation, attempt) =>
        operation === 'fetch' ? 50 * attempt : Math.min(250 * 2 ** attempt, 2_000),
    });
    this.#pool = new ConnectionPool(`${options.clientId}-fetch`);
    // The library emits 'error' on heartbeat failures it will retry; an EventEmitter without a listener
    // would throw them.
    this.consumer.on('error', (err: unknown) => this.#o.onError?.('consumer', err));
    this.consumer.on('consumer:heartbeat:end', () => this.#wake?.());
  }

  /** Partitions assigned now. */
  get assigned(): TopicPartition[] {
    return [...this.#parts.values()].map(({ topic, partition }) => ({ topic, partition }));
  }

  /** Whether the member has joined and received its first assignment (possibly empty). */
  get ready(): boolean {
    return this.consumer.isActive() && this.consumer.assignments !== null;
  }

  async start(): Promise<void> {
    this.#running = true;
    await this.#join();
    this.#loop = this.#fetchLoop();
  }

  async #join(): Promise<void> {
    const stream = await this.consumer.consume({ topics: this.#o.topics, autocommit: false, mode: 'latest' });
    // Keep the stream out of flowing mode for good (see the file's head).
    stream.pause = () => stream;
    stream.resume = () => stream;
    stream.on('error', (err: unknown) => this.#o.onError?.('membership stream', err));
    stream.once('close', () => {
      // Closing the stream untracks the topics: the member would drop out of the group. Join again.
      if (this.#stream !== stream || !this.#running) return;
      this.#o.onError?.('membership stream', new Error('membership stream closed; joining again'));
      this.#stream = undefined;
      void sleep(500)
        .then(() => (this.#running ? this.#join() : undefined))
        .catch((err: unknown) => {
          this.#o.onError?.('rejoin', err);
        });
    });
    this.#stream = stream;
  }

  pause(topic: string, partition: number): void {
    const p = this.#parts.get(key(topic, partition));
    if (p) p.paused = true;
  }

  resume(topic: string, partition: number): void {
    const p = this.#parts.get(key(topic, partition));
    if (p?.paused) {
      p.paused = false;
      this.#wake?.();
    }
  }

  seek(topic: string, partition: number, offset: bigint): void {
    const p = this.#parts.get(key(topic, partition));
    if (!p) return;
    p.position = offset;
    p.generation += 1;
    this.#wake?.();
  }

  /** Commits offsets of partitions assigned now, or revoked less than revokedCommitGraceMs ago; drops the
   * rest. The KIP-848 broker checks only the member epoch, not ownership: a commit of a partition that moved
   * is accepted and can replace the new owner's later commit (a rewind: records answered twice). The library
   * acknowledges a revocation at once, with no hook to finish first, so a commit of work that was in flight
   * is let through for a short while: the new owner learns of the partition only on its next heartbeat. */
  async commit(offsets: PartitionOffset[]): Promise<void> {
    const now = Date.now();
    const grace = this.#o.revokedCommitGraceMs ?? 1_000;
    const allowed = offsets.filter((o) => {
      const k = key(o.topic, o.partition);
      if (this.#parts.has(k)) return true;
      const at = this.#revokedAt.get(k);
      return at !== undefined && now - at < grace;
    });
    this.stats.commitsDropped += offsets.length - allowed.length;
    if (allowed.length === 0) return;
    await this.consumer.commit({
      offsets: allowed.map((o) => ({
        topic: o.topic,
        partition: o.partition,
        offset: BigInt(o.offset),
        leaderEpoch: -1,
      })),
    });
  }

  /** Stops fetching (the member stays in the group): what was handed over can still be answered and
   * committed before close(). */
  async stopFetching(): Promise<void> {
    this.#running = false;
    this.#wake?.();
    await this.#loop?.catch(() => undefined);
  }

  /** Stops fetching, then leaves the group at once (a leave heartbeat with epoch -1). */
  async close(): Promise<void> {
    await this.stopFetching();
    const stream = this.#stream;
    this.#stream = undefined;
    if (stream) {
      // Give the stream its methods back, so that close() can end it.
      delete (stream as { pause?: unknown }).pause;
      delete (stream as { resume?: unknown }).resume;
    }
    await this.consumer.close(true);
    await this.#pool.close().catch(() => undefined);
  }

  /** Applies the broker's current assignment: new partitions start from their committed offset (else the
   * earliest), kept ones keep their positions, revoked ones are dropped. */
  async #syncAssignment(): Promise<void> {
    const current = this.consumer.assignments;
    if (current === this.#seenAssignments) return;
    this.#seenAssignments = current;
    this.stats.assignmentChanges += 1;
    const wanted = new Map<string, TopicPartition>();
    for (const a of current ?? []) {
      for (const partition of a.partitions)
        wanted.set(key(a.topic, partition), { topic: a.topic, partition });
    }
    const removed: TopicPartition[] = [];
    for (const [k, p] of this.#parts) {
      if (!wanted.has(k)) {
        this.#parts.delete(k);
        this.#revokedAt.set(k, Date.now());
        removed.push({ topic: p.topic, partition: p.partition });
      }
    }
    const added: TopicPartition[] = [];
    for (const [k, tp] of wanted) {
      if (this.#parts.has(k)) continue;
      this.#revokedAt.delete(k);
      this.#parts.set(k, {
        ...tp,
        position: undefined,
        paused: false,
        generation: 0,
        backoffUntil: 0,
        failures: 0,
      });
      added.push(tp);
    }
    if (added.length > 0 || removed.length > 0) this.#o.onAssignment?.(added, removed);
    if (added.length > 0) await this.#initPositions(added);
  }

  async #initPositions(parts: TopicPartition[]): Promise<void> {
    const byTopic = new Map<string, number[]>();
    for (const { topic, partition } of parts) byTopic.set(topic, [...(byTopic.get(topic) ?? []), partition]);
    const committed = await this.consumer.listCommittedOffsets({
      topics: [...byTopic].map(([topic, partitions]) => ({ topic, partitions })),
    });
    const missing = new Map<string, number[]>();
    for (const { topic, partition } of parts) {
      const p = this.#parts.get(key(topic, partition));
      if (!p || p.position !== undefined) continue;
      const offset = committed.get(topic)?.[partition];
      if (offset !== undefined && offset >= 0n) p.position = offset;
      else missing.set(topic, [...(missing.get(topic) ?? []), partition]);
    }
    if (missing.size > 0) await this.#resetTo(missing, ListOffsetTimestamps.EARLIEST);
  }

  async #resetTo(parts: Map<string, number[]>, timestamp: bigint): Promise<void> {
    const offsets = await this.consumer.listOffsets({
      topics: [...parts.keys()],
      partitions: Object.fromEntries(parts),
      timestamp,
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

  async #fetchLoop(): Promise<void> {
    while (this.#running) {
      try {
        await this.#syncAssignment();
        const fetched = await this.#fetchRound();
        this.#loopFailures = 0;
        if (!fetched) await this.#idle(100);
      } catch (err) {
        // Metadata, offsets or the whole fetch failed: refresh metadata, back off, go on.
        this.stats.fetchErrors += 1;
        this.#refreshMetadata = true;
        this.#loopFailures += 1;
        this.#o.onError?.('fetch loop', err);
        // A failed position lookup is tried again on the next round.
        if (this.#seenAssignments !== this.consumer.assignments || this.#hasUnpositioned()) {
          this.#seenAssignments = null;
        }
        await this.#idle(Math.min(100 * 2 ** this.#loopFailures, 5_000));
      }
    }
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

  /** One fetch per leader for every fetchable partition; false when there was nothing to fetch. */
  async #fetchRound(): Promise<boolean> {
    const now = Date.now();
    const fetchable = [...this.#parts.values()].filter(
      (p) => !p.paused && p.position !== undefined && p.backoffUntil <= now,
    );
    if (fetchable.length === 0) return false;
    if (this.#refreshMetadata || !this.#metadata) {
      this.#metadata = await this.consumer.metadata({ topics: this.#o.topics, forceUpdate: true });
      this.#refreshMetadata = false;
    }
    const metadata = this.#metadata;
    const byNode = new Map<number, PartitionState[]>();
    for (const p of fetchable) {
      const leader = metadata.topics.get(p.topic)?.partitions[p.partition]?.leader;
      if (leader === undefined || leader < 0) {
        this.#partitionFailed(p);
        this.#refreshMetadata = true;
        continue;
      }
      byNode.set(leader, [...(byNode.get(leader) ?? []), p]);
    }
    await Promise.all([...byNode].map(([node, parts]) => this.#fetchFrom(node, parts, metadata)));
    return byNode.size > 0;
  }

  async #fetchFrom(node: number, parts: PartitionState[], metadata: ClusterMetadata): Promise<void> {
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
    this.stats.fetches += 1;
    try {
      response = await this.consumer.fetch({
        node,
        topics: [...topics.values()],
        maxWaitTime: this.#o.maxWaitMs ?? 100,
        minBytes: 1,
        maxBytes: this.#o.maxBytes ?? 4 * 1_048_576,
        connectionPool: this.#pool,
      });
    } catch (err) {
      // A partition error fails the whole request; the response inside still carries the other partitions.
      const inner = responseOf(err);
      if (!inner) throw err;
      this.stats.fetchErrors += 1;
      response = inner;
    }
    for (const t of response.responses) {
      const topic = names.get(t.topicId) ?? t.topicId;
      for (const r of t.partitions) {
        const p = this.#parts.get(key(topic, r.partitionIndex));
        const was = asked.get(key(topic, r.partitionIndex));
        // Revoked, sought or paused meanwhile: drop what came back (a paused partition fetches it again).
        if (!p || !was || p.generation !== was.generation || p.position !== was.position) {
          if (p && was && p.generation !== was.generation) this.stats.droppedSought += 1;
          continue;
        }
        if (p.paused) continue;
        if (r.errorCode !== 0) {
          await this.#partitionError(p, r);
          continue;
        }
        p.failures = 0;
        this.#deliver(p, r);
      }
    }
  }

  #deliver(p: PartitionState, r: FetchResponsePartition): void {
    const from = p.position;
    if (from === undefined || !r.records || r.records.length === 0) return;
    const out: LaneRecord[] = [];
    let next = from;
    for (const batch of r.records) {
      const end = batch.firstOffset + BigInt(batch.lastOffsetDelta) + 1n;
      if (end <= from) continue;
      if (end > next) next = end;
      // Control batches (transaction markers) are skipped; the position still moves past them.
      if ((batch.attributes & CONTROL_BATCH) !== 0) {
        this.stats.controlBatches += 1;
        continue;
      }
      for (const rec of batch.records) {
        const offset = batch.firstOffset + BigInt(rec.offsetDelta);
        if (offset < from) continue;
        out.push({
          topic: p.topic,
          partition: p.partition,
          offset,
          timestamp: batch.firstTimestamp + rec.timestampDelta,
          key: rec.key,
          value: rec.value,
          headers: rec.headers,
        });
      }
    }
    if (next === from) return;
    p.position = next;
    this.#o.onRecords(p.topic, p.partition, out, next);
  }

  async #partitionError(p: PartitionState, r: FetchResponsePartition): Promise<void> {
    if (r.errorCode === OFFSET_OUT_OF_RANGE) {
      // Below the log start: from the earliest; above the end: from the end.
      const below = p.position !== undefined && p.position < r.logStartOffset;
      p.position = undefined;
      await this.#resetTo(
        new Map([[p.topic, [p.partition]]]),
        below || r.logStartOffset < 0n ? ListOffsetTimestamps.EARLIEST : ListOffsetTimestamps.LATEST,
      );
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
