// Publishes a lane's results and dead letters in the order they are handed over, pipelined: units keep
// running while earlier records wait for their acks. One produce request is in flight at a time and
// carries every record queued meanwhile (up to MAX_PUBLISH_BYTES), so per key the results keep the order
// of their effects, even across retries. A failed send is retried with backoff, the same records in
// the same order, for as long as the broker is away; nothing is dropped.
import type { Producer } from 'kafkajs';
import type { Logger } from '../../telemetry/logger.ts';
import { backoffDelay, type BackoffPolicy } from './backoff.ts';
import { classifyFailure, describeFailure } from './failures.ts';
import type { OutboundRecord } from './records.ts';
import type { RecordSink } from './lane-engine.ts';
import type { Lifecycle } from './lifecycle.ts';
import { chunkBySize, recordBytes, type ChunkMessage, type TopicChunk } from './publish-chunks.ts';

/** Largest produce request per send: half of Kafka's default message.max.bytes (1 MiB). */
export const MAX_PUBLISH_BYTES = 512 * 1024;

interface Job {
  records: OutboundRecord[];
  resolve: () => void;
  reject: (err: Error) => void;
}

export class PublisherClosedError extends Error {
  override name = 'PublisherClosedError';
}

type Sender = Pick<Producer, 'sendBatch'>;

/** Consecutive failed sends after which the producer is replaced by a new one. */
const REPLACE_PRODUCER_AFTER = 3;

export interface PublisherOptions {
  producer: Sender;
  /** A new, connected producer: an idempotent producer that keeps failing after a broker restart can
   * be left in a state it does not recover from (sequence numbers the broker no longer knows). */
  replaceProducer?: () => Promise<Sender>;
  lane: string;
  lifecycle: Lifecycle;
  backoff: BackoffPolicy;
  logger: Logger;
  maxRequestBytes?: number;
}

function toChunks(records: readonly OutboundRecord[]): TopicChunk[] {
  const byTopic = new Map<string, ChunkMessage[]>();
  for (const r of records) {
    const message: ChunkMessage = { key: r.key, value: r.value, headers: r.headers };
    if (r.partition !== undefined) message.partition = r.partition;
    const list = byTopic.get(r.topic);
    if (list) list.push(message);
    else byTopic.set(r.topic, [message]);
  }
  return [...byTopic].map(([topic, messages]) => ({ topic, messages }));
}

export class OrderedPublisher implements RecordSink {
  readonly #o: PublisherOptions;
  readonly #max: number;
  readonly #queue: Job[] = [];
  #sending = false;
  #closed = false;
  #failures = 0;
  #retryTimer: NodeJS.Timeout | undefined;
  #producer: Sender;

  constructor(options: PublisherOptions) {
    this.#o = options;
    this.#producer = options.producer;
    this.#max = options.maxRequestBytes ?? MAX_PUBLISH_BYTES;
  }

  get queued(): number {
    return this.#queue.length;
  }

  publish(records: OutboundRecord[]): Promise<void> {
    if (this.#closed) return Promise.reject(new PublisherClosedError('the publisher is closed'));
    return new Promise<void>((resolve, reject) => {
      this.#queue.push({ records, resolve, reject });
      if (!this.#sending && !this.#retryTimer) void this.#sendLoop();
    });
  }

  /** Rejects what has not been sent; the engine leaves those offsets uncommitted. */
  close(): void {
    this.#closed = true;
    if (this.#retryTimer) clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    for (const job of this.#queue.splice(0)) job.reject(new PublisherClosedError('the publisher is closed'));
  }

  /** Jobs from the head whose records fit in one request (at least the first job). */
  #nextJobs(): Job[] {
    const jobs: Job[] = [];
    let size = 0;
    for (const job of this.#queue) {
      const bytes = job.records.reduce((sum, r) => sum + recordBytes(r), 0);
      if (jobs.length > 0 && size + bytes > this.#max) break;
      jobs.push(job);
      size += bytes;
    }
    return jobs;
  }

  async #sendLoop(): Promise<void> {
    this.#sending = true;
    try {
      while (!this.#closed && this.#queue.length > 0) {
        const jobs = this.#nextJobs();
        try {
          // A single unit's records over the limit go in several requests, in order.
          for (const chunk of chunkBySize(toChunks(jobs.flatMap((j) => j.records)), this.#max)) {
            // ChunkMessage has the shape of kafkajs's Message.
            await this.#producer.sendBatch({ topicMessages: chunk, acks: -1 });
          }
        } catch (err) {
          this.#failed(err);
          return;
        }
        this.#failures = 0;
        this.#queue.splice(0, jobs.length);
        for (const job of jobs) job.resolve();
      }
    } finally {
      this.#sending = false;
    }
  }

  #failed(err: unknown): void {
    const failure = classifyFailure(err);
    const delay = backoffDelay(this.#o.backoff, this.#failures);
    this.#failures += 1;
    this.#o.logger.warn(
      { lane: this.#o.lane, attempt: this.#failures, retry_in_ms: delay, reason: describeFailure(failure) },
      'publishing results failed; sending them again',
    );
    this.#o.lifecycle.emit('publish.failed', { lane: this.#o.lane, error: err, failure, retryInMs: delay });
    if (this.#closed) return;
    const replace = this.#o.replaceProducer && this.#failures % REPLACE_PRODUCER_AFTER === 0;
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      const next = replace ? this.#replace() : Promise.resolve();
      void next.then(() => this.#sendLoop());
    }, delay);
  }

  async #replace(): Promise<void> {
    try {
      this.#producer = await (this.#o.replaceProducer as () => Promise<Sender>)();
      this.#o.logger.warn(
        { lane: this.#o.lane, attempt: this.#failures },
        'replaced the producer after repeated failures',
      );
    } catch (err) {
      this.#o.logger.warn(
        { lane: this.#o.lane, err: describeFailure(classifyFailure(err)) },
        'could not replace the producer',
      );
    }
  }
}
