// Encodes what the worker publishes: result records (CONTRACT "Result") and dead letters
// (CONTRACT "Dead letters", with Spring Kafka's header names and binary encodings).
import type { ModelError } from '../../contracts/errors.ts';
import { HEADERS } from '../../contracts/headers.ts';
import type { ModelResult } from '../../contracts/results.ts';
import type { InboundMessage, OutboundHeaders, OutboundRecord } from '../engine/records.ts';

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
    key: request.key,
    value: JSON.stringify(result),
    headers,
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

export function deadLetterRecord(options: {
  topic: string;
  request: InboundMessage;
  error: ModelError;
  consumerGroup: string;
  gaveUp?: GaveUp | undefined;
}): OutboundRecord {
  const { request, error, topic } = options;
  const headers: OutboundHeaders = {};
  for (const [name, value] of Object.entries(request.headers)) {
    if (value !== undefined) headers[name] = value;
  }
  Object.assign(headers, {
    [HEADERS.dltOriginalTopic]: request.topic,
    [HEADERS.dltOriginalPartition]: int32(request.partition),
    [HEADERS.dltOriginalOffset]: int64(request.offset),
    [HEADERS.dltOriginalTimestamp]: int64(request.timestamp),
    'kafka_dlt-original-timestamp-type': 'CreateTime',
    [HEADERS.dltOriginalConsumerGroup]: options.consumerGroup,
    [HEADERS.dltExceptionFqcn]: error.code,
    [HEADERS.dltExceptionMessage]: error.message.slice(0, MAX_DLT_MESSAGE_CHARS),
  });
  if (options.gaveUp) {
    headers[HEADERS.dltExceptionCauseFqcn] = options.gaveUp.errorClass;
    headers[HEADERS.deliveryAttempt] = int32(options.gaveUp.attempts);
  }
  // A value refused for its size may be larger than the dead-letter topic accepts: publishing it would
  // fail for ever and block the partition. It stays in the request topic (kept forever) at the offset above.
  const resultTooLarge = error.details !== undefined && 'result_bytes' in error.details;
  if (error.code === 'PAYLOAD_TOO_LARGE' && !resultTooLarge) {
    headers['kafka_dlt-original-value-omitted-bytes'] = String(request.value?.length ?? 0);
    return { topic, key: request.key, value: null, headers };
  }
  return { topic, key: request.key, value: request.value, headers };
}

/** Reads a Spring-encoded big-endian integer header (4 or 8 bytes) back, for tests and tools. */
export function readBigEndian(value: Buffer | string | undefined): number | undefined {
  if (!Buffer.isBuffer(value)) return undefined;
  if (value.length === 4) return value.readInt32BE();
  if (value.length === 8) return Number(value.readBigInt64BE());
  return undefined;
}
