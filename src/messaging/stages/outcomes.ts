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
import type { Prepared } from './prepare.ts';
import { deadLetterRecord, resultRecord, type GaveUp } from './encode.ts';

export interface OutcomeOptions {
  names: TopicNames;
  consumerGroup: string;
  /** A result whose record would be larger is replaced by a PAYLOAD_TOO_LARGE error (and dead-lettered). */
  maxResultBytes: number;
  /** Replay: apply effects without publishing results (dead letters are still written). */
  publishResults: boolean;
}

export interface UnitOutput {
  records: OutboundRecord[];
  outcomes: MessageOutcome[];
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

/**
 * The records of a unit, results first and dead letters after, in message order. `traceparent` gives
 * the i-th result's trace context (the producer span's, when tracing runs).
 */
export function unitOutput(
  prepared: readonly Prepared[],
  results: readonly ModelResult[],
  options: OutcomeOptions,
  traceparent: (index: number, topic: string, partition: number | undefined) => string | undefined,
  gaveUp?: GaveUp,
): UnitOutput {
  const records: OutboundRecord[] = [];
  const deadLetters: OutboundRecord[] = [];
  const outcomes: MessageOutcome[] = [];
  prepared.forEach((p, i) => {
    let result = results[i] as ModelResult;
    if (options.publishResults) {
      const parent =
        traceparent(i, p.reply.topic, p.reply.partition) ??
        headerBytes(p.message.headers[HEADERS.traceparent])?.toString('latin1');
      const build = () =>
        resultRecord({
          target: p.reply,
          result,
          request: p.message,
          correlationHeader: p.correlationHeader,
          traceparent: parent,
        });
      let record = build();
      const size = Buffer.byteLength(record.value as string);
      if (size > options.maxResultBytes) {
        // Larger than the broker takes: publishing it would fail for ever. Say so instead.
        result = tooLarge(result, size, options.maxResultBytes);
        record = build();
      }
      records.push(record);
    }
    // A read its caller gave up on is not a bad message: answered, not dead-lettered.
    const deadLettered =
      !result.success && result.metadata.duplicate !== true && result.error?.code !== 'DEADLINE_EXCEEDED';
    if (deadLettered && result.error) {
      deadLetters.push(
        deadLetterRecord({
          topic: options.names.dlq(p.logical),
          request: p.message,
          error: result.error,
          consumerGroup: options.consumerGroup,
          gaveUp,
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
    message: `internal error while processing the message; gave up after ${gaveUp.attempts} attempts`,
    details: { attempts: gaveUp.attempts, error_class: gaveUp.errorClass },
  };
  return prepared.map((p) => errorResult(p, error));
}
