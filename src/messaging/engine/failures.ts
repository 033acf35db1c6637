// Retriability, decided once, on the error: connection loss, failover, deadlock, serialization failure and
// an unavailable broker are transient and retried for as long as they last; anything else (a statement
// timeout, a lock not available, the database out of resources, a bug, an unexpected value) is
// permanent: it gets a bounded number of tries (retry-policy.ts) before its message is answered with
// INTERNAL and dead-lettered.
import { RetryableError } from '../../contracts/errors.ts';
import { isTransientDbError } from '../../db/errors.ts';

export type Failure =
  | { kind: 'transient'; source: 'database' | 'broker'; reason: string }
  | { kind: 'permanent'; errorClass: string; reason: string };

function errorName(err: unknown): string {
  if (err instanceof Error) return err.name || err.constructor.name || 'Error';
  return typeof err;
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** KafkaJS errors carry `retriable`; connection and request timeouts are retriable too. */
function isBrokerError(err: unknown): boolean {
  if (!(err instanceof Error) || !err.name.startsWith('KafkaJS')) return false;
  const retriable = (err as { retriable?: unknown }).retriable;
  // A non-retriable KafkaJS error about our own request (say, a record too large) is not an outage,
  // but the broker path has no such case left: records are bounded before they are sent.
  return retriable !== false || /Connection|Timeout|NumberOfRetriesExceeded/.test(err.name);
}

export function classifyFailure(err: unknown): Failure {
  if (err instanceof RetryableError) {
    return err.bounded
      ? { kind: 'permanent', errorClass: err.errorClass, reason: err.reason }
      : { kind: 'transient', source: 'database', reason: err.reason };
  }
  if (isTransientDbError(err)) return { kind: 'transient', source: 'database', reason: message(err) };
  if (isBrokerError(err))
    return { kind: 'transient', source: 'broker', reason: `${errorName(err)}: ${message(err)}` };
  return { kind: 'permanent', errorClass: errorName(err), reason: message(err) };
}

export function describeFailure(failure: Failure): string {
  return failure.kind === 'transient'
    ? `${failure.source}: ${failure.reason}`
    : `${failure.errorClass}: ${failure.reason}`;
}
