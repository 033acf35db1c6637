// Replay's read side: every selected partition of every selected request topic, from its start to the
// end taken when the replay began, fed into one timestamp merge (operations/replay-merge.ts). Memory is
// bounded: a partition pauses above `highWater` buffered messages and resumes once the merge has taken
// it down to half; the merge needs every open partition's head, and an empty partition is never paused,
// so this cannot wedge. It reads without a consumer group (a PartitionFetcher over the ranges), commits
// nothing and never moves the live worker's offsets.
import { asError } from '../../contracts/errors.ts';
import { Consumer } from '@platformatic/kafka';
import type { Logger } from '../../telemetry/logger.ts';
import type { KafkaClient } from './client.ts';
import { PartitionFetcher, startsBefore, type FetchedRecord } from './fetcher.ts';
import { partitionKey, type InboundMessage } from '../engine/records.ts';
import { TimestampMerge } from '../operations/replay-merge.ts';
import { toInbound } from './inbound.ts';
import { atStableEnd } from './transaction-holds.ts';
import type { PartitionRange } from './operator-io.ts';

export interface MergedReadOptions {
  /** The name of the group the reading consumer is made with (it never joins it). */
  groupId: string;
  /** Tie-break order of topics (prefixed names). */
  topicOrder: readonly string[];
  /** Tie rank of messages with equal timestamps, before the topic order (replay-merge.ts). */
  tieRank?: (m: InboundMessage) => number;
  logger: Logger;
  /** Buffered messages per partition before it pauses (default 2,000). */
  highWater?: number;
  /** A partition the merge waits for that delivers nothing for this long, while the broker says nothing
   * past its position is readable, has ended (its records deleted meanwhile; ranges end at the last stable
   * offset, so an open transaction never holds one: planRanges). One merely slow is waited for up to ten
   * times this, then the read fails naming it; when fetches failed meanwhile, it fails with the error. */
  idleMs?: number;
  maxBytesPerPartition?: number;
  /** The most bytes a fetched record batch may decompress to (the fetcher's default when absent). */
  maxDecompressedBatchBytes?: number;
}

export class MergedRead {
  readonly #merge: TimestampMerge;
  readonly #consumer: Consumer;
  readonly #fetcher: PartitionFetcher;
  readonly #o: MergedReadOptions;
  readonly #next = new Map<string, bigint>();
  readonly #end = new Map<string, bigint>();
  readonly #paused = new Set<string>();
  readonly #high: number;
  #waiters: (() => void)[] = [];
  #failure: unknown;
  #lastData = Date.now();
  #lastError: { at: number; err: unknown } | undefined;
  #started = false;
  #watchdog: NodeJS.Timeout | undefined;
  /** Per partition, from the last fetch answer: whether anything past its position is readable at all. */
  readonly #exhausted = new Map<string, boolean>();

  constructor(client: KafkaClient, ranges: readonly PartitionRange[], options: MergedReadOptions) {
    this.#o = options;
    this.#high = options.highWater ?? 2000;
    this.#merge = new TimestampMerge(options.topicOrder, options.tieRank);
    for (const r of ranges) {
      this.#merge.open(r.topic, r.partition);
      if (r.end <= r.start) this.#merge.end(r.topic, r.partition);
      else {
        this.#next.set(partitionKey(r.topic, r.partition), r.start);
        this.#end.set(partitionKey(r.topic, r.partition), r.end);
      }
    }
    // Only fetch, metadata and offsets are asked of this consumer: it never joins its group.
    this.#consumer = new Consumer({ ...client.options('-replay'), groupId: options.groupId });
    this.#consumer.on('error', () => undefined);
    const maxBytes = options.maxBytesPerPartition ?? 1024 * 1024;
    this.#fetcher = new PartitionFetcher({
      consumer: this.#consumer,
      connection: client.options('-replay'),
      startFrom: 'earliest',
      maxWaitMs: 100,
      partitionMaxBytes: maxBytes,
      maxBytes: maxBytes * 4,
      maxBatchBytes: options.maxDecompressedBatchBytes,
      onRecords: (topic, partition, records, next) => this.#accept(topic, partition, records, next),
      onError: (_what, err) => {
        this.#lastError = { at: Date.now(), err };
      },
      onEnds: (topic, partition, ends) =>
        this.#exhausted.set(partitionKey(topic, partition), atStableEnd(ends)),
    });
  }

  start(ranges: readonly PartitionRange[]): Promise<void> {
    const open = ranges.filter((r) => r.end > r.start);
    if (open.length === 0) return Promise.resolve();
    this.#fetcher.add(open.map((r) => ({ topic: r.topic, partition: r.partition, offset: r.start })));
    this.#fetcher.start();
    this.#started = true;
    this.#lastData = Date.now();
    const idleMs = this.#o.idleMs ?? 30_000;
    this.#watchdog = setInterval(() => this.#checkIdle(idleMs), 1000);
    return Promise.resolve();
  }

  #accept(topic: string, partition: number, records: FetchedRecord[], next: bigint): void {
    const key = partitionKey(topic, partition);
    const wanted = this.#next.get(key);
    const end = this.#end.get(key);
    if (wanted === undefined || end === undefined) return;
    // Past the end taken at start: not ours.
    const ours = records.filter((r) => r.offset >= wanted && startsBefore(r, end)).map((r) => toInbound(r));
    if (ours.length > 0) {
      this.#lastData = Date.now();
      this.#merge.push(topic, partition, ours);
    }
    // `next` is past control records too: a range ending in a transaction marker ends here.
    if (next >= end) {
      this.#finish(topic, partition);
    } else {
      this.#next.set(key, next);
      if (this.#merge.buffered(topic, partition) >= this.#high) this.#pause(topic, partition);
    }
    this.#wake();
  }

  #finish(topic: string, partition: number): void {
    const key = partitionKey(topic, partition);
    this.#next.delete(key);
    this.#merge.end(topic, partition);
    this.#pause(topic, partition);
  }

  #pause(topic: string, partition: number): void {
    const key = partitionKey(topic, partition);
    if (this.#paused.has(key)) return;
    this.#paused.add(key);
    this.#fetcher.pause(topic, partition);
  }

  #checkIdle(idleMs: number): void {
    if (!this.#started || Date.now() - this.#lastData < idleMs) return;
    const error = this.#lastError;
    if (error && error.at > this.#lastData && this.#merge.waitingFor().length > 0) {
      // Not an end the broker holds back: it cannot be read.
      this.#failure = error.err;
      this.#wake();
      return;
    }
    // Only a partition the broker says has nothing more to read (its records deleted meanwhile) ends
    // short of its end; one that is merely slow (a busy broker) is waited for, within a bound.
    const slow: string[] = [];
    for (const { topic, partition } of this.#merge.waitingFor()) {
      const key = partitionKey(topic, partition);
      if (this.#exhausted.get(key) !== true) {
        slow.push(`${topic}/${partition}`);
        continue;
      }
      this.#o.logger.warn(
        { topic, partition, next: String(this.#next.get(key)), end: String(this.#end.get(key)) },
        'a partition has nothing more to read short of its end (its records deleted meanwhile); taking it as ended',
      );
      this.#finish(topic, partition);
    }
    if (slow.length > 0 && Date.now() - this.#lastData > idleMs * 10) {
      this.#failure = new Error(
        `reading ${slow.join(', ')} made no progress for ${Date.now() - this.#lastData} ms`,
      );
    }
    if (slow.length === 0) this.#lastData = Date.now();
    this.#wake();
  }

  #wake(): void {
    for (const resolve of this.#waiters.splice(0)) resolve();
  }

  /** The next message in the merged order, or undefined while the merge waits for a partition. */
  take(): InboundMessage | undefined {
    if (this.#failure !== undefined) throw asError(this.#failure);
    const m = this.#merge.take();
    if (m) {
      const key = partitionKey(m.topic, m.partition);
      if (
        this.#paused.has(key) &&
        this.#next.has(key) &&
        this.#merge.buffered(m.topic, m.partition) <= this.#high / 2
      ) {
        this.#paused.delete(key);
        this.#fetcher.resume(m.topic, m.partition);
      }
    }
    return m;
  }

  /** Every partition has ended and everything was taken. */
  get done(): boolean {
    return this.#merge.done;
  }

  /** Resolves when new messages arrived (or a partition ended), or after `ms`. */
  wait(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.#waiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  async close(): Promise<void> {
    if (this.#watchdog) clearInterval(this.#watchdog);
    this.#wake();
    await this.#fetcher.stop();
    await this.#consumer.close().catch(() => undefined);
  }
}
