import type { Pool, PoolClient } from './pool.ts';
import { isTransientDbError } from './errors.ts';

/**
 * Runs fn inside BEGIN/COMMIT on one pooled connection. Any error rolls back and is rethrown as is.
 * A connection that failed is destroyed rather than returned to the pool.
 */
export async function withTransaction<T>(pool: Pool, fn: (client: PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    await client.query('BEGIN');
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    try {
      await client.query('ROLLBACK');
    } catch (rollbackErr) {
      broken = rollbackErr instanceof Error ? rollbackErr : new Error(String(rollbackErr));
    }
    if (!broken && isTransientDbError(err)) broken = err instanceof Error ? err : new Error(String(err));
    throw err;
  } finally {
    client.release(broken);
  }
}

/**
 * Runs fn on one pooled connection without BEGIN/COMMIT: for reads, each statement its own snapshot,
 * two round trips fewer than a transaction. A connection that failed is destroyed.
 */
export async function withClient<T>(pool: Pool, fn: (client: PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    return await fn(client);
  } catch (err) {
    if (isTransientDbError(err)) broken = err instanceof Error ? err : new Error(String(err));
    throw err;
  } finally {
    client.release(broken);
  }
}
