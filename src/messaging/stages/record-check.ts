// What an outbound record must be for the client to encode it and the broker to take it. Encoding throws
// on a header value that is undefined, a number or an object, and the broker refuses a record above
// message.max.bytes for good: either, retried, would stop a lane. The publisher checks every record with
// checkRecord before queueing it and publishes its ifRefused() instead.
import { MAX_TOPIC_NAME } from '../../contracts/headers.ts';
import { bytesOf, RECORD_OVERHEAD, recordSize, type CheckedRecord } from '../engine/record-size.ts';
import { headerEntries } from '../engine/records.ts';
import { DLQ_MAX_MESSAGE_BYTES } from '../kafka/topic-admin.ts';

/** Pattern ids are 36 bytes; a key is copied into every result and hashed by the partitioner. */
export const DEFAULT_MAX_KEY_BYTES = 256;
/** Kafka's default message.max.bytes is 1 MiB (plus 12 bytes); the margin covers the batch framing. */
export const DEFAULT_MAX_RECORD_BYTES = 1024 * 1024 - 16 * 1024;

/** Dead-letter topics are created with room for a request at the broker's limit plus the dead-letter
 * headers (topic-admin.ts); one created otherwise refuses a larger dead letter, whose ifRefused then
 * sends it without the value. */
export const DEFAULT_MAX_DEAD_LETTER_BYTES = DLQ_MAX_MESSAGE_BYTES - 16 * 1024;

export interface RecordLimits {
  /** key + value + header names and values, with the record format's overhead (recordSize). */
  maxRecordBytes: number;
  /** The same for a dead letter (a record to a `.dlq` topic). */
  maxDeadLetterBytes: number;
  maxKeyBytes: number;
}

export const DEFAULT_RECORD_LIMITS: RecordLimits = {
  maxRecordBytes: DEFAULT_MAX_RECORD_BYTES,
  maxDeadLetterBytes: DEFAULT_MAX_DEAD_LETTER_BYTES,
  maxKeyBytes: DEFAULT_MAX_KEY_BYTES,
};

/** The size a record to `topic` may have. */
export function recordLimitFor(topic: unknown, limits: RecordLimits): number {
  return typeof topic === 'string' && topic.endsWith('.dlq')
    ? limits.maxDeadLetterBytes
    : limits.maxRecordBytes;
}

/**
 * Limits from the configuration: results may be WORKER_MAX_RESULT_BYTES (raised together with the
 * broker's limits), so records get that much plus room for key and headers, and never less than 1 MiB.
 */
export function recordLimits(options: { maxKeyBytes: number; maxResultBytes: number }): RecordLimits {
  return {
    maxKeyBytes: options.maxKeyBytes,
    maxRecordBytes: Math.max(DEFAULT_MAX_RECORD_BYTES, options.maxResultBytes + 64 * 1024),
    maxDeadLetterBytes: DEFAULT_MAX_DEAD_LETTER_BYTES,
  };
}

const isBytes = (v: unknown): v is Buffer | string => typeof v === 'string' || Buffer.isBuffer(v);
const kind = (v: unknown) => (v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v);
const shown = (name: string) => JSON.stringify(name.length > 64 ? `${name.slice(0, 64)}…` : name);

function topicProblem(topic: unknown): string | undefined {
  if (typeof topic !== 'string') return `its topic is ${kind(topic)}, not a topic name`;
  if (topic.length === 0 || topic.length > MAX_TOPIC_NAME) {
    return `its topic name has ${topic.length} characters; a topic name has 1 to ${MAX_TOPIC_NAME}`;
  }
  if (!/^[A-Za-z0-9._-]+$/.test(topic) || topic === '.' || topic === '..') {
    return `its topic ${shown(topic)} is not a legal topic name (letters, digits, ".", "_", "-")`;
  }
  return undefined;
}

function headersProblem(headers: unknown): string | undefined {
  if (headers === undefined) return undefined;
  if (typeof headers !== 'object' || headers === null) {
    return `its headers are ${kind(headers)}, not a map of names to values or a list of entries`;
  }
  for (const [name, value] of headerEntries(headers)) {
    if (typeof name !== 'string') return `it has a header entry that is not a [name, value] pair`;
    if (!isBytes(value) && value !== null) {
      return `its header ${shown(name)} has a value that is ${value === undefined ? 'undefined' : kind(value)}; header values are bytes, text or null`;
    }
  }
  return undefined;
}

/**
 * Why a record cannot be sent, or undefined when it can: a legal topic, a partition that is a
 * non-negative integer, a key within the key bound, bytes or text for key and value, bytes, text or null
 * for every header value under a name, and the whole record within maxRecordBytes.
 */
export function checkRecord(
  record: CheckedRecord,
  limits: RecordLimits = DEFAULT_RECORD_LIMITS,
): string | undefined {
  const topic = topicProblem(record.topic);
  if (topic) return topic;
  const { partition, key, value } = record;
  if (partition !== undefined) {
    if (typeof partition !== 'number') return `its partition is ${kind(partition)}, not a number`;
    if (!Number.isInteger(partition) || partition < 0 || partition > 0x7fffffff) {
      return `its partition ${partition} is not a non-negative 32-bit integer`;
    }
  }
  if (key !== undefined && key !== null && !isBytes(key)) return `its key is ${kind(key)}, not bytes or text`;
  if (value !== undefined && value !== null && !isBytes(value)) {
    return `its value is ${kind(value)}, not bytes or text`;
  }
  const keyBytes = bytesOf(key);
  if (keyBytes > limits.maxKeyBytes) {
    return `its key is ${keyBytes} bytes, more than the ${limits.maxKeyBytes} a key may have`;
  }
  const headers = headersProblem(record.headers);
  if (headers) return headers;
  const size = recordSize(record);
  const max = recordLimitFor(record.topic, limits);
  if (size > max) {
    return (
      `it is ${size} bytes (key ${keyBytes}, value ${bytesOf(value)}, headers ${size - keyBytes - bytesOf(value) - RECORD_OVERHEAD}), ` +
      `more than the ${max} bytes a record may be (too large)`
    );
  }
  return undefined;
}
