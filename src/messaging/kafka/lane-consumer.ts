// A lane's Kafka side: its consumer (a member of the lane's own group, subscribed to the lane's topics),
// its producer, and the binding to its engine. eachBatch hands the
// fetched messages to the engine and returns at once, so the next fetch does not wait for processing;
// kafkajs never commits by itself (autoCommit off): the engine commits what is safe, and after any
// rebalance it seeks a partition back to its restart point if kafkajs resumed past it.
import type { Consumer, EachBatchPayload, Kafka } from 'kafkajs';
import type { Logger } from '../../telemetry/logger.ts';
import { backoffDelay } from '../engine/backoff.ts';
import { LaneEngine } from '../engine/lane-engine.ts';
import type { Lifecycle } from '../engine/lifecycle.ts';
import type { ConsumerControl, RecordCheck, Schedulable, UnitWork } from '../engine/ports.ts';
import { OrderedPublisher } from '../engine/publisher.ts';
import { partitionKey } from '../engine/records.ts';
import type { LaneSettings } from '../engine/settings.ts';
import { toInbound } from './inbound.ts';
import { migrateGroupOffsets } from './groups.ts';
import './offset-manager-guard.ts';
import { KafkaRecordSender } from './record-sender.ts';

export interface LaneConsumerOptions<P extends Schedulable> {
  kafka: Kafka;
  settings: LaneSettings;
  work: UnitWork<P>;
  checkRecord: RecordCheck;
  logger: Logger;
  lifecycle: Lifecycle;
  /** Membership changes, for readiness. */
  onMembership?: (joined: boolean, detail: string) => void;
}

export class LaneStartError extends Error {
  override name = 'LaneStartError';
}

export class LaneConsumer<P extends Schedulable> {
  consumer: Consumer;
  readonly engine: LaneEngine<P>;
  readonly #o: LaneConsumerOptions<P>;
  readonly #sender: KafkaRecordSender;
  readonly #publisher: OrderedPublisher;
  /** Partitions paused at their replay end: buffer-based resumes leave them alone. */
  readonly #ended = new Set<string>();
  #running = false;
  #restartTimer: NodeJS.Timeout | undefined;
  #restarts = 0;
  /** Whether this lane has committed anything: a restarted replay seeks to its start only before that. */
  #committed = false;
  /** The partitions of the latest assignment: a seek for any other would stay pending in kafkajs and
   * apply if the partition came back much later. */
  #assigned = new Set<string>();

  constructor(options: LaneConsumerOptions<P>) {
    this.#o = options;
    const { kafka, settings, logger, lifecycle } = options;
    const lane = settings.name;
    this.consumer = this.#newConsumer();
    this.#sender = new KafkaRecordSender(
      () => kafka.producer({ allowAutoTopicCreation: false, idempotent: true, maxInFlightRequests: 1 }),
      logger.child({ lane }),
    );
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
    });
  }

  get lane(): string {
    return this.#o.settings.name;
  }

  /** The engine's hold on the current consumer. A consumer that crashed or is being replaced may throw on
   * pause, resume or seek: the new one starts unpaused from the restart points, so that is logged only. */
  #control(): ConsumerControl {
    const guarded = (what: string, act: () => void) => {
      try {
        act();
      } catch (err) {
        this.#o.logger.debug({ lane: this.lane, err }, `consumer ${what} not applied`);
      }
    };
    return {
      pause: (topic, partition) =>
        guarded('pause', () => this.consumer.pause([{ topic, partitions: [partition] }])),
      resume: (topic, partition) => {
        if (this.#ended.has(partitionKey(topic, partition))) return;
        guarded('resume', () => this.consumer.resume([{ topic, partitions: [partition] }]));
      },
      seek: (topic, partition, offset) => {
        if (!this.#assigned.has(partitionKey(topic, partition))) return;
        guarded('seek', () => this.consumer.seek({ topic, partition, offset: offset.toString() }));
      },
      commit: async (offsets) => {
        await this.consumer.commitOffsets(offsets);
        this.#committed = true;
      },
    };
  }

  #newConsumer(): Consumer {
    const { kafka, settings } = this.#o;
    return kafka.consumer({
      groupId: settings.groupId,
      maxWaitTimeInMs: 100,
      maxBytesPerPartition: settings.maxBytesPerPartition,
      maxBytes: settings.maxBytesPerPartition * 4,
      sessionTimeout: settings.sessionTimeoutMs,
      heartbeatInterval: Math.floor(settings.sessionTimeoutMs / 10),
      rebalanceTimeout: 60_000,
      allowAutoTopicCreation: false,
    });
  }

  async start(): Promise<void> {
    try {
      await this.#sender.connect();
      await this.#migrateOffsets();
      await this.#run();
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
    if (!settings.migrateOffsetsFrom) return;
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

  /** Joins the group and starts fetching with the current consumer. */
  async #run(): Promise<void> {
    const { logger, onMembership, settings } = this.#o;
    const lane = this.lane;
    const consumer = this.consumer;
    const { events } = consumer;
    consumer.on(events.GROUP_JOIN, (e) => {
      if (consumer !== this.consumer) return;
      this.engine.reassigned();
      const assignment = Object.entries(e.payload.memberAssignment).flatMap(([topic, partitions]) =>
        partitions.map((partition) => ({ topic, partition })),
      );
      this.#assigned = new Set(assignment.map((p) => partitionKey(p.topic, p.partition)));
      this.engine.assigned(assignment);
      this.#restarts = 0;
      this.#ended.clear();
      onMembership?.(true, `joined group ${e.payload.groupId}`);
      logger.info({ lane, assignment: e.payload.memberAssignment }, 'joined consumer group');
    });
    consumer.on(events.REBALANCING, () => {
      if (consumer !== this.consumer) return;
      // Queued work is dropped; each partition starts again from its restart point (the engine seeks
      // back if kafkajs resumes above it without a fresh join).
      this.engine.reassigned();
      onMembership?.(false, 'rebalancing');
    });
    // A rebalance can end without a GROUP_JOIN event (the rejoin failed while the broker came back and the
    // old membership stayed valid); an accepted heartbeat proves membership, so it restores readiness.
    consumer.on(events.HEARTBEAT, () => onMembership?.(true, 'heartbeat accepted'));
    consumer.on(events.CRASH, (e) => {
      if (consumer !== this.consumer) return;
      onMembership?.(false, `crashed: ${e.payload.error.message}`);
      logger.error({ lane, err: e.payload.error, restart: e.payload.restart }, 'consumer crashed');
      // kafkajs gives up on errors it does not call retriable (some of them its own races during a
      // rebalance); a lane must not stay without its consumer, so it gets a new one.
      if (!e.payload.restart && this.#running) this.#scheduleRestart();
    });
    consumer.on(events.STOP, () => onMembership?.(false, 'stopped'));

    await consumer.connect();
    await consumer.subscribe({ topics: settings.topics, fromBeginning: settings.fromBeginning });
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      // eachBatch only hands messages over, so one kafkajs worker keeps up; the engine bounds the work.
      partitionsConsumedConcurrently: 1,
      eachBatch: (payload) => this.#onBatch(payload),
    });
    if (!this.#committed) for (const position of settings.startOffsets) consumer.seek(position);
  }

  #scheduleRestart(): void {
    const { logger, settings } = this.#o;
    // Whatever state its partitions were in (paused, waiting to retry), they start again from their
    // restart points with the new consumer.
    this.engine.reassigned();
    const delay = backoffDelay(settings.backoff, this.#restarts);
    this.#restarts += 1;
    logger.warn(
      { lane: this.lane, restart_in_ms: delay, restarts: this.#restarts },
      'starting a new consumer for the lane',
    );
    this.#restartTimer = setTimeout(() => {
      this.#restartTimer = undefined;
      if (!this.#running) return;
      const old = this.consumer;
      this.consumer = this.#newConsumer();
      void old.disconnect().catch(() => undefined);
      this.#run().catch((err: unknown) => {
        logger.error({ lane: this.lane, err }, 'the new consumer could not start; trying again');
        if (this.#running) this.#scheduleRestart();
      });
    }, delay);
  }

  #onBatch(payload: EachBatchPayload): Promise<void> {
    const { batch } = payload;
    if (!payload.isRunning() || payload.isStale()) return Promise.resolve();
    const { topic, partition } = batch;
    const end = this.#o.settings.endOffset?.(topic, partition);
    const messages =
      end === undefined ? batch.messages : batch.messages.filter((m) => BigInt(m.offset) < end);
    const last = messages[messages.length - 1];
    if (last) {
      const cut = messages.length < batch.messages.length;
      const fetchedTo = cut ? BigInt(last.offset) + 1n : BigInt(batch.lastOffset()) + 1n;
      this.engine.accept(
        topic,
        partition,
        messages.map((m) => toInbound(topic, partition, m)),
        fetchedTo,
      );
      // The next fetch continues after this batch (the engine took it, or sought back already: a seek
      // made during this call wins over this resolve, since kafkajs applies seeks before fetching).
      payload.resolveOffset(last.offset);
    }
    const lastFetched = batch.messages[batch.messages.length - 1];
    if (lastFetched) {
      this.#o.lifecycle.emit('partition.fetched', {
        lane: this.lane,
        topic,
        partition,
        lag: Math.max(0, Number(batch.highWatermark) - Number(lastFetched.offset) - 1),
      });
    }
    if (
      end !== undefined &&
      (messages.length < batch.messages.length || (last && BigInt(last.offset) + 1n >= end))
    ) {
      this.#ended.add(partitionKey(topic, partition));
      this.consumer.pause([{ topic, partitions: [partition] }]);
      this.#o.lifecycle.emit('partition.paused', { lane: this.lane, topic, partition, reason: 'end' });
    }
    return Promise.resolve();
  }

  /** Stops fetching, lets running units finish and publish, commits, then leaves the group. */
  async stop(timeoutMs: number): Promise<void> {
    const started = this.#running;
    this.#running = false;
    if (this.#restartTimer) clearTimeout(this.#restartTimer);
    if (started) {
      try {
        this.consumer.pause(this.#o.settings.topics.map((topic) => ({ topic })));
      } catch {
        // a consumer that never ran has nothing to pause
      }
      await this.engine.drain(timeoutMs);
    }
    this.#publisher.close();
    await this.consumer.disconnect().catch(() => undefined);
    await this.#sender.disconnect().catch(() => undefined);
  }
}
