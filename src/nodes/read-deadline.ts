// A read whose caller's deadline passes while a statement of it runs is cancelled in the database and
// answered DEADLINE_EXCEEDED, not retried. A timer sends the cancel only when the deadline passes, so a read
// that finishes in time pays nothing for it (no statement_timeout set and reset around each statement).
import { EffectError } from '../contracts/errors.ts';
import { cancelStatement } from '../db/cancel.ts';
import type { PoolClient } from '../db/pool.ts';

const QUERY_CANCELED = '57014';
/** setTimeout's largest delay: a deadline further off, which any producer can write, arms nothing. */
const MAX_TIMER_MS = 2_147_483_647;

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

/**
 * Runs `read` on `client`; if `deadline` (epoch ms) passes first, the statement running then is cancelled
 * in the database and the read rejects with DEADLINE_EXCEEDED. Resolves only after a cancel sent has
 * reached the server, so the connection goes back to the pool with nothing pending against it.
 */
export async function cancelAtDeadline<T>(
  client: PoolClient,
  deadline: number | undefined,
  read: () => Promise<T>,
): Promise<T> {
  if (deadline === undefined) return read();
  checkDeadline(deadline);
  const left = deadline - Date.now();
  if (left > MAX_TIMER_MS) return read();
  let cancelling: Promise<boolean> | undefined;
  const timer = setTimeout(() => {
    cancelling = cancelStatement(client);
  }, left);
  try {
    return await read();
  } catch (err) {
    if (cancelling !== undefined && (err as { code?: unknown }).code === QUERY_CANCELED) {
      throw deadlineExceeded(deadline, Date.now(), true);
    }
    throw err;
  } finally {
    clearTimeout(timer);
    if (cancelling !== undefined) await cancelling;
  }
}
