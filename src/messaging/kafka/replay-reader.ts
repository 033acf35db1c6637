// Replay's read side: every selected partition of every selected request topic, from its start to the
// end taken when the replay began, fed into one timestamp merge (operations/replay-merge.ts). Memory is
// bounded: a partition pauses above `highWater` buffered messages and resumes once the merge has taken
// it down to half; the merge needs every open partition's head, and an empty partition is never paused,
// so this cannot wedge. Its consumer group commits nothing and never moves the live worker's offsets.
import type { Consumer, Kafka } from 'kafkajs';
import type { Logger } from '../../telemetry/logger.ts';
import { partitionKey, type InboundMessage } from '../engine/records.ts';
import { TimestampMerge } from '../operations/replay-merge.ts';
import { toInbound } from './inbound.ts';
import type { PartitionRange } from './operator-io.ts';

const asError = (err: unknown): Error => (err instanceof Error ? err : new Error(String(err)));

export interface MergedReadOptions {
  groupId: string;
  /** Tie-break order of topics (prefixed names). */
  topicOrder: readonly string[];
  /** Tie rank of messages with equal timestamps, before the topic order (replay-merge.ts). */
  tieRank?: (m: InboundMessage) => number;
  logger: Logger;
  /** Buffered messages per partition before it pauses (default 2,000). */
  highWater?: number;
  /** A partition the merge waits for that delivers nothing for this long has ended (a control record). */
  idleMs?: number;
  maxBytesPerPartition?: number;
}

export class MergedRead {
  readonly #merge: TimestampMerge;
  readonly #consumer: Consumer;
  readonly #o: MergedReadOptions;
  readonly #next = new Map<string, bigint>();
  readonly #end = new Map<string, bigint>();
  readonly #paused = new Set<string>();
  readonly #high: number;
  #waiters: (() => void)[] = [];
  #failure: unknown;
  #lastData = Date.now();
  #joined = false;
  #watchdog: NodeJS.Timeout | undefined;

  constructor(kafka: Kafka, ranges: readonly PartitionRange[], options: MergedReadOptions) {
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
    this.#consumer = kafka.consumer({
      groupId: options.groupId,
      maxWaitTimeInMs: 100,
      maxBytesPerPartition: options.maxBytesPerPartition ?? 1024 * 1024,
      allowAutoTopicCreation: false,
    });
  }

  async start(ranges: readonly PartitionRange[]): Promise<void> {
    const open = ranges.filter((r) => r.end > r.start);
    if (open.length === 0) return;
    const consumer = this.#consumer;
    await consumer.connect();
    consumer.on(consumer.events.GROUP_JOIN, () => {
      this.#joined = true;
      this.#lastData = Date.now();
    });
    consumer.on(consumer.events.CRASH, ({ payload }) => {
      this.#failure = payload.error;
      this.#wake();
    });
    await consumer.subscribe({ topics: [...new Set(open.map((r) => r.topic))], fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatch: ({ batch }) => {
        this.#accept(
          batch.topic,
          batch.partition,
          batch.messages.map((m) => toInbound(batch.topic, batch.partition, m)),
        );
        return Promise.resolve();
      },
    });
    for (const r of open)
      consumer.seek({ topic: r.topic, partition: r.partition, offset: r.start.toString() });
    const idleMs = this.#o.idleMs ?? 30_000;
    this.#watchdog = setInterval(() => this.#checkIdle(idleMs), 1000);
  }

  #accept(topic: string, partition: number, messages: InboundMessage[]): void {
    const key = partitionKey(topic, partition);
    const wanted = this.#next.get(key);
    const end = this.#end.get(key);
    if (wanted === undefined || end === undefined) return;
    // Before the seek took effect, or past the end taken at start: not ours.
    const ours = messages.filter((m) => {
      const offset = BigInt(m.offset);
      return offset >= wanted && offset < end;
    });
    const last = ours.at(-1);
    if (!last) return;
    this.#lastData = Date.now();
    this.#merge.push(topic, partition, ours);
    const next = BigInt(last.offset) + 1n;
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
    this.#consumer.pause([{ topic, partitions: [partition] }]);
  }

  #checkIdle(idleMs: number): void {
    if (!this.#joined || Date.now() - this.#lastData < idleMs) return;
    for (const { topic, partition } of this.#merge.waitingFor()) {
      const key = partitionKey(topic, partition);
      this.#o.logger.warn(
        { topic, partition, next: String(this.#next.get(key)), end: String(this.#end.get(key)) },
        'a partition delivered nothing for a while short of its end (control records); taking it as ended',
      );
      this.#finish(topic, partition);
    }
    this.#lastData = Date.now();
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
        this.#consumer.resume([{ topic: m.topic, partitions: [m.partition] }]);
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
    await this.#consumer.disconnect().catch(() => undefined);
  }
}
