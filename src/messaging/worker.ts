// The consumer side of the worker: subscribes to the request topics, hands each fetched batch to the
// BatchProcessor, tracks group membership for readiness, and stops gracefully.
import type { Consumer, Kafka, Producer } from 'kafkajs';
import type { Logger } from '../telemetry/logger.ts';
import type { WorkerMetrics } from '../telemetry/metrics.ts';
import type { Readiness } from '../telemetry/readiness.ts';
import type { BackoffPolicy } from './backoff.ts';
import { BatchProcessor, type BatchHandler, type Unit } from './batch-processor.ts';

export interface WorkerOptions {
  kafka: Kafka;
  groupId: string;
  topics: string[];
  handler: BatchHandler;
  logger: Logger;
  readiness: Readiness;
  partitionsConcurrently: number;
  backoff: BackoffPolicy;
  maxBytesPerPartition?: number;
  sessionTimeoutMs?: number;
  fromBeginning?: boolean;
  onTransientFailure?: (err: unknown) => void;
  onUnitDone?: (unit: Unit) => void;
  afterEffects?: (unit: Unit) => void;
  endOffset?: (topic: string, partition: number) => bigint | undefined;
  /** Replay: where each partition starts (applied on the first fetch; the group must be new). */
  startOffsets?: { topic: string; partition: number; offset: string }[];
  metrics?: WorkerMetrics;
}

export class Worker {
  readonly consumer: Consumer;
  readonly producer: Producer;
  readonly #options: WorkerOptions;
  #processor: BatchProcessor | undefined;
  #running = false;

  constructor(options: WorkerOptions) {
    this.#options = options;
    this.consumer = options.kafka.consumer({
      groupId: options.groupId,
      maxWaitTimeInMs: 100,
      maxBytesPerPartition: options.maxBytesPerPartition ?? 4 * 1024 * 1024,
      sessionTimeout: options.sessionTimeoutMs ?? 30_000,
      heartbeatInterval: Math.floor((options.sessionTimeoutMs ?? 30_000) / 10),
      rebalanceTimeout: 60_000,
      allowAutoTopicCreation: false,
    });
    this.producer = options.kafka.producer({
      allowAutoTopicCreation: false,
      idempotent: true,
      maxInFlightRequests: 1,
    });
  }

  async start(): Promise<void> {
    const { logger, readiness } = this.#options;
    const { events } = this.consumer;
    this.consumer.on(events.GROUP_JOIN, (e) => {
      readiness.set('consumer', true, `joined group ${e.payload.groupId}`);
      logger.info({ assignment: e.payload.memberAssignment }, 'joined consumer group');
    });
    this.consumer.on(events.REBALANCING, () => readiness.set('consumer', false, 'rebalancing'));
    // A rebalance can end without a GROUP_JOIN event (the rejoin failed while the broker came back and the
    // old membership stayed valid); an accepted heartbeat proves membership, so it restores readiness.
    this.consumer.on(events.HEARTBEAT, () => {
      if (!readiness.isOk('consumer')) readiness.set('consumer', true, 'heartbeat accepted');
    });
    this.consumer.on(events.CRASH, (e) => {
      readiness.set('consumer', false, `crashed: ${e.payload.error.message}`);
      logger.error({ err: e.payload.error, restart: e.payload.restart }, 'consumer crashed');
    });
    this.consumer.on(events.STOP, () => readiness.set('consumer', false, 'stopped'));

    await this.producer.connect();
    await this.consumer.connect();
    await this.consumer.subscribe({
      topics: this.#options.topics,
      fromBeginning: this.#options.fromBeginning ?? true,
    });
    this.#processor = new BatchProcessor({
      consumer: this.consumer,
      producer: this.producer,
      handler: this.#options.handler,
      backoff: this.#options.backoff,
      logger,
      ...(this.#options.onTransientFailure ? { onTransientFailure: this.#options.onTransientFailure } : {}),
      ...(this.#options.onUnitDone ? { onUnitDone: this.#options.onUnitDone } : {}),
      ...(this.#options.afterEffects ? { afterEffects: this.#options.afterEffects } : {}),
      ...(this.#options.endOffset ? { endOffset: this.#options.endOffset } : {}),
      ...(this.#options.metrics ? { metrics: this.#options.metrics } : {}),
    });
    const processor = this.#processor;
    await this.consumer.run({
      autoCommit: true,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: this.#options.partitionsConcurrently,
      eachBatch: (payload) => processor.process(payload),
    });
    for (const position of this.#options.startOffsets ?? []) this.consumer.seek(position);
    this.#running = true;
  }

  /** Stops fetching, lets in-flight batches finish and commit, then disconnects. */
  async stop(): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    this.#processor?.close();
    await this.consumer.disconnect();
    await this.producer.disconnect();
  }
}
