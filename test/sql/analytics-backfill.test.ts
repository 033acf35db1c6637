// Migration 016 on a database migrated and filled before it: the hourly rollup and the counters are
// back-filled from what is there, and then kept as usage arrives.
import { cp, mkdtemp, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { migrate } from '../../src/db/migrate.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';

const SQL_DIR = join(import.meta.dirname, '../../sql');
let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase({ migrated: false });
  const before = await mkdtemp(join(tmpdir(), 'pw-before-016-'));
  for (const file of await readdir(SQL_DIR)) {
    if (/^0(0\d|1[0-5])_.*\.sql$/.test(file)) await cp(join(SQL_DIR, file), join(before, file));
  }
  const first = await migrate(db.pool, before);
  expect(first.applied.at(-1)).toMatch(/^015_/);
  await db.pool.query(
    `INSERT INTO pattern_templates (id, pattern_name, pattern_type, language, confidence_score, is_deprecated)
     SELECT ('00000000-0000-4000-8000-' || lpad(i::text, 12, '0'))::uuid, 'P' || i, 'code', 'go',
            CASE WHEN i % 4 = 0 THEN NULL ELSE i / 40.0 END, i % 5 = 0
       FROM generate_series(1, 30) i`,
  );
  await db.pool.query(
    `INSERT INTO pattern_usage_events (pattern_id, success, execution_time_ms, quality_before, quality_after, used_at)
     SELECT ('00000000-0000-4000-8000-' || lpad((1 + i % 20)::text, 12, '0'))::uuid, i % 3 <> 0,
            CASE WHEN i % 7 = 0 THEN NULL ELSE i % 400 END, 0.5, CASE WHEN i % 2 = 0 THEN 0.75 END,
            timestamptz '2026-01-01' + i * interval '37 minutes'
       FROM generate_series(1, 2000) i`,
  );
  await db.pool.query(
    `INSERT INTO pattern_relationships (source_pattern_id, target_pattern_id, relationship_type)
     SELECT a.id, b.id, 'similar' FROM pattern_templates a JOIN pattern_templates b ON a.id < b.id LIMIT 12`,
  );
  const second = await migrate(db.pool);
  expect(second.applied).toEqual(expect.arrayContaining([expect.stringMatching(/^016_/)]));
});
afterAll(async () => db.drop());

async function expectRollupsFresh(): Promise<void> {
  const { rows } = await db.pool.query(
    `SELECT (SELECT json_agg(x ORDER BY x.hour) FROM (SELECT hour, sum(usage_count) AS n, sum(success_count) AS ok,
                   sum(execution_time_sum) AS esum, sum(quality_improvement_count) AS qn
              FROM usage_global_hourly GROUP BY hour HAVING sum(usage_count) <> 0) x) AS kept,
            (SELECT json_agg(y ORDER BY y.hour) FROM (SELECT date_trunc('hour', used_at, 'UTC') AS hour, count(*) AS n,
                   count(*) FILTER (WHERE success) AS ok, coalesce(sum(execution_time_ms), 0) AS esum,
                   count(quality_improvement) AS qn
              FROM pattern_usage_events GROUP BY 1) y) AS fresh,
            (SELECT row_to_json(c) FROM v_pattern_counters c) AS counters,
            (SELECT row_to_json(f) FROM (SELECT count(*) AS total_patterns, count(*) FILTER (WHERE is_deprecated) AS deprecated_patterns,
                    coalesce(sum(confidence_score), 0) AS confidence_sum, count(confidence_score) AS confidence_count,
                    count(*) FILTER (WHERE usage_count > 0) AS used_patterns,
                    coalesce(sum(success_rate) FILTER (WHERE usage_count > 0), 0) AS success_rate_sum,
                    (SELECT count(*) FROM pattern_relationships) AS total_relationships FROM pattern_templates) f) AS recomputed`,
  );
  const r = rows[0] as Record<string, unknown>;
  expect(r.kept).toEqual(r.fresh);
  expect(r.counters).toEqual(r.recomputed);
}

it('back-fills the hourly rollup and the counters from the rows already there', async () => {
  await expectRollupsFresh();
  const { rows } = await db.pool.query<{ n: number }>(
    'SELECT sum(usage_count) AS n FROM usage_global_hourly',
  );
  expect(rows[0]?.n).toBe(2000);
});

it('keeps them after the migration: new usage, a delete, a repair', async () => {
  await db.pool.query(
    `INSERT INTO pattern_usage_events (pattern_id, success, used_at)
     SELECT '00000000-0000-4000-8000-000000000025'::uuid, true, timestamptz '2026-02-01' + i * interval '1 minute'
       FROM generate_series(1, 10) i`,
  );
  await db.pool.query(`DELETE FROM pattern_templates WHERE id = '00000000-0000-4000-8000-000000000003'`);
  await db.pool.query(`SELECT recompute_pattern_stats('00000000-0000-4000-8000-000000000004')`);
  await expectRollupsFresh();
});
