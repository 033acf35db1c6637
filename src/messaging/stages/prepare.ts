// Stage "prepare": one inbound message to what the later stages need: the reply target from the
// headers, the decoded request (or the error that refuses it), the message identity, and how it may be
// scheduled (reads in any order, writes in order per key, usage events and one pattern's recomputations
// batched).
import type { ModelError } from '../../contracts/errors.ts';
import type { MessageSource } from '../../contracts/results.ts';
import {
  HEADERS,
  headerBytes,
  readCorrelationHeader,
  readDeadline,
  readReplyPartition,
  readReplyTopic,
} from '../../contracts/headers.ts';
import { decodeRequest, HEAP_BYTES_PER_JSON_ELEMENT } from '../../contracts/decode.ts';
import type { PatternRequest } from '../../contracts/requests.ts';
import type { RequestTopic, TopicNames } from '../../contracts/topics.ts';
import { batchClassOf, isWriteOperation } from '../../contracts/operations.ts';
import type { ExecuteContext } from '../../nodes/effect-node.ts';
import type { Logger } from '../../telemetry/logger.ts';
import { identify, type Coordinates } from '../../contracts/identity.ts';
import { isTimeMs } from '../../contracts/time.ts';
import { patternLocks, touchedBy } from '../operations/replay-order.ts';
import { headerCount, messageBytes, type InboundMessage } from '../engine/records.ts';
import { MAX_DEAD_LETTER_HEADER_VALUES, type ReplyTarget } from './encode.ts';
import type { TopicDirectory } from '../kafka/topic-directory.ts';
import type { CommittedOffsets } from '../kafka/committed-offsets.ts';
import { DEFAULT_MAX_KEY_BYTES } from './record-check.ts';
import { ReplyPolicy } from './reply-policy.ts';

/** How the scheduler may order a message relative to the others of its partition. */
export type Ordering = 'free' | 'key';

export interface Prepared {
  message: InboundMessage;
  logical: RequestTopic;
  request: PatternRequest | undefined;
  error: ModelError | undefined;
  /** The body's correlation_id even when the request is refused, so the caller can match the error. */
  correlationId: string | null;
  reply: ReplyTarget;
  correlationHeader: Buffer | undefined;
  context: ExecuteContext;
  /** Reads carry no order; writes (and refused messages of write topics) keep order per key. */
  ordering: Ordering;
  /** The ordering key: the message key's bytes, or '' for messages without a key. */
  key: string;
  /** What a write touches besides its message key (replay-order.ts), so that an
   * unkeyed insert and a keyed update of the same pattern in one partition keep their order. */
  touches?: readonly string[] | undefined;
  /** A valid request's batch class (operations.ts batchClassOf): messages with the same one may be applied
   * together in one transaction. */
  batchWith?: string | undefined;
  /** Not selected by this run (replay phases): passed over without effect, result or dead letter. */
  skip: boolean;
  /** Preparing it threw (a bug): each try fails with this, until the message is given up on. */
  prepareFailure?: unknown;
  /** The caller's deadline (epoch ms): a read not started by then, or still running then, is answered
   * DEADLINE_EXCEEDED. */
  deadline?: number | undefined;
  /** Its key and value, and the request parsed from them while it is kept (an estimate, in bytes). */
  memoryBytes: number;
  /** The original whose identity it takes (pattern-redrive-of), once checkRedriveOriginal allows it. */
  redriveOf?: Coordinates | undefined;
}

export interface PrepareOptions {
  names: TopicNames;
  maxMessageBytes: number;
  /** A longer key is refused (WORKER_MAX_KEY_BYTES); default DEFAULT_MAX_KEY_BYTES. */
  maxKeyBytes?: number | undefined;
  /** Where kafka_replyTopic may point (WORKER_REPLY_TOPICS); default: ReplyPolicy's. */
  replyPolicy?: ReplyPolicy | undefined;
  /** Replay phases: which requests this run applies (undecodable ones have no request). */
  select?: ((request: PatternRequest | undefined) => boolean) | undefined;
}

function orderingOf(logical: RequestTopic, request: PatternRequest | undefined): Ordering {
  if (logical === 'pattern.search.request') return 'free';
  if (request && !isWriteOperation(request.operation)) return 'free';
  return 'key';
}

function keyError(key: Buffer | null, max: number): ModelError | undefined {
  if (key === null || key.length <= max) return undefined;
  return {
    code: 'VALIDATION_ERROR',
    message:
      `the message key is ${key.length} bytes; at most ${max} are accepted (WORKER_MAX_KEY_BYTES). ` +
      'Key a request by its pattern id (36 bytes), or send it without a key',
    details: { field: 'key', key_bytes: key.length, max_key_bytes: max },
  };
}

/** Headers a request may have: as many as its dead letter carries (Spring Kafka, NestJS and tracing send
 * about ten). */
export const MAX_REQUEST_HEADERS = MAX_DEAD_LETTER_HEADER_VALUES;

function headerCountError(message: InboundMessage): ModelError | undefined {
  const count = headerCount(message);
  if (count <= MAX_REQUEST_HEADERS) return undefined;
  return {
    code: 'VALIDATION_ERROR',
    message:
      `the message has ${count} headers; at most ${MAX_REQUEST_HEADERS} are accepted. Send the request ` +
      'with the headers of the wire contract (correlation id, reply topic and partition, trace context)',
    details: { field: 'headers', headers: count, max_headers: MAX_REQUEST_HEADERS },
  };
}

/** Event times come from the record's timestamp, which a producer chooses on a CreateTime topic. */
function timestampError(timestamp: string): ModelError | undefined {
  if (isTimeMs(Number(timestamp))) return undefined;
  return {
    code: 'VALIDATION_ERROR',
    message:
      `the record's timestamp is ${timestamp}, not a time from 1970 to 9999 (milliseconds since ` +
      '1970-01-01T00:00:00Z); produce it with the current time, or set the topic to ' +
      'message.timestamp.type=LogAppendTime so that the broker stamps it',
    details: { field: 'timestamp', timestamp },
  };
}

/** Never throws, whatever the key, value, headers and timestamp (every header reader takes any shape). */
export function prepareMessage(message: InboundMessage, options: PrepareOptions): Prepared {
  const { names } = options;
  const known = names.lookup(message.topic);
  const logical = known?.logical ?? 'pattern.insert';
  const eventTime = new Date(Number(message.timestamp));
  const maxKeyBytes = options.maxKeyBytes ?? DEFAULT_MAX_KEY_BYTES;
  const headers = message.headers;
  // Refused before anything else: its records are published without it (outcomes.publishedKey).
  let error: ModelError | undefined = message.unreadable
    ? {
        code: message.unreadable.tooLarge ? 'PAYLOAD_TOO_LARGE' : 'VALIDATION_ERROR',
        message: message.unreadable.message,
        details: message.unreadable.details,
      }
    : (keyError(message.key, maxKeyBytes) ?? headerCountError(message) ?? timestampError(message.timestamp));
  const replyTopic = readReplyTopic(headers[HEADERS.replyTopic]);
  const replyPartition = readReplyPartition(headers[HEADERS.replyPartition]);
  const correlation = readCorrelationHeader(headers[HEADERS.correlationId]);
  const reply: ReplyTarget = { topic: names.result(logical) };
  const policy = options.replyPolicy ?? new ReplyPolicy(names);
  const refusal = replyTopic.ok && replyTopic.value ? policy.refusal(replyTopic.value, logical) : undefined;
  if (!replyTopic.ok) error ??= { code: 'VALIDATION_ERROR', message: replyTopic.reason };
  else if (refusal) error ??= { code: 'VALIDATION_ERROR', message: refusal };
  else if (!replyPartition.ok) error ??= { code: 'VALIDATION_ERROR', message: replyPartition.reason };
  else if (replyTopic.value) {
    reply.topic = replyTopic.value;
    reply.partition = replyPartition.value;
  }
  if (!correlation.ok) error ??= { code: 'VALIDATION_ERROR', message: correlation.reason };
  const correlationHeader = correlation.ok
    ? correlation.value
    : headerBytes(headers[HEADERS.correlationId])?.subarray(0, 64);

  let request: PatternRequest | undefined;
  const decoded = decodeRequest(logical, message.value, { maxBytes: options.maxMessageBytes });
  const correlationId = decoded.ok
    ? (decoded.request.correlation_id ?? null)
    : (decoded.correlationId ?? null);
  // Writes ignore the deadline (they always run), so only a read is refused for a malformed one.
  const deadline = readDeadline(headers[HEADERS.deadline]);
  const isRead = decoded.ok && orderingOf(logical, decoded.request) === 'free';
  if (!deadline.ok && isRead) error ??= { code: 'VALIDATION_ERROR', message: deadline.reason };
  if (!decoded.ok) error ??= decoded.error;
  else if (!error) request = decoded.request;
  const source = sourceOf(message);
  const { identity, redriveOf } = identify({
    bodyCorrelationId: correlationId,
    headerCorrelationId: correlationHeader,
    ...source,
    redriveOf: headerBytes(headers[HEADERS.redriveOf]),
  });
  const oversizeKey = message.key !== null && message.key.length > maxKeyBytes;
  // An oversize key orders nothing (the message is refused) and is never copied around.
  const key = message.key && !oversizeKey ? message.key.toString('latin1') : '';
  const touched = request ? patternLocks(touchedBy(request, identity)) : [];
  return {
    message,
    logical,
    request,
    error,
    correlationId,
    reply,
    correlationHeader,
    context: {
      identity,
      eventTime,
      source,
      validated: true,
      ...(decoded.ok ? { fingerprint: decoded.fingerprint } : {}),
      // A read still running at its caller's deadline is cancelled in the database.
      ...(deadline.ok && isRead && deadline.value !== undefined ? { deadline: deadline.value } : {}),
    },
    ordering: orderingOf(logical, decoded.ok ? decoded.request : undefined),
    key,
    touches: touched.length > 0 ? touched : undefined,
    batchWith: request ? batchClassOf(request) : undefined,
    skip: options.select ? !options.select(request) : false,
    deadline: deadline.ok && isRead ? deadline.value : undefined,
    redriveOf,
    memoryBytes:
      messageBytes(message) +
      (request && decoded.ok ? (decoded.elements ?? 0) * HEAP_BYTES_PER_JSON_ELEMENT : 0),
  };
}

/** Where a result says its request came from: its coordinates and its Kafka timestamp. */
function sourceOf(message: InboundMessage): MessageSource {
  const { topic, partition, offset, timestamp } = message;
  return { topic, partition, offset, timestamp };
}

/** What a message whose preparation threw becomes: each try fails with `err`; nothing of it is read. */
export function unpreparable(message: InboundMessage, options: PrepareOptions, err: unknown): Prepared {
  const logical = options.names.lookup(message.topic)?.logical ?? 'pattern.insert';
  const source = sourceOf(message);
  return {
    message,
    logical,
    request: undefined,
    error: undefined,
    correlationId: null,
    reply: { topic: options.names.result(logical) },
    correlationHeader: undefined,
    context: {
      identity: `off:${source.topic}/${source.partition}/${source.offset}`,
      eventTime: new Date(Number(message.timestamp)),
      source,
      validated: true,
    },
    ordering: 'key',
    key: '',
    skip: false,
    memoryBytes: messageBytes(message),
    prepareFailure: err,
  };
}

/** A read whose caller gave up already: answered without being run. Writes always run. */
export function pastDeadline(p: Prepared, now: number): boolean {
  return (
    p.deadline !== undefined &&
    now > p.deadline &&
    p.request !== undefined &&
    !p.error &&
    !isWriteOperation(p.request.operation)
  );
}

/**
 * When the request was written, at the latest: its Kafka timestamp (the broker's append time on the
 * request topics), but never after it was received (a producer's CreateTime can say anything). A client
 * creates its reply topic before it sends, so a listing of topics begun after this shows the topic; a
 * flood of names written at once is answered by one listing, not by one per batch received.
 */
function sentBy(message: InboundMessage): number {
  const received = message.receivedAt ?? Date.now();
  const stamped = Number(message.timestamp);
  return Number.isFinite(stamped) ? Math.min(stamped, received) : received;
}

/**
 * A reply topic must exist and have the partition asked for; else the request is refused and answered
 * on the normal result topic. Checked even for a request already refused: its error result goes to the
 * reply path, and a missing topic or partition there would fail the publish for ever.
 */
export async function checkReplyTarget(
  p: Prepared,
  names: TopicNames,
  directory: TopicDirectory,
  logger: Logger,
): Promise<Prepared> {
  const defaultTopic = names.result(p.logical);
  if (p.reply.topic === defaultTopic && p.reply.partition === undefined) return p;
  const partitions = await directory.partitions(p.reply.topic, sentBy(p.message), p.reply.partition);
  let reason: string | undefined;
  if (partitions === undefined)
    reason = `kafka_replyTopic "${p.reply.topic}" does not exist; refusing to reply there`;
  else if (p.reply.partition !== undefined && p.reply.partition >= partitions) {
    reason = `kafka_replyPartition ${p.reply.partition} does not exist on "${p.reply.topic}" (${partitions} partitions)`;
  }
  if (!reason) return p;
  // Bad input like any other, answered and dead-lettered: at debug, as validation errors are, so that a
  // flood of such requests (about 500 bytes of log each) does not flood the logs.
  logger.debug({ topic: p.message.topic, offset: p.message.offset, reason }, 'refused reply path');
  return {
    ...p,
    error: p.error ?? { code: 'VALIDATION_ERROR', message: reason },
    request: undefined,
    batchWith: undefined,
    reply: { topic: defaultTopic },
  };
}

/** How long after a redrive was written its original may still be uncommitted: about a commit interval
 * after the original was dead-lettered, if nothing below it is still running. */
export const REDRIVE_SETTLE_WAIT_MS = 2_000;

/**
 * A redrive without a correlation id takes its original's identity (pattern-redrive-of), so that it is
 * applied once however often it is redriven. Anyone can write those coordinates: naming a message not yet
 * processed would take that message's identity and have it refused as a reuse when its turn came. So the
 * original must be settled first, its offset committed by the group that reads it (it was applied or
 * dead-lettered; a redrive comes from a dead letter); else the redrive is refused and dead-lettered, and
 * redriving that dead letter again once the original is settled applies it.
 */
export async function checkRedriveOriginal(
  p: Prepared,
  offsets: CommittedOffsets,
  consumerGroupOf: (topic: string) => string,
): Promise<Prepared> {
  const original = p.redriveOf;
  if (!original || p.error || p.skip) return p;
  const group = consumerGroupOf(original.topic);
  const { passed, committed } = await offsets.committedPast(
    { group, topic: original.topic, partition: original.partition, offset: BigInt(original.offset) },
    sentBy(p.message),
    REDRIVE_SETTLE_WAIT_MS,
  );
  if (passed) return p;
  const coordinates = `${original.topic}/${original.partition}/${original.offset}`;
  const { message } = p;
  return {
    ...p,
    error: {
      code: 'VALIDATION_ERROR',
      message:
        `pattern-redrive-of names ${coordinates}, which consumer group "${group}" has not committed ` +
        `(${committed < 0n ? 'nothing committed on that partition' : `committed offset ${committed}`}): ` +
        'a redrive may take the identity only of a message already applied or dead-lettered. If this is ' +
        'a redrive of that message, redrive its dead letter again once the original is done',
      details: { field: 'pattern-redrive-of', original: coordinates, committed_offset: String(committed) },
    },
    request: undefined,
    batchWith: undefined,
    redriveOf: undefined,
    context: { ...p.context, identity: `off:${message.topic}/${message.partition}/${message.offset}` },
  };
}
