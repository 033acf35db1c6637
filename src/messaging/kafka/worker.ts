// The consumer side of the worker: one lane consumer per lane (writes, reads, analytics; or the single
// lane of a replay pass), readiness while every lane is a member of the group, and a graceful stop.
import type { Kafka } from 'kafkajs';
import type { Logger } from '../../telemetry/logger.ts';
import type { Readiness } from '../../telemetry/readiness.ts';
import type { BackoffPolicy } from '../engine/backoff.ts';
import { LaneConsumer } from './lane-consumer.ts';
import type { Lifecycle } from '../engine/lifecycle.ts';
import type { Schedulable, UnitWork } from '../stages/unit-pipeline.ts';

export interface LanePlan {
  name: string;
  /** Topics (prefixed names) whose partitions this lane is assigned. */
  topics: string[];
  concurrency: number;
  /** Messages started per second at most (a replay's budget). */
  maxRatePerSecond?: number | undefined;
}

export interface WorkerOptions<P extends Schedulable> {
  kafka: Kafka;
  groupId: string;
  lanes: LanePlan[];
  work: UnitWork<P>;
  lifecycle: Lifecycle;
  logger: Logger;
  readiness: Readiness;
  backoff: BackoffPolicy;
  maxAttempts: number;
  maxBatch: number;
  maxBufferedMessages: number;
  maxBufferedBytes: number;
  maxBytesPerPartition: number;
  sessionTimeoutMs: number;
  fromBeginning?: boolean;
  endOffset?: ((topic: string, partition: number) => bigint | undefined) | undefined;
  /** Replay: where each partition starts (applied on the first fetch; the group must be new). */
  startOffsets?: { topic: string; partition: number; offset: string }[] | undefined;
}

export class Worker<P extends Schedulable> {
  readonly lanes: LaneConsumer<P>[];
  readonly #o: WorkerOptions<P>;
  readonly #joined = new Map<string, { ok: boolean; detail: string }>();
  #running = false;

  constructor(options: WorkerOptions<P>) {
    this.#o = options;
    const laneOfTopic = new Map(options.lanes.flatMap((l) => l.topics.map((t) => [t, l.name] as const)));
    const topics = [...laneOfTopic.keys()];
    this.lanes = options.lanes.map(
      (lane) =>
        new LaneConsumer<P>({
          kafka: options.kafka,
          groupId: options.groupId,
          lane: lane.name,
          topics,
          laneOfTopic: (topic) => laneOfTopic.get(topic),
          logger: options.logger,
          lifecycle: options.lifecycle,
          sessionTimeoutMs: options.sessionTimeoutMs,
          maxBytesPerPartition: options.maxBytesPerPartition,
          fromBeginning: options.fromBeginning ?? true,
          startOffsets: options.startOffsets?.filter((s) => lane.topics.includes(s.topic)),
          endOffset: options.endOffset,
          onMembership: (ok, detail) => this.#membership(lane.name, ok, detail),
          engine: {
            work: options.work,
            concurrency: lane.concurrency,
            maxRatePerSecond: lane.maxRatePerSecond,
            maxAttempts: options.maxAttempts,
            backoff: options.backoff,
            maxBatch: options.maxBatch,
            maxBufferedMessages: options.maxBufferedMessages,
            maxBufferedBytes: options.maxBufferedBytes,
          },
        }),
    );
    for (const lane of options.lanes) this.#joined.set(lane.name, { ok: false, detail: 'not joined yet' });
  }

  /** Ready while every lane is a member of the group. */
  #membership(lane: string, ok: boolean, detail: string): void {
    const before = this.#joined.get(lane);
    if (before?.ok === ok && (ok || before.detail === detail)) return;
    this.#joined.set(lane, { ok, detail });
    const all = [...this.#joined.values()].every((j) => j.ok);
    const summary = [...this.#joined].map(([name, j]) => `${name}: ${j.detail}`).join('; ');
    this.#o.readiness.set('consumer', all, summary);
  }

  async start(): Promise<void> {
    // Together: joins that arrive while the group is forming are absorbed into one rebalance.
    await Promise.all(this.lanes.map((lane) => lane.start()));
    this.#running = true;
  }

  /** Stops fetching, lets in-flight units finish and publish, commits offsets, then disconnects. */
  async stop(timeoutMs: number): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    await Promise.all(this.lanes.map((lane) => lane.stop(timeoutMs)));
  }
}
