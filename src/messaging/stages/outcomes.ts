// Stage "outcomes": results to the records that go out. A result larger than a record may be becomes
// PAYLOAD_TOO_LARGE; a failed, non-duplicate result is dead-lettered (CONTRACT "Dead letters"); a
// message given up on after bounded retries gets an INTERNAL result and a dead letter that says so.
import type { ModelError } from '../../contracts/errors.ts';
import { HEADERS, headerBytes } from '../../contracts/headers.ts';
import type { ModelResult } from '../../contracts/results.ts';
import type { TopicNames } from '../../contracts/topics.ts';
import { errorResult } from './dispatch.ts';
import type { OutboundRecord } from '../engine/records.ts';
import type { MessageOutcome } from '../engine/lifecycle.ts';
import type { UnitOutput } from '../engine/ports.ts';
import type { Prepared } from './prepare.ts';
import { deadLetterRecord, resultRecord, type GaveUp } from './encode.ts';
import { DEFAULT_RECORD_LIMITS, type RecordLimits } from './record-check.ts';
import { recordSize } from '../engine/record-size.ts';
import { ranPastTimeout } from '../engine/failures.ts';

export interface OutcomeOptions {
  names: TopicNames;
  consumerGroupOf: (topic: string) => string;
  /** A result whose record would be larger is replaced by a PAYLOAD_TOO_LARGE error (and dead-lettered). */
  maxResultBytes: number;
  /** Replay: apply effects without publishing results (dead letters are still written). */
  publishResults: boolean;
  /** Key bound and record size (default DEFAULT_RECORD_LIMITS): a longer key is not published. */
  limits?: RecordLimits | undefined;
}

/** W3C trace context: version, trace id, parent id, flags (a later version may append fields). */
const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}(-[0-9a-f-]{0,200})?$/;
const ZEROS = /^0+$/;

/** A traceparent W3C calls valid: not version ff, ids not all zeros, version 00 with nothing after. */
function isTraceparent(text: string): boolean {
  const m = TRACEPARENT.exec(text);
  if (!m) return false;
  const [, version, traceId, parentId, more] = m;
  return (
    version !== 'ff' &&
    !ZEROS.test(traceId ?? '') &&
    !ZEROS.test(parentId ?? '') &&
    !(version === '00' && more)
  );
}

function tooLarge(result: ModelResult, size: number, max: number): ModelResult {
  const rows = Array.isArray(result.data) ? ` (${result.data.length} rows)` : '';
  return {
    success: false,
    data: null,
    error: {
      code: 'PAYLOAD_TOO_LARGE',
      message:
        `the result is ${size} bytes${rows}, more than the ${max} bytes a result may have; ` +
        'ask for fewer rows (limit, offset)',
      details: { result_bytes: size, max_result_bytes: max },
    },
    metadata: result.metadata,
  };
}

/** The key results and dead letters are published under: none for a key above the bound (see prepare). */
export function publishedKey(message: { key: Buffer | null }, limits: RecordLimits): Buffer | null {
  return message.key !== null && message.key.length > limits.maxKeyBytes ? null : message.key;
}

/**
 * What to publish when a result record is refused (by the publisher's check or for good by the broker):
 * an error result on the request topic's default result topic, never the reply path, and a dead letter
 * of the request unless it has one already. The error says whether the request itself succeeded.
 */
function refusedResult(
  p: Prepared,
  result: ModelResult,
  refusedTopic: string,
  alreadyDeadLettered: boolean,
  options: OutcomeOptions,
  gaveUp: GaveUp | undefined,
): (reason: string) => OutboundRecord[] {
  return (reason) => {
    const limits = options.limits ?? DEFAULT_RECORD_LIMITS;
    const defaultTopic = options.names.result(p.logical);
    const toReply = refusedTopic !== defaultTopic;
    const code = /too.large|larger than|bytes/i.test(reason)
      ? 'PAYLOAD_TOO_LARGE'
      : toReply
        ? 'VALIDATION_ERROR'
        : 'INTERNAL';
    const outcome = result.success
      ? 'the request itself succeeded'
      : `the request itself failed with ${result.error?.code ?? 'an error'}`;
    const error: ModelError = {
      code,
      message:
        `the result could not be published to "${refusedTopic}"${toReply ? ' (kafka_replyTopic)' : ''}: ` +
        `${reason.slice(0, 500)}; ${outcome}`,
      details: {
        refused_topic: refusedTopic,
        request_succeeded: result.success,
        ...(result.error ? { request_error_code: result.error.code } : {}),
      },
    };
    const answer = resultRecord({
      target: { topic: defaultTopic },
      result: { success: false, data: null, error, metadata: result.metadata },
      request: p.message,
      correlationHeader: p.correlationHeader,
      key: publishedKey(p.message, limits),
    });
    answer.ifRefused = () => [];
    if (alreadyDeadLettered) return [answer];
    const deadLetter = deadLetterRecord({
      topic: options.names.dlq(p.logical),
      request: p.message,
      error,
      consumerGroup: options.consumerGroupOf(p.message.topic),
      gaveUp,
      limits,
    });
    return [answer, deadLetter];
  };
}

/**
 * The records of a unit, results first and dead letters after, in message order. `traceparent` gives
 * the i-th result's trace context (the producer span's, when tracing runs). Every record carries
 * ifRefused: what to publish instead when it cannot be sent.
 */
export function unitOutput(
  prepared: readonly Prepared[],
  results: readonly ModelResult[],
  options: OutcomeOptions,
  traceparent: (index: number, topic: string, partition: number | undefined) => string | undefined,
  gaveUp?: GaveUp,
): UnitOutput {
  const limits = options.limits ?? DEFAULT_RECORD_LIMITS;
  const records: OutboundRecord[] = [];
  const deadLetters: OutboundRecord[] = [];
  const outcomes: MessageOutcome[] = [];
  prepared.forEach((p, i) => {
    let result = results[i] as ModelResult;
    let record: OutboundRecord | undefined;
    if (options.publishResults) {
      // Without tracing, the producer's traceparent is echoed only if it is one (W3C: 55 characters of
      // hex and dashes): any other bytes would reach the reply's consumers as they were written.
      const incoming = headerBytes(p.message.headers[HEADERS.traceparent])?.toString('latin1');
      const parent =
        traceparent(i, p.reply.topic, p.reply.partition) ??
        (incoming !== undefined && isTraceparent(incoming) ? incoming : undefined);
      const build = () =>
        resultRecord({
          target: p.reply,
          result,
          request: p.message,
          correlationHeader: p.correlationHeader,
          traceparent: parent,
          key: publishedKey(p.message, limits),
        });
      record = build();
      const size = Buffer.byteLength(record.value as string);
      if (size > options.maxResultBytes || recordSize(record) > limits.maxRecordBytes) {
        // Larger than the broker takes: publishing it would fail for ever. Say so instead.
        result = tooLarge(result, size, options.maxResultBytes);
        record = build();
      }
      if (p.reply.topic !== options.names.result(p.logical)) record.requestedTopic = true;
      records.push(record);
    }
    // A read its caller gave up on is not a bad message: answered, not dead-lettered.
    const deadLettered =
      !result.success && result.metadata.duplicate !== true && result.error?.code !== 'DEADLINE_EXCEEDED';
    if (record) record.ifRefused = refusedResult(p, result, record.topic, deadLettered, options, gaveUp);
    if (deadLettered && result.error) {
      deadLetters.push(
        deadLetterRecord({
          topic: options.names.dlq(p.logical),
          request: p.message,
          error: result.error,
          consumerGroup: options.consumerGroupOf(p.message.topic),
          gaveUp,
          limits,
        }),
      );
    }
    outcomes.push({
      message: p.message,
      logical: p.logical,
      operation: result.metadata.operation,
      result,
      deadLettered,
    });
  });
  return { records: [...records, ...deadLetters], outcomes };
}

/** INTERNAL results for messages whose every try failed with an error that is not transient. */
export function gaveUpResults(prepared: readonly Prepared[], gaveUp: GaveUp): ModelResult[] {
  const error: ModelError = {
    code: 'INTERNAL',
    message: ranPastTimeout(gaveUp.errorClass)
      ? `gave up after ${gaveUp.attempts} attempts; the last ran past the database's statement timeout ` +
        'and was cancelled: ask for less (a shorter period, a narrower query or filters), or raise ' +
        'DB_STATEMENT_TIMEOUT_MS (DB_READS_STATEMENT_TIMEOUT_MS for searches and get_*, ' +
        'DB_ANALYTICS_STATEMENT_TIMEOUT_MS for analytics)'
      : `internal error while processing the message; gave up after ${gaveUp.attempts} attempts`,
    details: { attempts: gaveUp.attempts, error_class: gaveUp.errorClass },
  };
  return prepared.map((p) => errorResult(p, error));
}
