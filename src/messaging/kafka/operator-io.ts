// Kafka I/O of the operator tools (dead letters, status). Reads fixed offset ranges without moving any
// consumer group: kafkajs only reads through a group, so each read has a throwaway group of its own that
// commits nothing, seeks to the range starts and stops at the end offsets taken before it began.
import { randomUUID } from 'node:crypto';
import type { Admin, Kafka } from 'kafkajs';
import type { InboundMessage, OutboundRecord } from '../engine/records.ts';
import { toInbound } from './inbound.ts';

/** Offsets [start, end) of one partition. */
export interface PartitionRange {
  topic: string;
  partition: number;
  start: bigint;
  end: bigint;
}

/** The first offset at or after `time`, per partition; the end when there is none. */
async function offsetsAt(admin: Admin, topic: string, time: Date, high: Map<number, bigint>) {
  const found = await admin.fetchTopicOffsetsByTimestamp(topic, time.getTime());
  return new Map(
    found.map(({ partition, offset }) => {
      const n = BigInt(offset);
      const limit = high.get(partition) ?? 0n;
      return [partition, n < 0n || n > limit ? limit : n] as const;
    }),
  );
}

/** What is in `topics` now, optionally from the first message at or after `since` (until `until`). */
export async function planRanges(
  admin: Admin,
  topics: readonly string[],
  window: { since?: Date | undefined; until?: Date | undefined } = {},
): Promise<PartitionRange[]> {
  const ranges: PartitionRange[] = [];
  for (const topic of topics) {
    const offsets = await admin.fetchTopicOffsets(topic);
    const high = new Map(offsets.map((o) => [o.partition, BigInt(o.high)]));
    const starts = window.since ? await offsetsAt(admin, topic, window.since, high) : undefined;
    const ends = window.until ? await offsetsAt(admin, topic, window.until, high) : high;
    for (const o of offsets) {
      const low = BigInt(o.low);
      const from = starts?.get(o.partition) ?? low;
      const start = from > low ? from : low;
      const end = ends.get(o.partition) ?? start;
      ranges.push({ topic, partition: o.partition, start, end: end > start ? end : start });
    }
  }
  return ranges.sort((a, b) => a.topic.localeCompare(b.topic) || a.partition - b.partition);
}

export interface ReadOptions {
  /** Prefix of the throwaway group id. */
  groupPrefix: string;
  /** Give up on a partition that has not advanced for this long (its end was a control record). */
  idleMs?: number;
  onProgress?: (read: number) => void;
}

/** Calls `onMessage` for every message of the ranges, in offset order per partition, then resolves. */
export async function readRanges(
  kafka: Kafka,
  ranges: readonly PartitionRange[],
  onMessage: (message: InboundMessage) => void | Promise<void>,
  options: ReadOptions,
): Promise<{ read: number }> {
  const open = ranges.filter((r) => r.end > r.start);
  if (open.length === 0) return { read: 0 };
  const key = (topic: string, partition: number) => `${topic}\u0000${partition}`;
  const next = new Map(open.map((r) => [key(r.topic, r.partition), r.start]));
  const ends = new Map(open.map((r) => [key(r.topic, r.partition), r.end]));
  const consumer = kafka.consumer({
    groupId: `${options.groupPrefix}-${randomUUID()}`,
    maxWaitTimeInMs: 100,
    allowAutoTopicCreation: false,
  });
  let read = 0;
  let joined = false;
  let lastProgress = Date.now();
  let finish: (() => void) | undefined;
  let fail: ((err: unknown) => void) | undefined;
  const finished = new Promise<void>((resolve, reject) => {
    finish = resolve;
    fail = reject;
  });
  await consumer.connect();
  try {
    const topics = [...new Set(open.map((r) => r.topic))];
    await consumer.subscribe({ topics, fromBeginning: true });
    consumer.on(consumer.events.GROUP_JOIN, () => {
      joined = true;
      lastProgress = Date.now();
    });
    consumer.on(consumer.events.CRASH, ({ payload }) => fail?.(payload.error));
    await consumer.run({
      autoCommit: false,
      eachMessage: async ({ topic, partition, message }) => {
        const id = key(topic, partition);
        const wanted = next.get(id);
        const end = ends.get(id);
        const offset = BigInt(message.offset);
        // Before the seek took effect, or past the end taken at start: not ours.
        if (wanted === undefined || end === undefined || offset < wanted || offset >= end) return;
        next.set(id, offset + 1n);
        if (offset + 1n >= end) next.delete(id);
        read += 1;
        lastProgress = Date.now();
        await onMessage(toInbound(topic, partition, message));
        options.onProgress?.(read);
        if (next.size === 0) finish?.();
      },
    });
    for (const r of open)
      consumer.seek({ topic: r.topic, partition: r.partition, offset: r.start.toString() });
    const idleMs = options.idleMs ?? 10_000;
    const watchdog = setInterval(() => {
      if (joined && Date.now() - lastProgress > idleMs) finish?.();
    }, 250);
    try {
      await finished;
    } finally {
      clearInterval(watchdog);
    }
  } finally {
    await consumer.disconnect();
  }
  return { read };
}

/** Produces in order, `chunk` at a time, each chunk acknowledged by all in-sync replicas. */
export async function produceInOrder(
  kafka: Kafka,
  records: readonly OutboundRecord[],
  onProgress?: (sent: number) => void,
  chunk = 100,
): Promise<void> {
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  try {
    for (let i = 0; i < records.length; i += chunk) {
      const part = records.slice(i, i + chunk);
      await producer.sendBatch({
        acks: -1,
        topicMessages: [...new Set(part.map((r) => r.topic))].map((topic) => ({
          topic,
          messages: part
            .filter((r) => r.topic === topic)
            .map((r) => ({ key: r.key, value: r.value, headers: r.headers })),
        })),
      });
      onProgress?.(i + part.length);
    }
  } finally {
    await producer.disconnect();
  }
}
