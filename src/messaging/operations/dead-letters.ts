// Dead letters as an operator sees them (CONTRACT "Dead letters"): decoded from Spring Kafka's headers,
// filtered, and turned back into the original request for a redrive. A redriven message keeps its
// identity: the same body and kafka_correlationId, or, with neither, pattern-redrive-of naming the first
// original's coordinates (contracts/identity.ts), so redriving twice still applies it once.
import { HEADERS, emptyHeaders, headerBytes, type HeaderValue } from '../../contracts/headers.ts';
import { readCoordinates } from '../../contracts/identity.ts';
import type { TopicNames } from '../../contracts/topics.ts';
import type { HeaderEntry, InboundMessage, OutboundRecord } from '../engine/records.ts';
import { originalHeaders, readBigEndian } from '../stages/encode.ts';
import { isoTimeOrNull } from '../../contracts/time.ts';
import { jsonDepth, MAX_JSON_DEPTH } from '../../contracts/decode.ts';

export interface DeadLetter {
  /** `<dlq-topic>:<partition>:<offset>`, what `patterns dlq show` takes. */
  ref: string;
  topic: string;
  partition: number;
  offset: string;
  /** When it was dead-lettered. */
  time: string;
  original: { topic: string | null; partition: number | null; offset: string | null; time: string | null };
  code: string | null;
  message: string | null;
  consumerGroup: string | null;
  /** Only for messages given up on after bounded retries. */
  errorClass: string | null;
  attempts: number | null;
  correlationId: string | null;
  redriveCount: number;
  key: string | null;
}

const text = (value: HeaderValue): string | null => headerBytes(value)?.toString('utf8') ?? null;

function printable(bytes: Buffer): boolean {
  const s = bytes.toString('utf8');
  // C1 controls, the marks that reorder text and invisible ones are not text either (cli/options.ts
  // terminalSafe).
  return (
    Buffer.from(s, 'utf8').equals(bytes) &&
    // eslint-disable-next-line no-control-regex -- control characters mean "not text"
    !/[\u0000-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff\ufffd]/.test(s)
  );
}

/** Spring's 16 raw bytes as the UUID they are; text as text; anything else as base64. */
function correlationText(bytes: Buffer): string {
  if (bytes.length === 16 && !printable(bytes)) {
    const hex = bytes.toString('hex');
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  }
  return printable(bytes) ? bytes.toString('utf8') : `base64:${bytes.toString('base64')}`;
}

function bodyCorrelationId(value: Buffer | null): string | null {
  if (!value) return null;
  try {
    const body: unknown = JSON.parse(value.toString('utf8'));
    const id = (body as { correlation_id?: unknown } | null)?.correlation_id;
    return typeof id === 'string' ? id : null;
  } catch {
    return null;
  }
}

/** A Spring big-endian integer header (4 or 8 bytes) that is a partition or an offset: at least 0. */
function coordinate(bytes: Buffer | undefined, max: bigint): bigint | undefined {
  const n =
    bytes?.length === 4
      ? BigInt(bytes.readInt32BE())
      : bytes?.length === 8
        ? bytes.readBigInt64BE()
        : undefined;
  return n !== undefined && n >= 0n && n <= max ? n : undefined;
}

/** How many times a letter was redriven: a decimal count, or 0 for anything else anyone wrote there. */
function redriveCountOf(text: string | null): number {
  return text !== null && /^\d{1,9}$/.test(text) ? Number(text) : 0;
}

export function decodeDeadLetter(m: InboundMessage): DeadLetter {
  const h = m.headers;
  const number = (name: string) => readBigEndian(headerBytes(h[name]));
  // Forged coordinates read as absent, so a redrive never writes a pattern-redrive-of it cannot read.
  const originalPartition = coordinate(headerBytes(h[HEADERS.dltOriginalPartition]), 2n ** 31n - 1n);
  const originalOffset = coordinate(headerBytes(h[HEADERS.dltOriginalOffset]), 2n ** 63n - 1n);
  const header = headerBytes(h[HEADERS.correlationId]);
  return {
    ref: `${m.topic}:${m.partition}:${m.offset}`,
    topic: m.topic,
    partition: m.partition,
    offset: m.offset,
    time: isoTimeOrNull(Number(m.timestamp)) ?? '',
    original: {
      topic: text(h[HEADERS.dltOriginalTopic]),
      partition: originalPartition === undefined ? null : Number(originalPartition),
      offset: originalOffset === undefined ? null : String(originalOffset),
      time: isoTimeOrNull(number(HEADERS.dltOriginalTimestamp)),
    },
    code: text(h[HEADERS.dltExceptionFqcn]),
    message: text(h[HEADERS.dltExceptionMessage]),
    consumerGroup: text(h[HEADERS.dltOriginalConsumerGroup]),
    errorClass: text(h[HEADERS.dltExceptionCauseFqcn]),
    attempts: number(HEADERS.deliveryAttempt) ?? null,
    correlationId: bodyCorrelationId(m.value) ?? (header ? correlationText(header) : null),
    redriveCount: redriveCountOf(text(h[HEADERS.redriveCount])),
    key: m.key ? correlationText(m.key) : null,
  };
}

// Headers that hold Spring's big-endian integers, shown as numbers.
const INTEGER_HEADERS = new Set<string>([
  HEADERS.dltOriginalPartition,
  HEADERS.dltOriginalOffset,
  HEADERS.dltOriginalTimestamp,
  HEADERS.deliveryAttempt,
]);

/** The whole dead letter: every header decoded, the value as JSON when it is JSON. */
export function describeDeadLetter(m: InboundMessage) {
  // No prototype: a header named __proto__ is shown like any other.
  const headers = emptyHeaders<string | number | null>();
  for (const [name, raw] of Object.entries(m.headers)) {
    const bytes = headerBytes(raw);
    if (!bytes) continue;
    headers[name] = INTEGER_HEADERS.has(name)
      ? (readBigEndian(bytes) ?? `base64:${bytes.toString('base64')}`)
      : correlationText(bytes);
  }
  let value: unknown = null;
  if (m.value) {
    const raw = m.value.toString('utf8');
    try {
      // Deeper JSON is shown as text: printing it back as JSON would exhaust the stack.
      if (jsonDepth(raw) > MAX_JSON_DEPTH) throw new Error('too deep');
      value = JSON.parse(raw);
    } catch {
      value = printable(m.value) ? raw : `base64:${m.value.toString('base64')}`;
    }
  }
  return { ...decodeDeadLetter(m), headers, value };
}

export interface DeadLetterFilter {
  codes?: readonly string[] | undefined;
  since?: Date | undefined;
  until?: Date | undefined;
  correlationId?: string | undefined;
}

export function matchesFilter(letter: DeadLetter, filter: DeadLetterFilter): boolean {
  if (filter.codes?.length && !filter.codes.includes(letter.code ?? '')) return false;
  const time = Date.parse(letter.time);
  // A letter stamped with no time is in no time window.
  if ((filter.since || filter.until) && Number.isNaN(time)) return false;
  if (filter.since && time < filter.since.getTime()) return false;
  if (filter.until && time >= filter.until.getTime()) return false;
  if (filter.correlationId && letter.correlationId?.toLowerCase() !== filter.correlationId.toLowerCase()) {
    return false;
  }
  return true;
}

/** Counts per error code, most frequent first. */
export function countByCode(letters: readonly DeadLetter[]): Record<string, number> {
  const counts = new Map<string, number>();
  for (const l of letters) countCode(counts, l.code);
  return sortedCounts(counts);
}

/** One more dead letter of `code` (none: "(none)"), counted as letters are read. */
export function countCode(counts: Map<string, number>, code: string | null): void {
  const key = code ?? '(none)';
  counts.set(key, (counts.get(key) ?? 0) + 1);
}

/** Counts per code, the most frequent first. */
export function sortedCounts(counts: ReadonlyMap<string, number>): Record<string, number> {
  return Object.fromEntries([...counts].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])));
}

// Dropped on a redrive: the dead-letter headers (the worker writes fresh ones if it fails again), the
// caller's reply path and deadline (that caller is long gone: results go to the result topic).
const DROPPED = new Set<string>([
  HEADERS.replyTopic,
  HEADERS.replyPartition,
  HEADERS.deadline,
  HEADERS.deliveryAttempt,
  HEADERS.redriveOf,
  HEADERS.redriveCount,
]);

export type Redrive = { record: OutboundRecord } | { skip: string };

/**
 * A dead letter that left out the original key or a header for its size cannot be redriven as the
 * original (its identity and outcome could change). Headers left out for a null value or an empty name
 * (by workers before these were carried) are never read, and a name that is not UTF-8 is carried as
 * Java reads it and is no header the worker reads: those do not stop a redrive.
 */
function keptFromOriginal(m: InboundMessage): string | undefined {
  const keyBytes = text(m.headers[HEADERS.dltKeyOmittedBytes]);
  if (keyBytes !== null) return `its key (${keyBytes} bytes) was not kept`;
  let omitted: unknown;
  try {
    omitted = JSON.parse(text(m.headers[HEADERS.dltHeadersOmitted]) ?? '[]');
  } catch {
    return `its ${HEADERS.dltHeadersOmitted} header is not JSON`;
  }
  const large = Array.isArray(omitted)
    ? omitted.filter(
        (o: { reason?: unknown } | null) =>
          o?.reason !== 'null value' && o?.reason !== 'empty name' && o?.reason !== 'name not UTF-8',
      )
    : [];
  if (large.length === 0) return undefined;
  const shown = large
    .map((o: { name?: unknown } | null) =>
      typeof o?.name === 'string' ? JSON.stringify(o.name.slice(0, 128)) : '…',
    )
    .join(', ');
  return `its headers ${shown.slice(0, 300)} were not kept`;
}

/** The original request again, bound for its original topic, or why it cannot be redriven. */
export function redriveRecord(m: InboundMessage, names: TopicNames): Redrive {
  const letter = decodeDeadLetter(m);
  const { topic, partition, offset } = letter.original;
  if (!topic) return { skip: 'it has no kafka_dlt-original-topic header' };
  if (names.lookup(topic)?.role !== 'request') {
    return { skip: `its original topic "${topic}" is not a request topic here (is TOPIC_PREFIX right?)` };
  }
  if (m.value === null) {
    return {
      skip:
        `its value was not kept (too large); the original is in ${topic} partition ${partition ?? '?'} ` +
        `offset ${offset ?? '?'}`,
    };
  }
  const leftOut = keptFromOriginal(m);
  if (leftOut) return { skip: leftOut };
  // The original's headers as the dead letter carries them: in order, headers without a value included.
  const headers: HeaderEntry[] = originalHeaders(m).filter(
    ([name]) => !DROPPED.has(name) && !name.startsWith('kafka_dlt-'),
  );
  const first =
    readCoordinates(headerBytes(m.headers[HEADERS.redriveOf])) ??
    (partition !== null && offset !== null ? `${topic}/${partition}/${offset}` : undefined);
  if (first) headers.push([HEADERS.redriveOf, first]);
  headers.push([HEADERS.redriveCount, String(letter.redriveCount + 1)]);
  return { record: { topic, key: m.key, value: m.value, headers } };
}
