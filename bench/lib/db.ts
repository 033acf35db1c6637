// Throwaway benchmark databases and the bulk loader (the "database floor": batched multi-row inserts
// straight from Node into the real schema, with its statistics trigger active).
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { migrate } from '../../src/db/migrate.ts';
import { createPool, type Pool } from '../../src/db/pool.ts';
import { pruneBatch } from '../../src/nodes/identity-pruning.ts';
import type { PatternRow, UsageEvent } from './dataset.ts';

export const ADMIN_URL = process.env.BENCH_DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/postgres';

export interface BenchDatabase {
  name: string;
  url: string;
  pool: Pool;
  drop(): Promise<void>;
}

const live = new Set<BenchDatabase>();

async function admin(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: ADMIN_URL });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

export async function createBenchDatabase(label: string, poolMax = 4): Promise<BenchDatabase> {
  const name = `pw_bench_${label}_${randomBytes(4).toString('hex')}`;
  await admin(`CREATE DATABASE ${name}`);
  const u = new URL(ADMIN_URL);
  u.pathname = `/${name}`;
  const url = u.toString();
  const pool = createPool({ connectionString: url, min: 0, max: poolMax, statementTimeoutMs: 600_000 });
  await migrate(pool);
  const db: BenchDatabase = {
    name,
    url,
    pool,
    async drop() {
      live.delete(db);
      await pool.end().catch(() => undefined);
      await admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    },
  };
  live.add(db);
  return db;
}

/** Drops every database this process created and has not dropped yet (on errors and Ctrl-C). */
export async function dropAll(): Promise<void> {
  await Promise.all([...live].map((db) => db.drop().catch(() => undefined)));
}

const PATTERN_SQL = `
  INSERT INTO pattern_templates (id, pattern_name, pattern_type, language, category, template_code, description,
                                 confidence_score, tags, context, discovered_at, updated_at)
  SELECT x.id, x.pattern_name, x.pattern_type, x.language, x.category, x.template_code, x.description,
         x.confidence_score, x.tags, x.context, x.discovered_at, x.discovered_at
    FROM jsonb_to_recordset($1::jsonb) AS x(id uuid, pattern_name text, pattern_type text, language text,
         category text, template_code text, description text, confidence_score numeric, tags text[],
         context jsonb, discovered_at timestamptz)`;

// Column arrays rather than JSON: the cheapest multi-row insert pg offers short of COPY.
const EVENTS_SQL = `
  INSERT INTO pattern_usage_events (id, pattern_id, file_path, project_id, success, execution_time_ms, error_message,
                                    quality_before, quality_after, used_at)
  SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::boolean[], $6::numeric[], $7::text[],
                       $8::numeric[], $9::numeric[], $10::timestamptz[])`;

const IDENTITY_SQL = `
  INSERT INTO processed_messages (identity, topic, operation, result)
  SELECT i, 'pattern.usage', 'record_usage', r FROM unnest($1::text[], $2::json[]) AS t(i, r)`;

export type Progress = (done: number) => void;

async function inParallel<T>(
  batches: T[],
  concurrency: number,
  fn: (batch: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < batches.length) await fn(batches[next++] as T);
    }),
  );
}

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

export async function loadPatterns(
  pool: Pool,
  rows: readonly PatternRow[],
  progress?: Progress,
): Promise<void> {
  let done = 0;
  await inParallel(chunks(rows, 2000), 2, async (batch) => {
    await pool.query(PATTERN_SQL, [JSON.stringify(batch)]);
    progress?.((done += batch.length));
  });
}

/** EVENTS_SQL's parameters: one array per column. */
function eventColumns(ids: readonly string[], events: readonly UsageEvent[]): unknown[] {
  const u = events.map((e) => e.usage_data);
  return [
    ids,
    events.map((e) => e.pattern_id),
    u.map((d) => d.file_path),
    u.map((d) => d.project_id),
    u.map((d) => d.success),
    u.map((d) => d.execution_time_ms),
    u.map((d) => d.error_message ?? null),
    u.map((d) => d.quality_before),
    u.map((d) => d.quality_after),
    u.map((d) => d.used_at),
  ];
}

export interface EventLoadOptions {
  batchSize?: number;
  concurrency?: number;
  /** Also write one processed_messages identity row per event, as the worker does. */
  identities?: { prefix: string };
  progress?: Progress;
  /** Ids for the events (default: random). */
  idOf?: (index: number) => string;
}

/** Inserts usage events in batches; the statement trigger keeps statistics and the daily rollup right. */
export async function loadEvents(
  pool: Pool,
  events: readonly UsageEvent[],
  options: EventLoadOptions = {},
): Promise<void> {
  const size = options.batchSize ?? 5000;
  const indexed = events.map((e, i) => ({ e, i }));
  let done = 0;
  await inParallel(chunks(indexed, size), options.concurrency ?? 2, async (batch) => {
    const ids = batch.map(({ i }) => options.idOf?.(i) ?? crypto.randomUUID());
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      // Lock the batch's patterns in id order before the insert. Without this, the foreign-key check's
      // FOR KEY SHARE locks (taken in arrival order) and the trigger's FOR UPDATE deadlock between two
      // concurrent batches that share patterns.
      await client.query(
        'SELECT 1 FROM pattern_templates WHERE id = ANY($1::uuid[]) ORDER BY id FOR UPDATE',
        [[...new Set(batch.map(({ e }) => e.pattern_id))]],
      );
      if (options.identities) {
        await client.query(IDENTITY_SQL, [
          batch.map(({ i }) => `${options.identities?.prefix}${i}`),
          batch.map(({ e }, k) =>
            JSON.stringify({
              success: true,
              data: { event_id: ids[k], pattern_id: e.pattern_id },
              error: null,
            }),
          ),
        ]);
      }
      await client.query(
        EVENTS_SQL,
        eventColumns(
          ids,
          batch.map(({ e }) => e),
        ),
      );
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
    options.progress?.((done += batch.length));
  });
}

/**
 * Fresh planner statistics after a bulk load, as autovacuum would eventually provide, then a checkpoint
 * (as pgbench takes before it measures): otherwise the checkpoint the load's WAL started writes its
 * dirty pages for the next 15-20 s, through the first measurements, and puts its I/O into whichever
 * samples it meets.
 */
export async function analyze(pool: Pool): Promise<void> {
  await pool.query('VACUUM ANALYZE pattern_templates');
  await pool.query('VACUUM ANALYZE pattern_usage_events');
  await pool.query('VACUUM ANALYZE pattern_usage_daily');
  // Needs superuser or pg_checkpoint; a role without them measures with that checkpoint running.
  await pool.query('CHECKPOINT').catch(() => undefined);
}

/**
 * The fast path for a large initial load into an empty usage table: the statistics trigger is disabled
 * while the events go in, then the statistics and the daily rollup are rebuilt set-based with the same
 * arithmetic as recompute_pattern_stats(). Call checkStatistics() afterwards.
 */
export async function bulkLoadEvents(
  pool: Pool,
  source: Iterator<UsageEvent>,
  total: number,
  options: { progress?: Progress } = {},
): Promise<void> {
  const { rows } = await pool.query<{ n: number }>('SELECT count(*) AS n FROM pattern_usage_events');
  if ((rows[0]?.n ?? 0) > 0) throw new Error('bulkLoadEvents needs an empty pattern_usage_events table');
  await pool.query('ALTER TABLE pattern_usage_events DISABLE TRIGGER trg_usage_events_stats');
  try {
    // Pulled from the generator a batch at a time, so a million events never sit in memory at once.
    let taken = 0;
    const nextBatch = (): UsageEvent[] => {
      const batch: UsageEvent[] = [];
      while (taken < total && batch.length < 20_000) {
        const r = source.next();
        if (r.done) break;
        batch.push(r.value);
        taken++;
      }
      return batch;
    };
    let done = 0;
    const lane = async () => {
      for (let batch = nextBatch(); batch.length > 0; batch = nextBatch()) {
        await pool.query(
          EVENTS_SQL,
          eventColumns(
            batch.map(() => crypto.randomUUID()),
            batch,
          ),
        );
        options.progress?.((done += batch.length));
      }
    };
    await Promise.all([lane(), lane()]);
  } finally {
    await pool.query('ALTER TABLE pattern_usage_events ENABLE TRIGGER trg_usage_events_stats');
  }
  await pool.query(`
    INSERT INTO pattern_usage_daily
      (pattern_id, day, usage_count, success_count, execution_time_sum, execution_time_count,
       quality_improvement_sum, quality_improvement_count)
    SELECT pattern_id, (used_at AT TIME ZONE 'UTC')::date, count(*), count(*) FILTER (WHERE success),
           coalesce(sum(execution_time_ms), 0), count(execution_time_ms),
           coalesce(sum(quality_improvement), 0), count(quality_improvement)
      FROM pattern_usage_events GROUP BY 1, 2`);
  await pool.query(`
    UPDATE pattern_templates p SET
      usage_count = s.n,
      success_count = s.ok,
      success_rate = s.ok::numeric / s.n,
      quality_sample_count = s.qn,
      quality_improvement_sum = s.qsum,
      avg_quality_improvement = CASE WHEN s.qn = 0 THEN NULL ELSE s.qsum / s.qn END,
      execution_sample_count = s.en,
      execution_time_sum = s.esum,
      avg_execution_time_ms = CASE WHEN s.en = 0 THEN NULL ELSE s.esum / s.en END,
      last_used_at = s.last_used
    FROM (
      SELECT pattern_id, count(*) AS n, count(*) FILTER (WHERE success) AS ok,
             count(quality_improvement) AS qn, coalesce(sum(quality_improvement), 0) AS qsum,
             count(execution_time_ms) AS en, coalesce(sum(execution_time_ms), 0) AS esum,
             max(used_at) AS last_used
        FROM pattern_usage_events GROUP BY pattern_id
    ) s
    WHERE p.id = s.pattern_id`);
  // The global rollups (hourly usage, the counters) are the trigger's too: rebuilt, or global reads would
  // be measured on an empty rollup.
  await pool.query('SELECT rebuild_analytics_rollups()');
}

const STAT_COLUMNS = `usage_count, success_count, success_rate, quality_sample_count, quality_improvement_sum,
  avg_quality_improvement, execution_sample_count, execution_time_sum, avg_execution_time_ms, last_used_at`;

/**
 * Checks that the stored statistics of some patterns equal what recompute_pattern_stats() derives from
 * their events (it rewrites them, so equal before and after means the bulk load left them consistent).
 * Also checks that the totals of the daily rollup match the events. Returns the mismatches.
 */
export async function checkStatistics(pool: Pool, patternIds: readonly string[]): Promise<string[]> {
  const problems: string[] = [];
  for (const id of patternIds) {
    const before = await pool.query(`SELECT ${STAT_COLUMNS} FROM pattern_templates WHERE id = $1`, [id]);
    const after = await pool.query(`SELECT ${STAT_COLUMNS} FROM recompute_pattern_stats($1)`, [id]);
    if (JSON.stringify(before.rows[0]) !== JSON.stringify(after.rows[0])) {
      problems.push(
        `pattern ${id}: stored ${JSON.stringify(before.rows[0])} != recomputed ${JSON.stringify(after.rows[0])}`,
      );
    }
  }
  const { rows } = await pool.query<{ events: number; daily: number; stats: number }>(`
    SELECT (SELECT count(*) FROM pattern_usage_events) AS events,
           (SELECT coalesce(sum(usage_count), 0) FROM pattern_usage_daily) AS daily,
           (SELECT coalesce(sum(usage_count), 0) FROM pattern_templates) AS stats`);
  const t = rows[0];
  if (!t || t.events !== t.daily || t.events !== t.stats)
    problems.push(`totals differ: ${JSON.stringify(t)}`);
  return problems;
}

export interface IdentityStoreBytes {
  records: number;
  /** Average stored row (pg_column_size of the tuple, the result JSON included), in bytes. */
  rowBytesBefore: number;
  rowBytesAfter: number;
  /** Of that, the stored result JSON. */
  resultBytesBefore: number;
  resultBytesAfter: number;
}

/**
 * What the identity store costs per record of one operation, before and after its result bodies are
 * pruned (they are backdated past the retention window first). Destructive: call it last.
 */
export async function identityStoreBytes(pool: Pool, operation: string): Promise<IdentityStoreBytes> {
  const measure = async () => {
    const { rows } = await pool.query<{ n: number; row: number; result: number }>(
      `SELECT count(*)::int AS n, avg(pg_column_size(p.*))::float8 AS row,
              avg(pg_column_size(p.result))::float8 AS result
         FROM processed_messages p WHERE operation = $1`,
      [operation],
    );
    return rows[0] ?? { n: 0, row: 0, result: 0 };
  };
  const before = await measure();
  await pool.query(
    "UPDATE processed_messages SET processed_at = now() - interval '8 days' WHERE operation = $1",
    [operation],
  );
  while ((await pruneBatch(pool, 7 * 86_400_000, 5_000)).rows > 0);
  const after = await measure();
  return {
    records: before.n,
    rowBytesBefore: Math.round(before.row),
    rowBytesAfter: Math.round(after.row),
    resultBytesBefore: Math.round(before.result),
    resultBytesAfter: Math.round(after.result),
  };
}
