// Encodes what the worker publishes: result records (CONTRACT "Result") and dead letters
// (CONTRACT "Dead letters", with Spring Kafka's header names and binary encodings).
import { isUtf8 } from 'node:buffer';
import type { ModelError } from '../../contracts/errors.ts';
import { HEADERS, headerValues } from '../../contracts/headers.ts';
import type { ModelResult } from '../../contracts/results.ts';
import type { HeaderEntry, InboundMessage, OutboundHeaders, OutboundRecord } from '../engine/records.ts';
import { DEFAULT_RECORD_LIMITS, recordLimitFor, type RecordLimits } from './record-check.ts';
import { headerSize, recordSize } from '../engine/record-size.ts';

export const CONTENT_TYPE_JSON = 'application/json';
const MAX_DLT_MESSAGE_CHARS = 2_000;

export interface ReplyTarget {
  topic: string;
  partition?: number | undefined;
}

export function resultRecord(options: {
  target: ReplyTarget;
  result: ModelResult;
  request: InboundMessage;
  correlationHeader: Buffer | undefined;
  traceparent?: string | undefined;
  /** The key to publish under (default the request's): null for a key above the key bound. */
  key?: Buffer | null | undefined;
}): OutboundRecord {
  const { result, request, target } = options;
  const headers: OutboundHeaders = {
    [HEADERS.contentType]: CONTENT_TYPE_JSON,
    // Tells a NestJS ClientKafka that this is the last reply, so its observable completes.
    [HEADERS.nestIsDisposed]: Buffer.alloc(1),
  };
  const correlation =
    options.correlationHeader ??
    (result.metadata.correlation_id ? Buffer.from(result.metadata.correlation_id, 'utf8') : undefined);
  if (correlation) headers[HEADERS.correlationId] = correlation;
  if (options.traceparent) headers[HEADERS.traceparent] = options.traceparent;
  return {
    topic: target.topic,
    partition: target.partition,
    key: options.key === undefined ? request.key : options.key,
    value: JSON.stringify(result),
    headers,
    answers: request,
  };
}

function int32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
}

function int64(n: string | number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigInt64BE(BigInt(n));
  return b;
}

/** Why a message was given up on after bounded retries (Spring's cause class and delivery attempt). */
export interface GaveUp {
  attempts: number;
  errorClass: string;
}

type Carried = Buffer | string;

/** A header the dead letter left out, or carried under another name, listed in
 * kafka_dlt-original-headers-omitted. */
export interface OmittedHeader {
  /** The name, cut to 128 characters (name_bytes then says how long it was). */
  name: string;
  name_bytes?: number;
  /** 'name not UTF-8': carried, under its name as Java reads it (U+FFFD for each bad byte); name_hex is
   * the name as it was, cut to 128 bytes. */
  reason: 'too large' | 'too many headers' | 'dead letter refused' | 'name not UTF-8';
  name_hex?: string;
  /** Its size (name and values); how many values of the name were left out, when more than one. */
  bytes?: number;
  values?: number;
}

const MAX_NOTE_BYTES = 8 * 1024;
/** A record may hold 100,000 headers; a dead letter carries this many at most, so that encoding one stays short. */
export const MAX_DEAD_LETTER_HEADER_VALUES = 4096;
const NOTE_RESERVE = MAX_NOTE_BYTES + 1024;

function omissionNote(omitted: readonly OmittedHeader[]): string {
  const kept: (OmittedHeader | { more: number })[] = [];
  let size = 2;
  for (const [i, entry] of omitted.entries()) {
    const n = Buffer.byteLength(JSON.stringify(entry)) + 1;
    if (size + n > MAX_NOTE_BYTES - 32) {
      kept.push({ more: omitted.length - i });
      break;
    }
    kept.push(entry);
    size += n;
  }
  return JSON.stringify(kept);
}

function named(name: string): Pick<OmittedHeader, 'name' | 'name_bytes'> {
  return name.length > 128 ? { name: name.slice(0, 128), name_bytes: Buffer.byteLength(name) } : { name };
}

/** A message's headers in the order it had them: from the wire when it came from one, else from its
 * header map. Names are UTF-8 text, read as Java reads them (a byte that is not UTF-8 becomes U+FFFD):
 * carried as bytes, a name that is not text makes the record unreadable to some clients
 * (confluent-kafka-python raises on it). */
export function originalHeaders(m: InboundMessage): HeaderEntry[] {
  if (m.wireHeaders) return m.wireHeaders.map(([name, value]) => [name?.toString('utf8') ?? '', value]);
  const entries: HeaderEntry[] = [];
  for (const name of Object.keys(m.headers)) {
    for (const value of headerValues(m.headers[name])) entries.push([name, value]);
  }
  return entries;
}

/**
 * The dead letter of a message: its original key, value and headers exactly (in their order, repeated
 * ones repeated, headers without a value without one; names as originalHeaders reads them, and a name
 * that is not UTF-8 listed with its bytes), then
 * Spring Kafka's dead-letter headers, appended last (Spring reads the last of a name). What cannot be
 * carried is left out and named: a key above the key bound, a value or headers that would make the dead
 * letter larger than a record may be (the value is kept before the headers), and headers beyond the
 * first MAX_DEAD_LETTER_HEADER_VALUES. The original stays in the request topic at the offset the headers
 * name.
 * `bare`: the fallback when the full one is refused, without the value and the original headers.
 */
export function deadLetterRecord(options: {
  topic: string;
  request: InboundMessage;
  error: ModelError;
  consumerGroup: string;
  gaveUp?: GaveUp | undefined;
  limits?: RecordLimits | undefined;
  bare?: boolean | undefined;
}): OutboundRecord {
  const { request, error, topic } = options;
  const limits = options.limits ?? DEFAULT_RECORD_LIMITS;
  const own: [string, Carried][] = [
    [HEADERS.dltOriginalTopic, request.topic],
    [HEADERS.dltOriginalPartition, int32(request.partition)],
    [HEADERS.dltOriginalOffset, int64(request.offset)],
    [HEADERS.dltOriginalTimestamp, int64(request.timestamp)],
    ['kafka_dlt-original-timestamp-type', 'CreateTime'],
    [HEADERS.dltOriginalConsumerGroup, options.consumerGroup],
    [HEADERS.dltExceptionFqcn, error.code],
    [HEADERS.dltExceptionMessage, error.message.slice(0, MAX_DLT_MESSAGE_CHARS)],
  ];
  if (options.gaveUp) {
    own.push([HEADERS.dltExceptionCauseFqcn, options.gaveUp.errorClass]);
    own.push([HEADERS.deliveryAttempt, int32(options.gaveUp.attempts)]);
  }
  let budget =
    recordLimitFor(topic, limits) -
    recordSize({ topic, key: null, value: null, headers: {} }) -
    own.reduce((n, [name, v]) => n + headerSize(name, [v]), 0) -
    NOTE_RESERVE;

  const notes: [string, string][] = [];
  let key = request.key;
  if (key !== null && key.length > limits.maxKeyBytes) {
    notes.push([HEADERS.dltKeyOmittedBytes, String(key.length)]);
    key = null;
  }
  budget -= key?.length ?? 0;
  let value = request.value;
  if (value !== null && (options.bare === true || value.length > budget)) {
    notes.push([HEADERS.dltValueOmittedBytes, String(value.length)]);
    value = null;
  }
  budget -= value?.length ?? 0;

  const headers: HeaderEntry[] = [];
  // What was left out, one note per name and reason, in the order first met.
  const omitted = new Map<string, OmittedHeader>();
  let room = MAX_DEAD_LETTER_HEADER_VALUES;
  const note = (reason: OmittedHeader['reason'], name: string, size: number, nameHex?: string) => {
    const seen = omitted.get(`${reason}\u0000${nameHex ?? name}`);
    if (seen) {
      seen.bytes = (seen.bytes ?? 0) + size;
      seen.values = (seen.values ?? 1) + 1;
    } else
      omitted.set(`${reason}\u0000${nameHex ?? name}`, {
        ...named(name),
        reason,
        bytes: size,
        ...(nameHex === undefined ? {} : { name_hex: nameHex }),
      });
  };
  for (const [i, entry] of originalHeaders(request).entries()) {
    const [name, v] = entry;
    const size = headerSize(name, [v]);
    const raw = request.wireHeaders?.[i]?.[0];
    if (raw && !isUtf8(raw)) note('name not UTF-8', name, size, raw.subarray(0, 128).toString('hex'));
    const reason = options.bare
      ? 'dead letter refused'
      : size > budget
        ? 'too large'
        : room === 0
          ? 'too many headers'
          : undefined;
    if (!reason) {
      budget -= size;
      room -= 1;
      headers.push(entry);
      continue;
    }
    note(reason, name, size);
  }
  if (omitted.size > 0) notes.push([HEADERS.dltHeadersOmitted, omissionNote([...omitted.values()])]);
  headers.push(...own, ...notes);
  return {
    topic,
    key,
    value,
    headers,
    ifRefused: options.bare ? () => [] : () => [deadLetterRecord({ ...options, bare: true })],
    answers: options.request,
  };
}

/** Reads a Spring-encoded big-endian integer header (4 or 8 bytes) back, for tests and tools. */
export function readBigEndian(value: Buffer | string | undefined): number | undefined {
  if (!Buffer.isBuffer(value)) return undefined;
  if (value.length === 4) return value.readInt32BE();
  if (value.length === 8) return Number(value.readBigInt64BE());
  return undefined;
}
