// Stage "prepare": one inbound message to what the later stages need: the reply target from the
// headers, the decoded request (or the error that refuses it), the message identity, and how it may be
// scheduled (reads in any order, writes in order per key, usage events batchable).
import type { ModelError } from '../../contracts/errors.ts';
import {
  HEADERS,
  headerBytes,
  readCorrelationHeader,
  readDeadline,
  readReplyPartition,
  readReplyTopic,
} from '../../contracts/headers.ts';
import { decodeRequest } from '../../contracts/decode.ts';
import type { PatternRequest } from '../../contracts/requests.ts';
import type { RequestTopic, TopicNames } from '../../contracts/topics.ts';
import { isWriteOperation } from '../../contracts/operations.ts';
import type { ExecuteContext } from '../../nodes/effect-node.ts';
import type { Logger } from '../../telemetry/logger.ts';
import { messageIdentity } from '../../contracts/identity.ts';
import type { InboundMessage } from '../engine/records.ts';
import type { ReplyTarget } from './encode.ts';
import type { TopicDirectory } from '../kafka/topic-directory.ts';

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
  /** A valid record_usage: may be applied with other usage events in one transaction. */
  batchable: boolean;
  /** Not selected by this run (replay phases): passed over without effect, result or dead letter. */
  skip: boolean;
  /** Preparing it threw (a bug): each try fails with this, until the message is given up on. */
  prepareFailure?: unknown;
  /** The caller's deadline (epoch ms): a read not started by then is answered DEADLINE_EXCEEDED. */
  deadline?: number | undefined;
}

export interface PrepareOptions {
  names: TopicNames;
  maxMessageBytes: number;
  /** Replay phases: which requests this run applies (undecodable ones have no request). */
  select?: ((request: PatternRequest | undefined) => boolean) | undefined;
}

function orderingOf(logical: RequestTopic, request: PatternRequest | undefined): Ordering {
  if (logical === 'pattern.search.request') return 'free';
  if (request && !isWriteOperation(request.operation)) return 'free';
  return 'key';
}

export function prepareMessage(message: InboundMessage, options: PrepareOptions): Prepared {
  const { names } = options;
  const known = names.lookup(message.topic);
  const logical = known?.logical ?? 'pattern.insert';
  const eventTime = new Date(Number(message.timestamp));
  let error: ModelError | undefined;
  const replyTopic = readReplyTopic(message.headers[HEADERS.replyTopic]);
  const replyPartition = readReplyPartition(message.headers[HEADERS.replyPartition]);
  const correlation = readCorrelationHeader(message.headers[HEADERS.correlationId]);
  const reply: ReplyTarget = { topic: names.result(logical) };
  if (!replyTopic.ok) error = { code: 'VALIDATION_ERROR', message: replyTopic.reason };
  else if (!replyPartition.ok) error = { code: 'VALIDATION_ERROR', message: replyPartition.reason };
  else if (replyTopic.value) {
    reply.topic = replyTopic.value;
    reply.partition = replyPartition.value;
  }
  if (!correlation.ok) error ??= { code: 'VALIDATION_ERROR', message: correlation.reason };
  const deadline = readDeadline(message.headers[HEADERS.deadline]);
  if (!deadline.ok) error ??= { code: 'VALIDATION_ERROR', message: deadline.reason };
  const correlationHeader = correlation.ok
    ? correlation.value
    : headerBytes(message.headers[HEADERS.correlationId])?.subarray(0, 64);

  let request: PatternRequest | undefined;
  const decoded = decodeRequest(logical, message.value, { maxBytes: options.maxMessageBytes });
  const correlationId = decoded.ok ? (decoded.request.correlation_id ?? null) : null;
  if (!decoded.ok) error ??= decoded.error;
  else if (!error) request = decoded.request;
  const source = { topic: message.topic, partition: message.partition, offset: message.offset };
  const identity = messageIdentity({
    bodyCorrelationId: correlationId,
    headerCorrelationId: correlationHeader,
    ...source,
    redriveOf: headerBytes(message.headers[HEADERS.redriveOf]),
  });
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
    },
    ordering: orderingOf(logical, decoded.ok ? decoded.request : undefined),
    key: message.key ? message.key.toString('latin1') : '',
    batchable: request?.operation === 'record_usage',
    skip: options.select ? !options.select(request) : false,
    deadline: deadline.ok ? deadline.value : undefined,
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
  const partitions = await directory.partitions(p.reply.topic);
  let reason: string | undefined;
  if (partitions === undefined)
    reason = `kafka_replyTopic "${p.reply.topic}" does not exist; refusing to reply there`;
  else if (p.reply.partition !== undefined && p.reply.partition >= partitions) {
    reason = `kafka_replyPartition ${p.reply.partition} does not exist on "${p.reply.topic}" (${partitions} partitions)`;
  }
  if (!reason) return p;
  logger.warn({ topic: p.message.topic, offset: p.message.offset, reason }, 'refused reply path');
  return {
    ...p,
    error: p.error ?? { code: 'VALIDATION_ERROR', message: reason },
    request: undefined,
    batchable: false,
    reply: { topic: defaultTopic },
  };
}
