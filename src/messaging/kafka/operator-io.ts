// Kafka I/O of the operator tools (dead letters, status, live outcomes). Reads fixed offset ranges without
// a consumer group: a PartitionFetcher reads each range from its start and stops at the end offset taken
// before the read began, committing nothing.
import { asError } from '../../contracts/errors.ts';
import { randomUUID } from 'node:crypto';
import { Consumer } from '@platformatic/kafka';
import { createLogger } from '../../telemetry/logger.ts';
import type { InboundMessage, OutboundRecord } from '../engine/records.ts';
import type { KafkaAdmin } from './admin.ts';
import type { KafkaClient } from './client.ts';
import { PartitionFetcher, startsBefore, type FetchedRecord } from './fetcher.ts';
import { toInbound } from './inbound.ts';
import { atStableEnd } from './transaction-holds.ts';
import { KafkaRecordSender } from './record-sender.ts';

/** Offsets [start, end) of one partition. */
export interface PartitionRange {
  topic: string;
  partition: number;
  start: bigint;
  end: bigint;
  /** Records past `end` that a transaction still open when the range was planned held back: from its
   * first offset (the last stable offset), to the end the range would have had. */
  heldBack?: { from: bigint; records: bigint };
}

/** The first offset at or after `time`, per partition; the end when there is none. */
async function offsetsAt(admin: KafkaAdmin, topic: string, time: Date, high: Map<number, bigint>) {
  const found = await admin.fetchTopicOffsetsByTimestamp(topic, time.getTime());
  return new Map(
    found.map(({ partition, offset }) => {
      const n = BigInt(offset);
      const limit = high.get(partition) ?? 0n;
      return [partition, n < 0n || n > limit ? limit : n] as const;
    }),
  );
}

/** What is in `topics` now, optionally from the first message at or after `since` (until `until`).
 * "Now" is what a read_committed reader can read: a range ends at the last stable offset, so that no
 * read waits for a transaction a producer opened and has not ended (anyone allowed a transactional id
 * can hold one open for up to the broker's transaction.max.timeout.ms); what it holds back is named. */
export async function planRanges(
  admin: KafkaAdmin,
  topics: readonly string[],
  window: { since?: Date | undefined; until?: Date | undefined } = {},
): Promise<PartitionRange[]> {
  const ranges: PartitionRange[] = [];
  for (const topic of topics) {
    const offsets = await admin.fetchTopicOffsets(topic);
    const high = new Map(offsets.map((o) => [o.partition, BigInt(o.high)]));
    const stable = new Map(offsets.map((o) => [o.partition, BigInt(o.stable)]));
    const starts = window.since ? await offsetsAt(admin, topic, window.since, high) : undefined;
    const ends = window.until ? await offsetsAt(admin, topic, window.until, high) : high;
    for (const o of offsets) {
      const low = BigInt(o.low);
      const from = starts?.get(o.partition) ?? low;
      const start = from > low ? from : low;
      const wanted = ends.get(o.partition) ?? start;
      const readable = stable.get(o.partition) ?? wanted;
      const end = wanted > readable ? readable : wanted;
      const range: PartitionRange = { topic, partition: o.partition, start, end: end > start ? end : start };
      if (wanted > readable && wanted > start) {
        const from = readable > start ? readable : start;
        range.heldBack = { from, records: wanted - from };
      }
      ranges.push(range);
    }
  }
  return ranges.sort((a, b) => a.topic.localeCompare(b.topic) || a.partition - b.partition);
}

export interface ReadOptions {
  /** Prefix of the name of the group the reading consumer is made with (it never joins it). */
  groupPrefix: string;
  /** A partition that has not advanced for this long, while the broker says nothing past its position
   * is readable, has ended (its records deleted meanwhile; planned ranges end before any open
   * transaction). One merely slow (a busy broker) is waited for up to ten times this, then the read fails
   * naming it; when fetches failed meanwhile, it fails with the last error. */
  idleMs?: number;
  onProgress?: (read: number) => void;
}

/** Calls `onMessage` for every message of the ranges, in offset order per partition, then resolves. */
export async function readRanges(
  client: KafkaClient,
  ranges: readonly PartitionRange[],
  onMessage: (message: InboundMessage) => void | Promise<void>,
  options: ReadOptions,
): Promise<{ read: number }> {
  const open = ranges.filter((r) => r.end > r.start);
  if (open.length === 0) return { read: 0 };
  const key = (topic: string, partition: number) => `${topic}\u0000${partition}`;
  const ends = new Map(open.map((r) => [key(r.topic, r.partition), r.end]));
  // Only fetch, metadata and offsets are asked of this consumer: it never joins its group.
  const consumer = new Consumer({
    ...client.options('-ranges'),
    groupId: `${options.groupPrefix}-${randomUUID()}`,
  });
  consumer.on('error', () => undefined);
  let read = 0;
  let done = false;
  let lastProgress = Date.now();
  let lastError: { at: number; err: unknown } | undefined;
  const { promise: finished, resolve, reject } = Promise.withResolvers<void>();
  const finish = (err?: unknown) => {
    if (done) return;
    done = true;
    if (err === undefined) resolve();
    else reject(asError(err));
  };
  // Fetched batches wait here for onMessage; their partition is paused until its batch is through.
  const queue: { topic: string; partition: number; records: FetchedRecord[]; next: bigint }[] = [];
  let draining = false;
  const drain = async () => {
    if (draining) return;
    draining = true;
    try {
      while (!done && queue.length > 0) {
        const { topic, partition, records, next } = queue.shift()!;
        const id = key(topic, partition);
        const end = ends.get(id);
        if (end === undefined) continue;
        for (const record of records) {
          if (done || !startsBefore(record, end)) break;
          read += 1;
          lastProgress = Date.now();
          await onMessage(toInbound(record));
          options.onProgress?.(read);
        }
        lastProgress = Date.now();
        // `next` is past control records too: a range ending in a transaction marker ends here.
        if (next >= end) {
          ends.delete(id);
          fetcher.remove([{ topic, partition }]);
          if (ends.size === 0) finish();
        } else fetcher.resume(topic, partition);
      }
    } catch (err) {
      finish(err);
    } finally {
      draining = false;
    }
  };
  // Per partition, from the last fetch answer: whether anything past its position is readable at all.
  const exhausted = new Map<string, boolean>();
  const fetcher = new PartitionFetcher({
    consumer,
    connection: client.options('-ranges'),
    startFrom: 'earliest',
    maxWaitMs: 100,
    onEnds: (topic, partition, ends) => exhausted.set(key(topic, partition), atStableEnd(ends)),
    onRecords: (topic, partition, records, next) => {
      lastProgress = Date.now();
      fetcher.pause(topic, partition);
      queue.push({ topic, partition, records, next });
      void drain();
    },
    onError: (_what, err) => {
      lastError = { at: Date.now(), err };
    },
  });
  const idleMs = options.idleMs ?? 10_000;
  const watchdog = setInterval(() => {
    const idle = Date.now() - lastProgress;
    if (draining || idle <= idleMs) return;
    if (lastError && lastError.at > lastProgress) return finish(lastError.err);
    // Only a partition the broker says has nothing more to read (its records deleted meanwhile) ends
    // short of its end; one that is merely slow (a busy broker) is waited for, within a bound.
    const waiting = [...ends.keys()].filter((id) => exhausted.get(id) !== true);
    if (waiting.length === 0) return finish();
    if (idle > idleMs * 10) {
      finish(
        new Error(`reading ${waiting.join(', ').replaceAll('\u0000', '/')} made no progress for ${idle} ms`),
      );
    }
  }, 250);
  try {
    fetcher.add(open.map((r) => ({ topic: r.topic, partition: r.partition, offset: r.start })));
    fetcher.start();
    await finished;
  } finally {
    done = true;
    clearInterval(watchdog);
    await fetcher.stop();
    await consumer.close().catch(() => undefined);
  }
  return { read };
}

/** Sends records in the order they are added, `chunk` at a time, each chunk acknowledged by all in-sync
 * replicas before the next is sent. `add` waits while a full chunk is under way, so a caller that awaits
 * it (a reader's async onMessage) holds at most one chunk however many records it sends. */
export class OrderedSends {
  readonly #sender: KafkaRecordSender;
  readonly #chunk: number;
  #pending: OutboundRecord[] = [];
  #sent = 0;

  constructor(client: KafkaClient, chunk = 100) {
    this.#sender = new KafkaRecordSender(client, client.logger ?? createLogger('silent'), {
      clientIdSuffix: '-redrive',
    });
    this.#chunk = chunk;
  }

  /** Records acknowledged so far. */
  get sent(): number {
    return this.#sent;
  }

  connect(): Promise<void> {
    return this.#sender.connect();
  }

  async add(record: OutboundRecord): Promise<void> {
    this.#pending.push(record);
    if (this.#pending.length >= this.#chunk) await this.flush();
  }

  /** Sends what was added and not sent yet. */
  async flush(): Promise<void> {
    if (this.#pending.length === 0) return;
    const part = this.#pending;
    this.#pending = [];
    await this.#sender.send(part);
    this.#sent += part.length;
  }

  /** Disconnects; what was added and not flushed is not sent. */
  close(): Promise<void> {
    return this.#sender.disconnect();
  }
}
