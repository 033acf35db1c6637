// Header names of the contract and decoders for the ones a client controls. Decoders never throw.
export const HEADERS = {
  correlationId: 'kafka_correlationId',
  replyTopic: 'kafka_replyTopic',
  replyPartition: 'kafka_replyPartition',
  traceparent: 'traceparent',
  tracestate: 'tracestate',
  contentType: 'content-type',
  nestIsDisposed: 'kafka_nest-is-disposed',
  dltOriginalTopic: 'kafka_dlt-original-topic',
  dltOriginalPartition: 'kafka_dlt-original-partition',
  dltOriginalOffset: 'kafka_dlt-original-offset',
  dltOriginalTimestamp: 'kafka_dlt-original-timestamp',
  dltOriginalConsumerGroup: 'kafka_dlt-original-consumer-group',
  dltExceptionFqcn: 'kafka_dlt-exception-fqcn',
  dltExceptionMessage: 'kafka_dlt-exception-message',
  /** What a dead letter could not carry of the original: the key's or the value's size in bytes, and a
   * JSON array naming the headers left out (too large, or sent without a value). */
  dltKeyOmittedBytes: 'kafka_dlt-original-key-omitted-bytes',
  dltValueOmittedBytes: 'kafka_dlt-original-value-omitted-bytes',
  dltHeadersOmitted: 'kafka_dlt-original-headers-omitted',
  /** Set when a message was given up on after bounded retries: the error's class, and the tries. */
  dltExceptionCauseFqcn: 'kafka_dlt-exception-cause-fqcn',
  deliveryAttempt: 'kafka_deliveryAttempt',
  /** The caller's deadline, epoch milliseconds: a read whose deadline has passed is not run, or is cancelled. */
  deadline: 'pattern-deadline-ms',
  /** Set by `patterns dlq redrive`: the first original message's topic/partition/offset (its identity when
   * it has no correlation id), and how many times it was redriven. */
  redriveOf: 'pattern-redrive-of',
  redriveCount: 'pattern-redrive-count',
} as const;

/** A correlation id or topic name larger than this is not a correlation id or topic name. */
export const MAX_HEADER_ID_BYTES = 1024;
export const MAX_TOPIC_NAME = 249;

/** One header value: bytes, text (headers the worker writes, test fakes), or null (a header sent without a value). */
export type HeaderScalar = Buffer | string | null;
export type HeaderValue = HeaderScalar | HeaderScalar[] | undefined;
/**
 * A message's headers: the one header type of the code. Inbound maps have no prototype
 * (kafka/inbound.ts), so any name (`constructor`, `__proto__`) is an ordinary key; a name sent several
 * times holds its values in order; a header without a value holds null.
 */
export type MessageHeaders = Record<string, HeaderValue>;

/** An empty header map without a prototype: `map[name] = v` stores any name, `__proto__` included. */
export function emptyHeaders<T>(): Record<string, T> {
  return Object.create(null) as Record<string, T>;
}

/** A header's values in order, nulls included; anything that is not bytes, text or null is left out. */
export function headerValues(value: unknown): HeaderScalar[] {
  const all: unknown[] = Array.isArray(value) ? value : [value];
  return all.filter((v): v is HeaderScalar => v === null || typeof v === 'string' || Buffer.isBuffer(v));
}

/**
 * The last value of a header, as bytes (duplicates come as an array). A header without a value (null),
 * or anything that is not bytes or text, reads as absent.
 */
export function headerBytes(value: unknown): Buffer | undefined {
  const last: unknown = Array.isArray(value) ? value[value.length - 1] : value;
  if (Buffer.isBuffer(last)) return last;
  if (typeof last === 'string') return Buffer.from(last, 'utf8');
  return undefined;
}

export type Decoded<T> = { ok: true; value: T | undefined } | { ok: false; reason: string };

/**
 * kafka_replyPartition: Spring sends a 4-byte big-endian int, NestJS a decimal string. Four bytes that
 * are all ASCII digits are read as the decimal string (a 4-byte int of that value would be a partition
 * above 808 million, which no topic has).
 */
export function readReplyPartition(value: HeaderValue): Decoded<number> {
  const bytes = headerBytes(value);
  if (bytes === undefined) return { ok: true, value: undefined };
  const isDecimal = bytes.length > 0 && bytes.length <= 10 && bytes.every((b) => b >= 0x30 && b <= 0x39);
  if (isDecimal) {
    const n = Number(bytes.toString('ascii'));
    if (n <= 0x7fffffff) return { ok: true, value: n };
  } else if (bytes.length === 4) {
    const n = bytes.readInt32BE();
    if (n >= 0) return { ok: true, value: n };
  }
  return {
    ok: false,
    reason: 'kafka_replyPartition must be a 4-byte big-endian integer or a decimal string',
  };
}

/** kafka_replyTopic: a legal topic name that is not internal and not a dead-letter topic. */
export function readReplyTopic(value: HeaderValue): Decoded<string> {
  const bytes = headerBytes(value);
  if (bytes === undefined) return { ok: true, value: undefined };
  if (bytes.length === 0 || bytes.length > MAX_TOPIC_NAME) {
    return { ok: false, reason: `kafka_replyTopic must be 1 to ${MAX_TOPIC_NAME} characters` };
  }
  const topic = bytes.toString('latin1');
  if (!/^[A-Za-z0-9._-]+$/.test(topic) || topic === '.' || topic === '..') {
    return { ok: false, reason: 'kafka_replyTopic is not a legal topic name' };
  }
  if (topic.startsWith('__')) {
    return { ok: false, reason: `kafka_replyTopic "${topic}" is an internal topic; refusing to reply there` };
  }
  if (topic.endsWith('.dlq')) {
    return {
      ok: false,
      reason: `kafka_replyTopic "${topic}" is a dead-letter topic; refusing to reply there`,
    };
  }
  return { ok: true, value: topic };
}

/** kafka_correlationId: opaque bytes, echoed unchanged; bounded so a garbage header cannot bloat results. */
export function readCorrelationHeader(value: HeaderValue): Decoded<Buffer> {
  const bytes = headerBytes(value);
  if (bytes === undefined || bytes.length === 0) return { ok: true, value: undefined };
  if (bytes.length > MAX_HEADER_ID_BYTES) {
    return {
      ok: false,
      reason: `kafka_correlationId is ${bytes.length} bytes; at most ${MAX_HEADER_ID_BYTES} are accepted`,
    };
  }
  return { ok: true, value: bytes };
}

/**
 * pattern-deadline-ms: absolute epoch milliseconds, as a decimal string or an 8-byte big-endian integer
 * (Spring's encoding of timestamps). Absent: no deadline.
 */
export function readDeadline(value: HeaderValue): Decoded<number> {
  const bytes = headerBytes(value);
  if (bytes === undefined || bytes.length === 0) return { ok: true, value: undefined };
  const isDecimal = bytes.length <= 16 && bytes.every((b) => b >= 0x30 && b <= 0x39);
  if (isDecimal) return { ok: true, value: Number(bytes.toString('ascii')) };
  if (bytes.length === 8) {
    const n = Number(bytes.readBigInt64BE());
    if (n >= 0) return { ok: true, value: n };
  }
  return {
    ok: false,
    reason:
      'pattern-deadline-ms must be epoch milliseconds, as a decimal string or an 8-byte big-endian integer',
  };
}
