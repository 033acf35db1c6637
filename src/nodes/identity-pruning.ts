// Keeps the identity store bounded: result bodies older than the retention window are replaced by the ids
// they held, a small batch at a time with pauses between, so pruning never holds the worker's rows or
// connections for long. Identity keys and fingerprints stay, so a replay onto a populated database still
// changes nothing and a duplicate still answers "already applied". Replicas share the work (SKIP LOCKED).
import type { Logger } from '../telemetry/logger.ts';
import type { Pool } from '../db/pool.ts';

export interface PruneOptions {
  pool: Pool;
  retentionMs: number;
  batchSize?: number;
  /** Pause between batches while there is more to prune. */
  pauseMs?: number;
  /** Pause when there was nothing to prune. */
  idleMs?: number;
  logger?: Logger;
  onPruned?: (rows: number, bytes: number) => void;
}

const PRUNE_SQL = `
  WITH victims AS (
    SELECT identity, octet_length(result::text) AS bytes
      FROM processed_messages
     WHERE NOT pruned AND processed_at < now() - make_interval(secs => $1::double precision / 1000)
     ORDER BY processed_at
     LIMIT $2
       FOR UPDATE SKIP LOCKED)
  UPDATE processed_messages p
     SET result = pruned_outcome(p.result), pruned = true
    FROM victims v
   WHERE p.identity = v.identity
  RETURNING v.bytes - octet_length(p.result::text) AS freed`;

/** One batch; resolves with how many rows were pruned and how many bytes of result JSON that freed. */
export async function pruneBatch(pool: Pool, retentionMs: number, batchSize: number) {
  const { rows } = await pool.query<{ freed: number }>(PRUNE_SQL, [retentionMs, batchSize]);
  return { rows: rows.length, bytes: rows.reduce((sum, r) => sum + Number(r.freed), 0) };
}

export function startPruner(options: PruneOptions): { stop(): void } {
  const batchSize = options.batchSize ?? 500;
  // Nothing to prune: look again in a minute, sooner for a short window.
  const idleMs = options.idleMs ?? Math.min(60_000, Math.max(500, options.retentionMs / 2));
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const schedule = (ms: number) => {
    if (stopped) return;
    timer = setTimeout(run, ms);
    timer.unref();
  };
  const run = () => {
    pruneBatch(options.pool, options.retentionMs, batchSize).then(
      ({ rows, bytes }) => {
        if (rows > 0) options.onPruned?.(rows, bytes);
        schedule(rows === batchSize ? (options.pauseMs ?? 200) : idleMs);
      },
      (err: unknown) => {
        options.logger?.warn(
          { err: err instanceof Error ? err.message : String(err) },
          'pruning result bodies failed; trying later',
        );
        schedule(idleMs);
      },
    );
  };
  schedule(options.pauseMs ?? 200);
  return {
    stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
    },
  };
}
