// What to do after a failed try, decided on the failure alone (failures.ts classifies it once):
// transient failures (connection loss, failover, deadlock, serialization) back the partition off and
// retry for as long as they last; any other failure gets `maxAttempts` tries, a failed batch is
// first split into single messages, and then the message is given up on (answered INTERNAL, dead-lettered).
import { backoffDelay, type BackoffPolicy } from './backoff.ts';
import { ranPastTimeout, type Failure } from './failures.ts';

export type RetryDecision =
  | { action: 'retry'; delayMs: number; backOffPartition: boolean }
  | { action: 'split' }
  | { action: 'give-up'; failure: Failure & { kind: 'permanent' } };

export interface RetryPolicy {
  maxAttempts: number;
  /** Tries of a message whose statement ran past the statement timeout, if fewer (a read lane's: the same
   * statement over the same data takes as long again, and holds a slot each time). */
  maxTimeoutAttempts?: number | undefined;
  backoff: BackoffPolicy;
}

/**
 * `attempt`: the try that failed (1 for the first); `transientStreak`: transient failures in a row on
 * this partition, this one included.
 */
export function decideRetry(
  policy: RetryPolicy,
  failure: Failure,
  attempt: number,
  batched: boolean,
  transientStreak: number,
  random: () => number = Math.random,
): RetryDecision {
  if (failure.kind === 'transient') {
    return {
      action: 'retry',
      delayMs: backoffDelay(policy.backoff, transientStreak - 1, random),
      backOffPartition: true,
    };
  }
  const tries = ranPastTimeout(failure.errorClass)
    ? Math.min(policy.maxAttempts, policy.maxTimeoutAttempts ?? policy.maxAttempts)
    : policy.maxAttempts;
  if (attempt >= tries) return { action: 'give-up', failure };
  if (batched) return { action: 'split' };
  return {
    action: 'retry',
    delayMs: backoffDelay(policy.backoff, attempt - 1, random),
    backOffPartition: false,
  };
}
