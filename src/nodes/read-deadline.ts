// A read whose caller's deadline passes while a statement of it runs is cancelled in the database and
// answered DEADLINE_EXCEEDED, not retried; one that runs past its lane's read timeout is cancelled and
// fails as a statement timeout. A timer sends the cancel only then, so a read that finishes in time pays
// nothing for it (no statement_timeout set and reset around each statement, no pool of its own).
import { EffectError, RetryableError } from '../contracts/errors.ts';
import { cancelStatement, type CancelOutcome } from '../db/cancel.ts';
import { QUERY_CANCELED } from '../db/errors.ts';
import type { PoolClient } from '../db/pool.ts';

/** setTimeout's largest delay: a deadline further off, which any producer can write, arms nothing. */
const MAX_TIMER_MS = 2_147_483_647;
/** No cancel is sent sooner than this into a read: each costs the server a process of its own, and any
 * producer can send a deadline a millisecond away; a read this short is cheaper left to finish. */
const MIN_CANCEL_DELAY_MS = 50;

export function deadlineExceeded(deadline: number, now: number, running: boolean): EffectError {
  return new EffectError(
    'DEADLINE_EXCEEDED',
    running
      ? `the caller's deadline passed while the read ran; it was cancelled in the database`
      : `the caller's deadline passed ${now - deadline} ms before the read's next statement; it was not run`,
    { deadline_ms: deadline, late_by_ms: Math.max(0, now - deadline) },
  );
}

/** Throws DEADLINE_EXCEEDED when `deadline` (epoch ms) has passed: before a read's next statement. */
export function checkDeadline(deadline: number | undefined, now = Date.now()): void {
  if (deadline !== undefined && now >= deadline) throw deadlineExceeded(deadline, now, false);
}

export interface ReadLimits {
  /** The caller's deadline (epoch ms): a statement still running then is answered DEADLINE_EXCEEDED. */
  deadline?: number | undefined;
  /** The lane's own bound on a read (0 or unset: none but the connection's statement_timeout): a statement
   * still running then fails as a statement timeout does (57014), and is retried as one. */
  timeoutMs?: number | undefined;
}

/**
 * Runs `read` on `client`; when the caller's deadline or the read's timeout passes first, the statement
 * running then is cancelled in the database. Resolves only after a cancel sent has reached the server, so
 * the connection goes back to the pool with nothing pending against it.
 */
export async function cancelWhenLate<T>(
  client: PoolClient,
  limits: ReadLimits,
  read: () => Promise<T>,
): Promise<T> {
  const { deadline } = limits;
  const timeoutMs = limits.timeoutMs !== undefined && limits.timeoutMs > 0 ? limits.timeoutMs : Infinity;
  if (deadline === undefined && timeoutMs === Infinity) return read();
  checkDeadline(deadline);
  const untilDeadline = deadline === undefined ? Infinity : deadline - Date.now();
  const delay = Math.max(MIN_CANCEL_DELAY_MS, Math.min(untilDeadline, timeoutMs));
  if (delay > MAX_TIMER_MS) return read();
  let cancelling: Promise<CancelOutcome> | undefined;
  const timer = setTimeout(() => {
    cancelling = cancelStatement(client);
  }, delay);
  try {
    return await read();
  } catch (err) {
    const cancelled = cancelling !== undefined && (err as { code?: unknown }).code === QUERY_CANCELED;
    if (cancelled && deadline !== undefined && untilDeadline <= timeoutMs) {
      throw deadlineExceeded(deadline, Date.now(), true);
    }
    throw err;
  } finally {
    clearTimeout(timer);
    // A cancel the server did not answer may still reach the connection's next statement: it is thrown
    // away (a transient failure destroys it) rather than handed to another read or write.
    if (cancelling !== undefined && (await cancelling) === 'unanswered') {
      // eslint-disable-next-line no-unsafe-finally -- the connection must not go back to the pool
      throw new RetryableError('the database did not answer a cancel request; the connection is discarded');
    }
  }
}
