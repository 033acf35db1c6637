// A lane's Kafka side: its consumer (one member of the worker's group, subscribed to every request topic,
// assigned only its lane's partitions), its producer, and the binding to its engine. eachBatch hands the
// fetched messages to the engine and returns at once, so the next fetch does not wait for processing;
// kafkajs never commits by itself (autoCommit off): the engine commits what is safe.
import type { Consumer, EachBatchPayload, Kafka, Producer } from 'kafkajs';
import type { Logger } from '../../telemetry/logger.ts';
import { toInbound } from './inbound.ts';
import { laneAssigners } from './lane-assignor.ts';
import { LaneEngine, type ConsumerControl, type LaneEngineOptions } from '../engine/lane-engine.ts';
import type { Lifecycle } from '../engine/lifecycle.ts';
import { OrderedPublisher } from '../engine/publisher.ts';
import type { Schedulable } from '../stages/unit-pipeline.ts';

export interface LaneConsumerOptions<P extends Schedulable> {
  kafka: Kafka;
  groupId: string;
  lane: string;
  /** Every topic the group reads: all members subscribe to all of them (the assignor splits by lane). */
  topics: string[];
  laneOfTopic: (topic: string) => string | undefined;
  logger: Logger;
  lifecycle: Lifecycle;
  engine: Omit<LaneEngineOptions<P>, 'publisher' | 'control' | 'lane' | 'lifecycle' | 'logger'>;
  sessionTimeoutMs: number;
  maxBytesPerPartition: number;
  fromBeginning?: boolean;
  /** Replay: where each partition starts (applied on the first fetch; the group must be new). */
  startOffsets?: { topic: string; partition: number; offset: string }[];
  /** Replay: the exclusive end offset of a partition; fetching it stops there. */
  endOffset?: ((topic: string, partition: number) => bigint | undefined) | undefined;
  /** Membership changes, for readiness. */
  onMembership?: (joined: boolean, detail: string) => void;
}

export class LaneConsumer<P extends Schedulable> {
  consumer: Consumer;
  producer: Producer;
  readonly engine: LaneEngine<P>;
  readonly #o: LaneConsumerOptions<P>;
  readonly #publisher: OrderedPublisher;
  /** Partitions paused at their replay end: buffer-based resumes leave them alone. */
  readonly #ended = new Set<string>();
  #running = false;
  #restartTimer: NodeJS.Timeout | undefined;
  #restarts = 0;
  /** Whether this lane has committed anything: a restarted replay seeks to its start only before that. */
  #committed = false;

  constructor(options: LaneConsumerOptions<P>) {
    this.#o = options;
    const { kafka, lane, logger, lifecycle } = options;
    this.consumer = this.#newConsumer();
    const newProducer = () =>
      kafka.producer({ allowAutoTopicCreation: false, idempotent: true, maxInFlightRequests: 1 });
    this.producer = newProducer();
    this.#publisher = new OrderedPublisher({
      producer: this.producer,
      // After a broker restart an idempotent producer can be left answering "out of order sequence
      // number" to every send (seen in the broker-restart test); a new one gets a new producer id.
      replaceProducer: async () => {
        const fresh = newProducer();
        await fresh.connect();
        const old = this.producer;
        this.producer = fresh;
        void old.disconnect().catch(() => undefined);
        return fresh;
      },
      lane,
      lifecycle,
      backoff: options.engine.backoff,
      logger,
    });
    const ended = this.#ended;
    const control: ConsumerControl = {
      pause: (topic, partition) => this.consumer.pause([{ topic, partitions: [partition] }]),
      resume: (topic, partition) => {
        if (!ended.has(`${topic}:${partition}`)) this.consumer.resume([{ topic, partitions: [partition] }]);
      },
      commit: async (offsets) => {
        await this.consumer.commitOffsets(offsets);
        this.#committed = true;
      },
    };
    this.engine = new LaneEngine<P>({
      ...options.engine,
      lane,
      lifecycle,
      logger,
      publisher: this.#publisher,
      control,
    });
  }

  #newConsumer(): Consumer {
    const o = this.#o;
    return o.kafka.consumer({
      groupId: o.groupId,
      partitionAssigners: laneAssigners(o.lane, o.laneOfTopic),
      maxWaitTimeInMs: 100,
      maxBytesPerPartition: o.maxBytesPerPartition,
      maxBytes: o.maxBytesPerPartition * 4,
      sessionTimeout: o.sessionTimeoutMs,
      heartbeatInterval: Math.floor(o.sessionTimeoutMs / 10),
      rebalanceTimeout: 60_000,
      allowAutoTopicCreation: false,
    });
  }

  async start(): Promise<void> {
    await this.producer.connect();
    await this.#run();
    this.#running = true;
  }

  /** Joins the group and starts fetching with the current consumer. */
  async #run(): Promise<void> {
    const { logger, lane, onMembership } = this.#o;
    const consumer = this.consumer;
    const { events } = consumer;
    consumer.on(events.GROUP_JOIN, (e) => {
      this.engine.reassigned();
      this.#restarts = 0;
      this.#ended.clear();
      onMembership?.(true, `joined group ${e.payload.groupId}`);
      logger.info({ lane, assignment: e.payload.memberAssignment }, 'joined consumer group');
    });
    consumer.on(events.REBALANCING, () => {
      // Whatever is queued will be fetched again from the committed offsets after the rebalance.
      this.engine.reassigned();
      onMembership?.(false, 'rebalancing');
    });
    // A rebalance can end without a GROUP_JOIN event (the rejoin failed while the broker came back and the
    // old membership stayed valid); an accepted heartbeat proves membership, so it restores readiness.
    consumer.on(events.HEARTBEAT, () => onMembership?.(true, 'heartbeat accepted'));
    consumer.on(events.CRASH, (e) => {
      onMembership?.(false, `crashed: ${e.payload.error.message}`);
      logger.error({ lane, err: e.payload.error, restart: e.payload.restart }, 'consumer crashed');
      // kafkajs gives up on errors it does not call retriable (some of them its own races during a
      // rebalance); a lane must not stay without its consumer, so it gets a new one.
      if (!e.payload.restart && this.#running) this.#scheduleRestart();
    });
    consumer.on(events.STOP, () => onMembership?.(false, 'stopped'));

    await consumer.connect();
    await consumer.subscribe({ topics: this.#o.topics, fromBeginning: this.#o.fromBeginning ?? true });
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      // eachBatch only hands messages over, so one kafkajs worker keeps up; the engine bounds the work.
      partitionsConsumedConcurrently: 1,
      eachBatch: (payload) => this.#onBatch(payload),
    });
    if (!this.#committed) for (const position of this.#o.startOffsets ?? []) consumer.seek(position);
  }

  #scheduleRestart(): void {
    const { logger, lane, engine } = this.#o;
    this.engine.reassigned();
    const delay = Math.min(
      engine.backoff.maxMs,
      engine.backoff.initialMs * 2 ** Math.min(this.#restarts, 10),
    );
    this.#restarts += 1;
    logger.warn(
      { lane, restart_in_ms: delay, restarts: this.#restarts },
      'starting a new consumer for the lane',
    );
    this.#restartTimer = setTimeout(() => {
      this.#restartTimer = undefined;
      if (!this.#running) return;
      this.consumer = this.#newConsumer();
      this.#run().catch((err: unknown) => {
        logger.error({ lane, err }, 'the new consumer could not start; trying again');
        if (this.#running) this.#scheduleRestart();
      });
    }, delay);
  }

  #onBatch(payload: EachBatchPayload): Promise<void> {
    const { batch } = payload;
    if (!payload.isRunning() || payload.isStale()) return Promise.resolve();
    const { topic, partition } = batch;
    const end = this.#o.endOffset?.(topic, partition);
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
      payload.resolveOffset(last.offset);
    }
    const lastFetched = batch.messages[batch.messages.length - 1];
    if (lastFetched) {
      this.#o.lifecycle.emit('partition.fetched', {
        lane: this.#o.lane,
        topic,
        partition,
        lag: Math.max(0, Number(batch.highWatermark) - Number(lastFetched.offset) - 1),
      });
    }
    if (
      end !== undefined &&
      (messages.length < batch.messages.length || (last && BigInt(last.offset) + 1n >= end))
    ) {
      this.#ended.add(`${topic}:${partition}`);
      this.consumer.pause([{ topic, partitions: [partition] }]);
      this.#o.lifecycle.emit('partition.paused', { lane: this.#o.lane, topic, partition, reason: 'end' });
    }
    return Promise.resolve();
  }

  /** Stops fetching, lets running units finish and publish, commits, then leaves the group. */
  async stop(timeoutMs: number): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    if (this.#restartTimer) clearTimeout(this.#restartTimer);
    this.consumer.pause(this.#o.topics.map((topic) => ({ topic })));
    await this.engine.drain(timeoutMs);
    this.#publisher.close();
    await this.consumer.disconnect();
    await this.producer.disconnect();
  }
}
