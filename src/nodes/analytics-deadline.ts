// A read whose caller's deadline passes while its statement runs is cancelled in the database: each
// statement of such a read runs under a statement_timeout of the time left (never above the lane's own
// timeout), and a statement cancelled by it is answered DEADLINE_EXCEEDED, not retried.
import type { QueryResult, QueryResultRow } from 'pg';
import { EffectError } from '../contracts/errors.ts';
import type { PoolClient } from '../db/pool.ts';

const MAX_STATEMENT_TIMEOUT_MS = 2_147_483_647;

const QUERY_CANCELED = '57014';

export function deadlineExceeded(deadline: number, now: number, running: boolean): EffectError {
  return new EffectError(
    'DEADLINE_EXCEEDED',
    running
      ? `the caller's deadline passed while the read ran; it was cancelled in the database`
      : `the caller's deadline passed ${now - deadline} ms before the read's next statement; it was not run`,
    { deadline_ms: deadline, late_by_ms: Math.max(0, now - deadline) },
  );
}

/**
 * Runs one statement before `deadline` (epoch ms) if there is one. `laneTimeoutMs` is the connection's
 * own statement_timeout (0: none); the deadline only ever shortens it.
 */
export async function queryBefore<R extends QueryResultRow>(
  client: PoolClient,
  deadline: number | undefined,
  laneTimeoutMs: number,
  text: string,
  values: unknown[],
): Promise<QueryResult<R>> {
  if (deadline === undefined) return client.query<R>(text, values);
  const now = Date.now();
  const left = deadline - now;
  if (left <= 0) throw deadlineExceeded(deadline, now, false);
  if (laneTimeoutMs > 0 && left >= laneTimeoutMs) return client.query<R>(text, values);
  // PostgreSQL takes a statement_timeout up to INT_MAX ms (24.8 days): a deadline further off, which any
  // producer can write, bounds nothing.
  if (left >= MAX_STATEMENT_TIMEOUT_MS) return client.query<R>(text, values);
  // An integer from code, not input: SET takes no parameters.
  await client.query(`SET statement_timeout = ${Math.max(1, Math.floor(left))}`);
  try {
    return await client.query<R>(text, values);
  } catch (err) {
    if ((err as { code?: unknown }).code === QUERY_CANCELED && Date.now() >= deadline - 5) {
      throw deadlineExceeded(deadline, Date.now(), true);
    }
    throw err;
  } finally {
    await client.query('RESET statement_timeout');
  }
}
