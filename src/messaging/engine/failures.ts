// Retriability, decided once, on the error: connection loss, failover, deadlock and serialization failure
// are transient and retried for as long as they last; anything else (a statement timeout, a lock not
// available, the database out of resources, a bug, an unexpected value) is permanent: it gets a bounded
// number of tries (retry-policy.ts) before its message is answered with INTERNAL and dead-lettered. A
// unit's work is its database transaction; the broker's failures are the publisher's and the consumer's,
// which retry them on their own (engine/publisher.ts, kafka/lane-consumer.ts).
import { RetryableError } from '../../contracts/errors.ts';
import { isTransientDbError, STATEMENT_TIMEOUT } from '../../db/errors.ts';

export type Failure =
  | { kind: 'transient'; source: 'database'; reason: string }
  | { kind: 'permanent'; errorClass: string; reason: string };

function errorName(err: unknown): string {
  if (err instanceof Error) return err.name || err.constructor.name || 'Error';
  return typeof err;
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export function classifyFailure(err: unknown): Failure {
  if (err instanceof RetryableError) {
    return err.bounded
      ? { kind: 'permanent', errorClass: err.errorClass, reason: err.reason }
      : { kind: 'transient', source: 'database', reason: err.reason };
  }
  if (isTransientDbError(err)) return { kind: 'transient', source: 'database', reason: message(err) };
  return { kind: 'permanent', errorClass: errorName(err), reason: message(err) };
}

/** A statement cancelled by its statement timeout (a read lane gives it fewer tries). */
export function ranPastTimeout(errorClass: string): boolean {
  return errorClass === STATEMENT_TIMEOUT;
}

export function describeFailure(failure: Failure): string {
  return failure.kind === 'transient'
    ? `${failure.source}: ${failure.reason}`
    : `${failure.errorClass}: ${failure.reason}`;
}
