// What the live worker answered, read back so that a replay reproduces it (issue 22, point 3): a message
// refused live is not applied on replay, even when the replay's order would now accept it. Sources: the
// dead-letter topics (kafka_dlt-original-topic/partition/offset, kafka_dlt-exception-fqcn) and the result
// topics (metadata.source, error.code). Dead letters written by replays (their consumer group has
// ".replay.") are not live outcomes and are left out; a success result for the same message wins (a
// result the broker refused is replaced by an error that says the request itself succeeded). What it
// applied is kept too (AppliedLive), so that a replay can defer such a message where its order refuses it.
//
// Outcomes are keyed by coordinates, which a topic deleted and created again reuses: a verdict also keeps a
// 32-bit hash of its request's Kafka timestamp (the dead letter's kafka_dlt-original-timestamp, a result's
// metadata.source.timestamp), and a replayed record with another timestamp is not given it. Verdicts
// written without one (by earlier versions) still match any record at their coordinates.
import { HEADERS, headerBytes } from '../../contracts/headers.ts';
import type { RequestTopic, TopicNames } from '../../contracts/topics.ts';
import type { KafkaAdmin } from '../kafka/admin.ts';
import type { KafkaClient } from '../kafka/client.ts';
import { planRanges, readRanges, type PartitionRange } from '../kafka/operator-io.ts';
import { partitionKey, type InboundMessage } from '../engine/records.ts';
import { decodeDeadLetter } from './dead-letters.ts';
import { readBigEndian } from '../stages/encode.ts';
import { isoTimeOrNull } from '../../contracts/time.ts';

/** `topic/partition/offset` of a request record. */
export const coordinates = (topic: string, partition: number, offset: string): string =>
  `${topic}/${partition}/${offset}`;

/** A request's Kafka timestamp (ms, decimal) as a 32-bit number other than 0; 0 where it is not known.
 * Two records at the same coordinates with different timestamps look alike to it once in 4 billion (a
 * byte was once in 255: a replay refused a valid record so, and a producer's batch shares one timestamp,
 * so one collision took a dozen records). */
export function timestampStamp(timestamp: string | number | undefined): number {
  if (timestamp === undefined) return 0;
  const text = String(timestamp);
  if (!/^-?\d{1,20}$/.test(text)) return 0;
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i += 1) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193);
  return hash >>> 0 || 1;
}

/** Offsets per chunk of stamps: only chunks holding a verdict take memory (4 bytes an offset). */
const STAMP_CHUNK_BITS = 12;

/** Per offset of a range, the stamp of the request a verdict was said of, in chunks made as needed. */
class Stamps {
  readonly #chunks: (Uint32Array | undefined)[] = [];

  get(i: number): number {
    return this.#chunks[i >> STAMP_CHUNK_BITS]?.[i & ((1 << STAMP_CHUNK_BITS) - 1)] ?? 0;
  }

  set(i: number, stamp: number): void {
    const c = i >> STAMP_CHUNK_BITS;
    const chunk =
      this.#chunks[c] ??
      (stamp === 0 ? undefined : (this.#chunks[c] = new Uint32Array(1 << STAMP_CHUNK_BITS)));
    if (chunk) chunk[i & ((1 << STAMP_CHUNK_BITS) - 1)] = stamp;
  }
}

/** Whether two stamps may be of the same record (an unknown one matches any). */
const sameRecord = (a: number, b: number): boolean => a === 0 || b === 0 || a === b;

/** Where `offset` falls in a replayed range (its index from the range's start), if it does. */
function indexIn(range: { start: bigint; end: bigint } | undefined, offset: string): number | undefined {
  if (!range || !/^\d{1,19}$/.test(offset)) return undefined;
  const n = BigInt(offset);
  return n < range.start || n >= range.end ? undefined : Number(n - range.start);
}

/**
 * Request records the live worker applied: a bit per offset of the ranges a replay reads, so that what
 * anyone writes to a result topic cannot make it outgrow the replay (other offsets are not kept).
 */
export class AppliedLive {
  readonly #ranges = new Map<string, { start: bigint; end: bigint; bits: Uint8Array }>();
  #size = 0;

  constructor(ranges: readonly PartitionRange[]) {
    for (const r of ranges)
      if (r.end > r.start)
        this.#ranges.set(partitionKey(r.topic, r.partition), {
          start: r.start,
          end: r.end,
          bits: new Uint8Array(Number((r.end - r.start + 7n) / 8n)),
        });
  }

  /** Requests recorded as applied. */
  get size(): number {
    return this.#size;
  }

  add(topic: string, partition: number, offset: string): void {
    const at = this.#bit(topic, partition, offset);
    if (!at || (at.bits[at.byte] as number) & at.mask) return;
    at.bits[at.byte] = (at.bits[at.byte] as number) | at.mask;
    this.#size += 1;
  }

  has(topic: string, partition: number, offset: string): boolean {
    const at = this.#bit(topic, partition, offset);
    return at !== undefined && ((at.bits[at.byte] as number) & at.mask) !== 0;
  }

  #bit(topic: string, partition: number, offset: string) {
    const range = this.#ranges.get(partitionKey(topic, partition));
    const i = indexIn(range, offset);
    return range && i !== undefined ? { bits: range.bits, byte: i >> 3, mask: 1 << (i & 7) } : undefined;
  }
}

const APPLIED = 1;
/** Distinct codes kept; any producer can write a code into a dead letter, and further ones count as this. */
const MAX_CODES = 250;
const OTHER_CODE = 'INTERNAL';

/**
 * What the live worker answered for the request records of the ranges a replay reads: refused with a
 * code, or applied though its result was refused (a dead letter that says so). One byte per offset,
 * allocated for a range when it first has one; records outside the ranges are not kept (a flood of
 * 450,000 dead letters, kept by coordinates, ran a replay of nothing out of memory).
 */
export class RefusedLive {
  /** Per offset, a state (none, applied, a code) and the stamp of the request it was said of. */
  readonly #ranges = new Map<string, { start: bigint; end: bigint; states?: Uint8Array; stamps?: Stamps }>();
  /** Codes by index; 0 is none, APPLIED is applied, then OTHER_CODE (what codes past MAX_CODES read as). */
  readonly #codes: string[] = ['', '', OTHER_CODE];
  readonly #index = new Map<string, number>([[OTHER_CODE, 2]]);
  #size = 0;

  constructor(ranges: readonly PartitionRange[]) {
    for (const r of ranges)
      if (r.end > r.start)
        this.#ranges.set(partitionKey(r.topic, r.partition), { start: r.start, end: r.end });
  }

  /** Records refused live. */
  get size(): number {
    return this.#size;
  }

  /** The code the record at these coordinates, stamped `timestamp`, was refused with live, if it was. */
  get(topic: string, partition: number, offset: string, timestamp?: string): string | undefined {
    const at = this.#at(topic, partition, offset, false);
    const state = at ? (at.states[at.i] as number) : 0;
    if (state <= APPLIED || !at || !sameRecord(at.stamps.get(at.i), timestampStamp(timestamp)))
      return undefined;
    return this.#codes[state];
  }

  /**
   * Refused with `code`, unless something was said of the same request already. What was said of another
   * request at these coordinates (a topic deleted and created again) is replaced when `newer`: a later
   * record of the same dead-letter topic.
   */
  refuse(topic: string, partition: number, offset: string, code: string, stamp = 0, newer = false): void {
    const at = this.#at(topic, partition, offset, true);
    if (!at) return;
    const state = at.states[at.i] as number;
    if (state !== 0 && (sameRecord(at.stamps.get(at.i), stamp) || !newer)) return;
    if (state <= APPLIED) this.#size += 1;
    at.states[at.i] = this.#codeIndex(code);
    at.stamps.set(at.i, stamp);
  }

  /** Applied, whatever was said before (a dead letter says its result was refused, not the request; a
   * later dead letter is of the same request or of a newer one at these coordinates). */
  applied(topic: string, partition: number, offset: string, stamp = 0): void {
    const at = this.#at(topic, partition, offset, true);
    if (!at) return;
    if ((at.states[at.i] as number) > APPLIED) this.#size -= 1;
    at.states[at.i] = APPLIED;
    at.stamps.set(at.i, stamp);
  }

  /** A success result: no longer refused (but not taken as applied by a dead letter), unless the refusal
   * was of another request at these coordinates. */
  answered(topic: string, partition: number, offset: string, stamp = 0): void {
    const at = this.#at(topic, partition, offset, false);
    if (!at || (at.states[at.i] as number) <= APPLIED) return;
    if (!sameRecord(at.stamps.get(at.i), stamp)) return;
    at.states[at.i] = 0;
    this.#size -= 1;
  }

  #codeIndex(code: string): number {
    let index = this.#index.get(code);
    if (index !== undefined) return index;
    if (this.#codes.length >= MAX_CODES) return 2;
    index = this.#codes.length;
    this.#codes.push(code);
    this.#index.set(code, index);
    return index;
  }

  #at(topic: string, partition: number, offset: string, create: boolean) {
    const range = this.#ranges.get(partitionKey(topic, partition));
    const i = indexIn(range, offset);
    if (!range || i === undefined) return undefined;
    if (!range.states || !range.stamps) {
      if (!create) return undefined;
      range.states = new Uint8Array(Number(range.end - range.start));
      range.stamps = new Stamps();
    }
    return { states: range.states, stamps: range.stamps, i };
  }
}

/** A verdict on one request record: refused with a code, or applied (null). */
export interface Verdict {
  at: string;
  topic: string;
  partition: number;
  offset: string;
  code: string | null;
  /** The request's timestamp as timestampStamp gives it (0: not said). */
  stamp: number;
}

export interface LiveOutcomes {
  /** Request records of the replayed ranges refused live, with their codes. */
  refused: RefusedLive;
  /** Request records applied live, within the replayed ranges. */
  applied: AppliedLive;
  /** Records read from the dead-letter and result topics. */
  read: number;
  /** Sources that lost records to retention, with the earliest time they still hold (null: none left). */
  truncated: { topic: string; since: string | null }[];
}

const isReplayGroup = (group: string | null) => group !== null && group.includes('.replay.');

/** A dead letter's verdict on its original: refused with a code, applied, or nothing to say. */
export function deadLetterVerdict(m: InboundMessage): Verdict | undefined {
  const dl = decodeDeadLetter(m);
  const { topic, partition, offset } = dl.original;
  if (topic === null || partition === null || offset === null || isReplayGroup(dl.consumerGroup))
    return undefined;
  // Its result could not be published, but the request itself was applied.
  const applied = dl.message?.includes('the request itself succeeded') === true;
  const code = applied ? null : (dl.code ?? 'INTERNAL');
  const stamp = timestampStamp(readBigEndian(headerBytes(m.headers[HEADERS.dltOriginalTimestamp])));
  return { at: coordinates(topic, partition, offset), topic, partition, offset, code, stamp };
}

interface ResultBody {
  success?: unknown;
  error?: { code?: unknown; details?: { request_succeeded?: unknown } } | null;
  metadata?: {
    source?: { topic?: unknown; partition?: unknown; offset?: unknown; timestamp?: unknown };
    duplicate?: unknown;
  };
}

/** A result's verdict on its request: refused with a code, applied, or nothing to say. */
export function resultVerdict(m: InboundMessage): Verdict | undefined {
  if (!m.value) return undefined;
  let body: ResultBody | null;
  try {
    body = JSON.parse(m.value.toString('utf8')) as ResultBody | null;
  } catch {
    return undefined;
  }
  // Anyone who can write to a result topic can write `null` there, or any other JSON.
  if (typeof body !== 'object' || body === null) return undefined;
  const source = body.metadata?.source;
  if (
    typeof source?.topic !== 'string' ||
    typeof source.partition !== 'number' ||
    typeof source.offset !== 'string'
  )
    return undefined;
  const { topic, partition, offset } = source;
  const at = coordinates(topic, partition, offset);
  const stamp = typeof source.timestamp === 'string' ? timestampStamp(source.timestamp) : 0;
  if (body.success === true || body.error?.details?.request_succeeded === true)
    return { at, topic, partition, offset, code: null, stamp };
  const code = body.error?.code;
  // A read whose caller gave up was never run: not a refusal of a write.
  if (typeof code !== 'string' || code === 'DEADLINE_EXCEEDED') return undefined;
  return { at, topic, partition, offset, code, stamp };
}

/** Reads what the live worker answered for the request topics `topics`; what it applied is kept for the
 * offsets in `replayed`. */
export async function readLiveOutcomes(
  kafka: KafkaClient,
  admin: KafkaAdmin,
  names: TopicNames,
  topics: readonly RequestTopic[],
  replayed: readonly PartitionRange[],
  groupPrefix: string,
  onProgress?: (read: number) => void,
): Promise<LiveOutcomes> {
  const refused = new RefusedLive(replayed);
  const appliedLive = new AppliedLive(replayed);
  const existing = new Set(await admin.listTopics());
  const dlqs = topics.map((t) => names.dlq(t)).filter((t) => existing.has(t));
  const results = topics.map((t) => names.result(t)).filter((t) => existing.has(t));
  let read = 0;
  const truncated: LiveOutcomes['truncated'] = [];
  const track = (topic: string, m: InboundMessage) => {
    const seen = truncated.find((e) => e.topic === topic);
    const time = isoTimeOrNull(Number(m.timestamp));
    if (time === null) return; // a record stamped with no time (anyone can write one) dates nothing
    if (seen && (seen.since === null || time < seen.since)) seen.since = time;
  };
  const readAll = async (
    sources: string[],
    onVerdict: (v: Verdict) => void,
    verdict: typeof resultVerdict,
  ) => {
    if (sources.length === 0) return;
    const ranges = await planRanges(admin, sources);
    for (const topic of new Set(ranges.filter((r) => r.start > 0n).map((r) => r.topic)))
      truncated.push({ topic, since: null });
    await readRanges(
      kafka,
      ranges,
      (m) => {
        read += 1;
        onProgress?.(read);
        track(m.topic, m);
        const v = verdict(m);
        if (v?.code === null) appliedLive.add(v.topic, v.partition, v.offset);
        if (v) onVerdict(v);
      },
      { groupPrefix, idleMs: 5_000 },
    );
  };
  // Dead letters first (few), then results (many): a success result clears a refusal, and is not kept.
  await readAll(
    dlqs,
    (v) => {
      if (v.code === null) refused.applied(v.topic, v.partition, v.offset, v.stamp);
      else refused.refuse(v.topic, v.partition, v.offset, v.code, v.stamp, true);
    },
    deadLetterVerdict,
  );
  await readAll(
    results,
    (v) => {
      if (v.code === null) refused.answered(v.topic, v.partition, v.offset, v.stamp);
      else refused.refuse(v.topic, v.partition, v.offset, v.code, v.stamp);
    },
    resultVerdict,
  );
  return { refused, applied: appliedLive, read, truncated };
}
