// Drives one fetched batch of one partition: units in offset order, results published before their
// offsets are resolved (and so committed). A transient failure commits what is done, seeks back to the
// failed unit and pauses only this partition for a backoff; the other partitions keep going.
import type { Consumer, EachBatchPayload, KafkaMessage, Producer, TopicMessages } from 'kafkajs';
import { RetryableError } from '../contracts/errors.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { WorkerMetrics } from '../telemetry/metrics.ts';
import { backoffDelay, type BackoffPolicy } from './backoff.ts';
import { chunkBySize } from './publish-chunks.ts';

export interface InboundMessage {
  topic: string;
  partition: number;
  offset: string;
  key: Buffer | null;
  value: Buffer | null;
  headers: Record<string, Buffer | string | (Buffer | string)[] | undefined>;
  timestamp: string;
}

/** Consecutive messages handled together (a run of usage events) or a single message. */
export interface Unit {
  messages: InboundMessage[];
  /** Set by the handler: called once the unit's records are published, or with the error if not. */
  finish?: (error?: unknown) => void;
}

export interface BatchHandler<U extends Unit = Unit> {
  plan(messages: InboundMessage[]): U[];
  /** Applies a unit and returns what to publish. Throws only for transient failures. */
  apply(unit: U): Promise<TopicMessages[]>;
}

export interface BatchProcessorOptions {
  consumer: Consumer;
  producer: Producer;
  handler: BatchHandler;
  backoff: BackoffPolicy;
  logger: Logger;
  onTransientFailure?: (err: unknown) => void;
  onUnitDone?: (unit: Unit) => void;
  /** Called after a unit's effects are committed and before its results are published (fault tests). */
  afterEffects?: (unit: Unit) => void;
  /** Replay: the exclusive end offset of a partition. Messages from there on are left alone and the
   * partition is paused once everything before it is done. */
  endOffset?: (topic: string, partition: number) => bigint | undefined;
  metrics?: WorkerMetrics;
}

/** Largest produce request per send: half of Kafka's default message.max.bytes (1 MiB). */
const MAX_PUBLISH_BYTES = 512 * 1024;

export function toInbound(topic: string, partition: number, message: KafkaMessage): InboundMessage {
  return {
    topic,
    partition,
    offset: message.offset,
    key: message.key ?? null,
    value: message.value ?? null,
    headers: message.headers ?? {},
    timestamp: message.timestamp,
  };
}

function describe(err: unknown): string {
  if (err instanceof RetryableError) return err.reason;
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}

export class BatchProcessor {
  readonly #options: BatchProcessorOptions;
  /** Consecutive transient failures per partition, for the backoff exponent. */
  readonly #attempts = new Map<string, number>();
  readonly #resumeTimers = new Set<NodeJS.Timeout>();

  constructor(options: BatchProcessorOptions) {
    this.#options = options;
  }

  async process(payload: EachBatchPayload): Promise<void> {
    const { batch } = payload;
    const { handler, producer, logger } = this.#options;
    const key = `${batch.topic}:${batch.partition}`;
    const end = this.#options.endOffset?.(batch.topic, batch.partition);
    const messages =
      end === undefined ? batch.messages : batch.messages.filter((m) => BigInt(m.offset) < end);
    const units = handler.plan(messages.map((m) => toInbound(batch.topic, batch.partition, m)));

    for (const unit of units) {
      if (!payload.isRunning() || payload.isStale()) break;
      const first = unit.messages[0];
      const last = unit.messages[unit.messages.length - 1];
      if (!first || !last) continue;
      try {
        const records = await handler.apply(unit);
        this.#options.afterEffects?.(unit);
        for (const chunk of chunkBySize(records, MAX_PUBLISH_BYTES)) {
          await producer.sendBatch({ topicMessages: chunk, acks: -1 });
        }
        unit.finish?.();
      } catch (err) {
        // Set only once apply succeeded: a publish failure ends the unit's spans with the error.
        unit.finish?.(err);
        this.#options.metrics?.retry(batch.topic, batch.partition);
        const attempt = this.#attempts.get(key) ?? 0;
        this.#attempts.set(key, attempt + 1);
        const delay = backoffDelay(this.#options.backoff, attempt);
        const level =
          err instanceof RetryableError || (err instanceof Error && err.name.startsWith('KafkaJS'))
            ? 'warn'
            : 'error';
        logger[level](
          {
            topic: batch.topic,
            partition: batch.partition,
            offset: first.offset,
            attempt: attempt + 1,
            retry_in_ms: delay,
            reason: describe(err),
          },
          'transient failure; pausing this partition and retrying',
        );
        this.#options.onTransientFailure?.(err);
        await payload.commitOffsetsIfNecessary();
        this.#options.consumer.seek({ topic: batch.topic, partition: batch.partition, offset: first.offset });
        const resume = payload.pause();
        const timer = setTimeout(() => {
          this.#resumeTimers.delete(timer);
          resume();
        }, delay);
        this.#resumeTimers.add(timer);
        return;
      }
      this.#attempts.delete(key);
      payload.resolveOffset(last.offset);
      this.#options.onUnitDone?.(unit);
      await payload.heartbeat();
    }
    await payload.commitOffsetsIfNecessary();
    const last = batch.messages[batch.messages.length - 1];
    if (last) {
      this.#options.metrics?.lag(
        batch.topic,
        batch.partition,
        Number(batch.highWatermark) - Number(last.offset) - 1,
      );
    }
    if (end !== undefined && messages.length < batch.messages.length) {
      this.#options.consumer.pause([{ topic: batch.topic, partitions: [batch.partition] }]);
    }
  }

  /** Cancels pending resumes (on shutdown). */
  close(): void {
    for (const t of this.#resumeTimers) clearTimeout(t);
    this.#resumeTimers.clear();
  }
}
