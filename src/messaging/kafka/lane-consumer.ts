// A lane's Kafka side: its group membership (the lane's own consumer group, the next-generation protocol:
// only partitions that change owner pause), its producer, and the binding to its engine. Fetched records
// go to the engine as they come, so the next fetch does not wait for processing; nothing is committed
// but what the engine says is safe. A member that loses the group for good is replaced by a new one,
// which starts every partition again from the engine's restart points; the other lanes do not notice.
import type { Logger } from '../../telemetry/logger.ts';
import { backoffDelay } from '../engine/backoff.ts';
import { LaneEngine } from '../engine/lane-engine.ts';
import type { Lifecycle } from '../engine/lifecycle.ts';
import type { ConsumerControl, RecordCheck, RecordSender, Schedulable, UnitWork } from '../engine/ports.ts';
import { OrderedPublisher } from '../engine/publisher.ts';
import { partitionKey } from '../engine/records.ts';
import type { LaneSettings } from '../engine/settings.ts';
import type { KafkaClient } from './client.ts';
import { startsBefore, type FetchedRecord } from './fetcher.ts';
import { createGroupMember, type GroupMember, type GroupMemberFactory } from './group-member.ts';
import { migrateGroupOffsets } from './groups.ts';
import { toInbound } from './inbound.ts';
import { KafkaRecordSender } from './record-sender.ts';
import { TransactionHolds, type PartitionEnds } from './transaction-holds.ts';

/** The lane's producer as the lane drives it. */
export interface LaneSender extends RecordSender {
  connect(): Promise<void>;
  disconnect(): Promise<void>;
}

export interface LaneConsumerOptions<P extends Schedulable> {
  kafka: KafkaClient;
  settings: LaneSettings;
  work: UnitWork<P>;
  checkRecord: RecordCheck;
  logger: Logger;
  lifecycle: Lifecycle;
  /** Membership changes, for readiness. */
  onMembership?: (joined: boolean, detail: string) => void;
  /** Units the engine may run now (settings.yieldTo); the settings' concurrency when absent. */
  concurrencyNow?: () => number;
  /** The Kafka side, replaced by fakes in the in-process tests. */
  ports?: { member?: GroupMemberFactory; sender?: () => LaneSender; migrate?: boolean };
}

export class LaneStartError extends Error {
  override name = 'LaneStartError';
}

/** How long a member may go without an accepted heartbeat before the lane replaces it. */
const STALL_TIMEOUT_MS = 30_000;
/** How long an open transaction may hold a partition before the lane says so. */
const HOLD_WARN_MS = 30_000;

export class LaneConsumer<P extends Schedulable> {
  member: GroupMember;
  readonly engine: LaneEngine<P>;
  readonly #o: LaneConsumerOptions<P>;
  readonly #sender: LaneSender;
  readonly #publisher: OrderedPublisher;
  /** Partitions paused at their replay end: buffer-based resumes leave them alone. */
  readonly #ended = new Set<string>();
  /** The highest end said of each partition (#onEnd). */
  readonly #ends = new Map<string, bigint>();
  #running = false;
  #restartTimer: NodeJS.Timeout | undefined;
  #restarts = 0;
  readonly #holds = new TransactionHolds(HOLD_WARN_MS);
  /** The topic id each topic was last read under, kept across this lane's members (fetcher.ts). */
  readonly #topicIds = new Map<string, string>();

  constructor(options: LaneConsumerOptions<P>) {
    this.#o = options;
    const { kafka, settings, logger, lifecycle } = options;
    const lane = settings.name;
    this.member = this.#newMember();
    this.#sender =
      options.ports?.sender?.() ??
      new KafkaRecordSender(kafka, logger.child({ lane }), { clientIdSuffix: `-producer-${lane}` });
    this.#publisher = new OrderedPublisher({
      sender: this.#sender,
      check: options.checkRecord,
      lane,
      lifecycle,
      backoff: settings.backoff,
      logger,
    });
    this.engine = new LaneEngine<P>({
      settings,
      work: options.work,
      lifecycle,
      logger,
      publisher: this.#publisher,
      control: this.#control(),
      ...(options.concurrencyNow ? { concurrencyNow: options.concurrencyNow } : {}),
    });
  }

  get lane(): string {
    return this.#o.settings.name;
  }

  get settings(): LaneSettings {
    return this.#o.settings;
  }

  /** The engine's hold on the current member. */
  #control(): ConsumerControl {
    return {
      pause: (topic, partition) => this.member.pause(topic, partition),
      resume: (topic, partition) => {
        if (this.#ended.has(partitionKey(topic, partition))) return;
        this.member.resume(topic, partition);
      },
      seek: (topic, partition, offset) => this.member.seek(topic, partition, offset),
      commit: (offsets) => this.member.commit(offsets),
    };
  }

  #newMember(): GroupMember {
    const { kafka, settings, logger, onMembership } = this.#o;
    const lane = this.lane;
    const starts = new Map(
      settings.startOffsets.map((p) => [partitionKey(p.topic, p.partition), BigInt(p.offset)]),
    );
    let member: GroupMember | undefined = undefined;
    const current = () => member !== undefined && member === this.member;
    member = (this.#o.ports?.member ?? createGroupMember)({
      client: kafka,
      groupId: settings.groupId,
      topics: settings.topics,
      name: lane,
      fallbackStart:
        starts.size > 0 ? (topic, partition) => starts.get(partitionKey(topic, partition)) : undefined,
      reset: settings.fromBeginning ? 'earliest' : 'latest',
      maxBytesPerPartition: settings.maxBytesPerPartition,
      maxDecompressedBatchBytes: settings.maxDecompressedBatchBytes,
      topicIds: this.#topicIds,
      stallTimeoutMs: STALL_TIMEOUT_MS,
      hooks: {
        onRecords: (topic, partition, records, next) => {
          if (current()) this.#onRecords(topic, partition, records, next);
        },
        onEnds: (topic, partition, ends) => {
          if (current()) this.#onEnds(topic, partition, ends);
        },
        onHighWatermark: (topic, partition, position, highWatermark) => {
          if (current()) this.#onEnd(topic, partition, position, highWatermark);
        },
        onSkipped: (topic, partition, from, to) => {
          if (current()) this.#onSkipped(topic, partition, from, to);
        },
        onRestarted: (topic, partition, from, to) => {
          if (!current()) return;
          logger.warn(
            { lane, topic, partition, committed: from === undefined ? null : String(from), from: String(to) },
            `${topic} was deleted and created again since this lane last read it, or since its offset ` +
              `was committed: partition ${partition} is read from its start (offset ${to}), not from the ` +
              "offset committed for the name, which may be the deleted topic's",
          );
        },
        onAssignment: (added, removed) => {
          if (!current()) return;
          if (removed.length > 0) this.engine.revoked(removed);
          for (const p of removed) this.#holds.forget(partitionKey(p.topic, p.partition));
          for (const p of [...added, ...removed]) {
            this.#ended.delete(partitionKey(p.topic, p.partition));
            this.#ends.delete(partitionKey(p.topic, p.partition));
          }
          this.#restarts = 0;
          logger.info({ lane, added, removed }, 'assignment changed');
        },
        onMembership: (joined, detail) => {
          if (current()) onMembership?.(joined, detail);
        },
        onFatal: (err) => {
          if (!current() || !this.#running) return;
          logger.error({ lane, err }, 'consumer lost its group membership; replacing it');
          this.#scheduleRestart();
        },
        onError: (what, err) => logger.warn({ lane, err }, `kafka ${what} error (retried)`),
      },
    });
    return member;
  }

  async start(): Promise<void> {
    try {
      await this.#sender.connect();
      await this.#migrateOffsets();
      await this.member.start();
    } catch (err) {
      throw new LaneStartError(
        `lane ${this.lane} could not start: ${err instanceof Error ? err.message : String(err)}`,
        { cause: err },
      );
    }
    this.#running = true;
  }

  /** Carries the offsets of the worker group of earlier versions over to this lane's group, once. */
  async #migrateOffsets(): Promise<void> {
    const { kafka, settings, logger } = this.#o;
    if (!settings.migrateOffsetsFrom || this.#o.ports?.migrate === false) return;
    const admin = kafka.admin();
    await admin.connect();
    try {
      await migrateGroupOffsets(admin, {
        from: settings.migrateOffsetsFrom,
        to: settings.groupId,
        topics: settings.topics,
        logger: logger.child({ lane: this.lane }),
      });
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  }

  #scheduleRestart(): void {
    const { logger, settings } = this.#o;
    // Whatever state its partitions were in (paused, waiting to retry), they start again from their
    // restart points with the new member.
    this.engine.reassigned();
    this.#ended.clear();
    const old = this.member;
    this.member = this.#newMember();
    void old.close().catch(() => undefined);
    const delay = backoffDelay(settings.backoff, this.#restarts);
    this.#restarts += 1;
    logger.warn(
      { lane: this.lane, restart_in_ms: delay, restarts: this.#restarts },
      'starting a new consumer for the lane',
    );
    this.#restartTimer = setTimeout(() => {
      this.#restartTimer = undefined;
      if (!this.#running) return;
      this.member.start().catch((err: unknown) => {
        logger.error({ lane: this.lane, err }, 'the new consumer could not start; trying again');
        if (this.#running) this.#scheduleRestart();
      });
    }, delay);
  }

  #onRecords(topic: string, partition: number, records: FetchedRecord[], next: bigint): void {
    const end = this.#o.settings.endOffset?.(topic, partition);
    const taken = end === undefined ? records : records.filter((r) => startsBefore(r, end));
    const last = taken[taken.length - 1];
    const cut = taken.length < records.length;
    const fetchedTo = cut && last ? last.offset + 1n : next;
    if (last) {
      const receivedAt = Date.now();
      this.engine.accept(
        topic,
        partition,
        taken.map((r) => toInbound(r, receivedAt)),
        fetchedTo,
      );
    }
    if (end !== undefined && (cut || next >= end)) {
      this.#ended.add(partitionKey(topic, partition));
      this.member.pause(topic, partition);
      this.#o.lifecycle.emit('partition.paused', { lane: this.lane, topic, partition, reason: 'end' });
    }
  }

  /** Records the log no longer held where this lane was to read: gone unanswered, which is said loudly. */
  #onSkipped(topic: string, partition: number, from: bigint, to: bigint): void {
    const { lifecycle, logger } = this.#o;
    if (to < from) {
      // The log ends below where this lane stood (truncated by an unclean leader election): it reads on
      // from the new end. A topic of the name created again is told by its topic id, and read from its
      // start (fetcher.ts), unless this process never read the deleted one.
      logger.warn(
        { lane: this.lane, topic, partition, from: String(from), to: String(to) },
        `${topic}/${partition} ends at ${to}, below this lane's position ${from} (the log was truncated, ` +
          'or the topic deleted and created again); reading on from there',
      );
      return;
    }
    const count = Number(to - from);
    logger.error(
      { lane: this.lane, topic, partition, from: String(from), to: String(to), skipped: count },
      `${topic}/${partition}: offsets ${from} to ${to - 1n} (${count} messages) were deleted before this ` +
        'lane read them (retention.ms or retention.bytes shorter than the backlog, or kafka-delete-records); ' +
        'they get no result and no dead letter. Keep retention longer than the longest outage',
    );
    lifecycle.emit('partition.skipped', { lane: this.lane, topic, partition, from, to, count });
  }

  /** The partition's lag against its end, as the broker's committed lag counts it: from the first message
   * not done (a message that keeps failing holds it), not from the fetch position, which runs ahead. The
   * end is the highest one said: a fetch answer handed over for seconds behind a backlog says an older
   * end than a later read of it. */
  #onEnd(topic: string, partition: number, position: bigint, highWatermark: bigint): void {
    const key = partitionKey(topic, partition);
    const known = this.#ends.get(key);
    const end = known !== undefined && known > highWatermark ? known : highWatermark;
    this.#ends.set(key, end);
    const done = this.engine.donePosition(topic, partition);
    const from = done !== undefined && done < position ? done : position;
    const lag = Math.max(0, Number(end - from));
    this.#o.lifecycle.emit('partition.fetched', {
      lane: this.lane,
      topic,
      partition,
      lag,
      highWatermark: end,
    });
  }

  /** The lag after every fetch answer, records or not (a partition held still has one), and holds. */
  #onEnds(topic: string, partition: number, ends: PartitionEnds): void {
    const { logger } = this.#o;
    this.#onEnd(topic, partition, ends.position, ends.highWatermark);
    const hold = this.#holds.observe(partitionKey(topic, partition), ends, Date.now());
    if (hold?.kind === 'held') {
      logger.warn(
        {
          lane: this.lane,
          topic,
          partition,
          stable_offset: String(hold.stableOffset),
          records_behind: String(hold.behind),
          held_ms: hold.heldMs,
        },
        `${topic}/${partition} is held at offset ${hold.stableOffset} by a transaction a producer opened and ` +
          `has not ended; ${hold.behind} records wait behind it. The broker aborts it after the producer's ` +
          'transaction.timeout.ms, at most transaction.max.timeout.ms (15 min by default): lower that on the ' +
          'broker, or grant TransactionalId Write only to producers you trust',
      );
    } else if (hold?.kind === 'released') {
      logger.info(
        { lane: this.lane, topic, partition, held_ms: hold.heldMs },
        `${topic}/${partition} is no longer held`,
      );
    }
  }

  /** Stops fetching, lets running units finish and publish, commits, then leaves the group. */
  async stop(timeoutMs: number): Promise<void> {
    const started = this.#running;
    this.#running = false;
    if (this.#restartTimer) clearTimeout(this.#restartTimer);
    if (started) {
      await this.member.stopFetching().catch(() => undefined);
      await this.engine.drain(timeoutMs);
    }
    this.#publisher.close();
    await this.member.close().catch(() => undefined);
    await this.#sender.disconnect().catch(() => undefined);
  }
}
