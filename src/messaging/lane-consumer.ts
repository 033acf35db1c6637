// A lane's Kafka side: its consumer (one member of the worker's group, subscribed to every request topic,
// assigned only its lane's partitions), its producer, and the binding to its engine. eachBatch hands the
// fetched messages to the engine and returns at once, so the next fetch does not wait for processing;
// kafkajs never commits by itself (autoCommit off): the engine commits what is safe.
import type { Consumer, EachBatchPayload, Kafka, Producer } from 'kafkajs';
import type { Logger } from '../telemetry/logger.ts';
import { toInbound } from './inbound.ts';
import { laneAssigners } from './lane-assignor.ts';
import { LaneEngine, type ConsumerControl, type LaneEngineOptions } from './lane-engine.ts';
import type { Lifecycle } from './lifecycle.ts';
import { OrderedPublisher } from './publisher.ts';
import type { Schedulable } from './unit-pipeline.ts';

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
  readonly consumer: Consumer;
  readonly producer: Producer;
  readonly engine: LaneEngine<P>;
  readonly #o: LaneConsumerOptions<P>;
  readonly #publisher: OrderedPublisher;
  /** Partitions paused at their replay end: buffer-based resumes leave them alone. */
  readonly #ended = new Set<string>();
  #running = false;

  constructor(options: LaneConsumerOptions<P>) {
    this.#o = options;
    const { kafka, lane, logger, lifecycle } = options;
    this.consumer = kafka.consumer({
      groupId: options.groupId,
      partitionAssigners: laneAssigners(lane, options.laneOfTopic),
      maxWaitTimeInMs: 100,
      maxBytesPerPartition: options.maxBytesPerPartition,
      maxBytes: Math.max(options.maxBytesPerPartition * 4, 8 * 1024 * 1024),
      sessionTimeout: options.sessionTimeoutMs,
      heartbeatInterval: Math.floor(options.sessionTimeoutMs / 10),
      rebalanceTimeout: 60_000,
      allowAutoTopicCreation: false,
    });
    this.producer = kafka.producer({
      allowAutoTopicCreation: false,
      idempotent: true,
      maxInFlightRequests: 1,
    });
    this.#publisher = new OrderedPublisher({
      producer: this.producer,
      lane,
      lifecycle,
      backoff: options.engine.backoff,
      logger,
    });
    const consumer = this.consumer;
    const ended = this.#ended;
    const control: ConsumerControl = {
      pause: (topic, partition) => consumer.pause([{ topic, partitions: [partition] }]),
      resume: (topic, partition) => {
        if (!ended.has(`${topic}:${partition}`)) consumer.resume([{ topic, partitions: [partition] }]);
      },
      commit: (offsets) => consumer.commitOffsets(offsets),
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

  async start(): Promise<void> {
    const { logger, lane, onMembership } = this.#o;
    const { events } = this.consumer;
    this.consumer.on(events.GROUP_JOIN, (e) => {
      this.engine.reassigned();
      this.#ended.clear();
      onMembership?.(true, `joined group ${e.payload.groupId}`);
      logger.info({ lane, assignment: e.payload.memberAssignment }, 'joined consumer group');
    });
    this.consumer.on(events.REBALANCING, () => {
      // Whatever is queued will be fetched again from the committed offsets after the rebalance.
      this.engine.reassigned();
      onMembership?.(false, 'rebalancing');
    });
    // A rebalance can end without a GROUP_JOIN event (the rejoin failed while the broker came back and the
    // old membership stayed valid); an accepted heartbeat proves membership, so it restores readiness.
    this.consumer.on(events.HEARTBEAT, () => onMembership?.(true, 'heartbeat accepted'));
    this.consumer.on(events.CRASH, (e) => {
      onMembership?.(false, `crashed: ${e.payload.error.message}`);
      logger.error({ lane, err: e.payload.error, restart: e.payload.restart }, 'consumer crashed');
    });
    this.consumer.on(events.STOP, () => onMembership?.(false, 'stopped'));

    await this.producer.connect();
    await this.consumer.connect();
    await this.consumer.subscribe({ topics: this.#o.topics, fromBeginning: this.#o.fromBeginning ?? true });
    await this.consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      // eachBatch only hands messages over, so one kafkajs worker keeps up; the engine bounds the work.
      partitionsConsumedConcurrently: 1,
      eachBatch: (payload) => this.#onBatch(payload),
    });
    for (const position of this.#o.startOffsets ?? []) this.consumer.seek(position);
    this.#running = true;
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
    this.consumer.pause(this.#o.topics.map((topic) => ({ topic })));
    await this.engine.drain(timeoutMs);
    this.#publisher.close();
    await this.consumer.disconnect();
    await this.producer.disconnect();
  }
}
