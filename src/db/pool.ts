import pg from 'pg';
import { asError } from '../contracts/errors.ts';
import type { Logger } from '../telemetry/logger.ts';
import { redactUrl } from '../telemetry/redact.ts';

export type Pool = pg.Pool;
export type PoolClient = pg.PoolClient;

// NUMERIC and BIGINT arrive as strings by default; the contract speaks JSON numbers.
const INT8_OID = 20;
const NUMERIC_OID = 1700;
type TypeParser = (value: string) => unknown;
const types = {
  getTypeParser(oid: number, format?: 'text' | 'binary'): TypeParser {
    if (oid === INT8_OID || oid === NUMERIC_OID) return (value: string) => Number(value);
    return pg.types.getTypeParser(oid, format) as TypeParser;
  },
};

export interface PoolOptions {
  connectionString: string;
  min?: number;
  max?: number;
  statementTimeoutMs?: number;
  applicationName?: string;
  connectionTimeoutMs?: number;
  /** max_parallel_workers_per_gather of every connection (unset: the server's). */
  parallelWorkers?: number;
  logger?: Logger;
}

export function createPool(options: PoolOptions): Pool {
  const pool = new pg.Pool({
    connectionString: options.connectionString,
    min: options.min ?? 5,
    max: options.max ?? 20,
    statement_timeout: options.statementTimeoutMs ?? 30_000,
    application_name: options.applicationName ?? 'pattern-worker',
    connectionTimeoutMillis: options.connectionTimeoutMs ?? 5_000,
    idleTimeoutMillis: 30_000,
    ...(options.parallelWorkers === undefined
      ? {}
      : { options: `-c max_parallel_workers_per_gather=${Math.floor(options.parallelWorkers)}` }),
    types,
  });
  // A client whose connection dies between queries emits 'error'; without a listener that would crash
  // the process. The query in flight (if any) still rejects and is classified as transient.
  pool.on('connect', (client) => {
    client.on('error', (err) => {
      options.logger?.warn({ err: redactUrl(err.message) }, 'database connection failed');
    });
  });
  // An idle client losing its connection must not crash the process; the pool replaces it.
  pool.on('error', (err) => {
    options.logger?.warn(
      { err: redactUrl(err.message) },
      'idle database connection failed; it will be replaced',
    );
  });
  return pool;
}

/** The relations every unit touches: a warm-up plans one statement over them, so that each new
 * connection has their catalog entries cached before its first unit. A fixed list, never user input. */
const HOT_RELATIONS = [
  'pattern_templates',
  'pattern_usage_events',
  'pattern_usage_daily',
  'usage_global_hourly',
  'pattern_counters',
  'pattern_relationships',
  'processed_messages',
] as const;
const WARM_UP_SQL = `SELECT 1 FROM ${HOT_RELATIONS.join(' CROSS JOIN ')} WHERE false`;

/**
 * Opens `connections` connections at once and plans a statement over the hot relations on each, then
 * returns them to the pool. A replacement worker that does this before it joins its groups takes over
 * partitions with ready connections, instead of paying for a dozen backend starts inside the first units
 * (measured in the deploy bench: a new worker's first units took 400-650 ms on a busy 2-core host).
 * Best effort: a failure (say, migrations pending) leaves the pool as it is and is reported, not thrown.
 */
export async function warmUpPool(
  pool: Pool,
  connections: number,
): Promise<{ opened: number; error?: Error }> {
  const clients: PoolClient[] = [];
  let error: Error | undefined;
  const settled = await Promise.allSettled(
    Array.from({ length: Math.max(0, connections) }, async () => {
      const client = await pool.connect();
      clients.push(client);
      await client.query(WARM_UP_SQL);
    }),
  );
  for (const s of settled) if (s.status === 'rejected') error ??= asError(s.reason);
  for (const client of clients) client.release();
  return { opened: clients.length, ...(error ? { error } : {}) };
}
