// Migration 015 on a database migrated and filled before it: the seed's SQL objects, read with the
// seed's own statements (node_pattern_*_effect.py), and the data already there kept.
import { cp, mkdtemp, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrate } from '../../src/db/migrate.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';

const SQL_DIR = join(import.meta.dirname, '../../sql');
const A = '0a000000-0000-4000-8000-00000000000a';
const B = '0b000000-0000-4000-8000-00000000000b';
const C = '0c000000-0000-4000-8000-00000000000c';
const D = '0d000000-0000-4000-8000-00000000000d';

let db: TestDatabase;
const q = async <T = Record<string, unknown>>(text: string, values: unknown[] = []) =>
  (await db.pool.query<T & Record<string, unknown>>(text, values)).rows as T[];

beforeAll(async () => {
  db = await createTestDatabase({ migrated: false });
  // Everything before 015, as a database in production has it.
  const before = await mkdtemp(join(tmpdir(), 'pw-before-015-'));
  for (const file of await readdir(SQL_DIR)) {
    if (/^0(0\d|1[0-4])_.*\.sql$/.test(file)) await cp(join(SQL_DIR, file), join(before, file));
  }
  const first = await migrate(db.pool, before);
  expect(first.applied.at(-1)).toMatch(/^014_/);

  await q(
    `INSERT INTO pattern_templates (id, pattern_name, pattern_type, language, confidence_score, is_deprecated)
     VALUES ($1, 'Alpha', 'code', 'python', 0.9, false), ($2, 'Beta', 'code', 'python', 0.8, false),
            ($3, 'Gamma', 'code', 'python', 0.7, true), ($4, 'Delta', 'code', 'go', 0.6, false)`,
    [A, B, C, D],
  );
  await q(
    `INSERT INTO pattern_relationships (source_pattern_id, target_pattern_id, relationship_type, created_at)
     VALUES ($1, $2, 'similar', '2026-01-02T03:04:05Z')`,
    [A, B],
  );
  // A: 3 of 3 succeed; B: 1 of 2; C (deprecated): 5 of 5; D: unused. Recent, so they count as recent use.
  const events: [string, boolean, number | null, number | null][] = [
    [A, true, 0.5, 0.7],
    [A, true, 0.5, 0.6],
    [A, true, null, null],
    [B, true, 0.4, 0.4],
    [B, false, 0.4, 0.3],
    ...Array.from({ length: 5 }, (): [string, boolean, null, null] => [C, true, null, null]),
  ];
  for (const [id, success, before, after] of events) {
    await q(
      `INSERT INTO pattern_usage_events (pattern_id, success, quality_before, quality_after, used_at)
       VALUES ($1, $2, $3, $4, now() - interval '1 day')`,
      [id, success, before, after],
    );
  }
  await q(`SELECT * FROM compute_pattern_analytics(now() - interval '7 days', now(), $1)`, [A]);

  const second = await migrate(db.pool);
  // 015 first (later migrations follow it).
  expect(second.applied.map((m) => m.slice(0, 3))[0]).toBe('015');
});

afterAll(async () => {
  await db?.drop();
});

describe('migration 015 on a database that had data before it', () => {
  it('keeps relationships and makes discovered_at readable (created_at); new ones default to strength 0.5', async () => {
    // The seed's create_relationship read RETURNING id, discovered_at.
    const [kept] = await q<{ discovered_at: Date; created_at: Date }>(
      'SELECT discovered_at, created_at FROM pattern_relationships WHERE source_pattern_id = $1',
      [A],
    );
    expect(kept?.discovered_at.toISOString()).toBe('2026-01-02T03:04:05.000Z');
    const [created] = await q<{ strength: number; discovered_at: Date }>(
      `INSERT INTO pattern_relationships (id, source_pattern_id, target_pattern_id, relationship_type)
       VALUES (gen_random_uuid(), $1, $2, 'extends') RETURNING strength, discovered_at`,
      [B, A],
    );
    expect(created?.strength).toBe(0.5);
    expect(created?.discovered_at).toBeInstanceOf(Date);
  });

  it("v_top_patterns answers the seed's get_top and get_global_stats statements, best first, without deprecated patterns", async () => {
    const top = await q(
      `SELECT id, pattern_name, pattern_type, language, usage_count, success_rate, confidence_score,
              avg_quality_improvement, recent_usage_count, last_used_at
         FROM v_top_patterns WHERE 1=1 AND language = $1 LIMIT $2 OFFSET $3`,
      ['python', 10, 0],
    );
    expect(top.map((r) => [r.pattern_name, r.usage_count, r.success_rate, r.recent_usage_count])).toEqual([
      ['Alpha', 3, 1, 3],
      ['Beta', 2, 0.5, 2],
    ]);
    expect(top[0]?.avg_quality_improvement).toBeCloseTo(0.15, 10);
    const global = await q(
      'SELECT pattern_name, usage_count, success_rate, confidence_score FROM v_top_patterns LIMIT 10',
    );
    expect(global.map((r) => r.pattern_name)).toEqual(['Alpha', 'Beta']);
    // Ours keeps the deprecated pattern, ranked first by its 5 of 5.
    const ranking = await q('SELECT pattern_name, rank FROM v_pattern_ranking ORDER BY rank');
    expect(ranking.map((r) => r.pattern_name)).toEqual(['Gamma', 'Alpha', 'Beta']);
  });

  it("v_pattern_quality_trends answers the seed's get_quality_trends statement", async () => {
    const rows = await q(
      `SELECT id, pattern_name, pattern_type, usage_date, usage_count, avg_quality_improvement, success_rate
         FROM v_pattern_quality_trends WHERE ($1::uuid IS NULL OR id = $1) ORDER BY usage_date DESC LIMIT 100`,
      [B],
    );
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ id: B, pattern_name: 'Beta', pattern_type: 'code', usage_count: 2 });
    expect(rows[0]?.avg_quality_improvement).toBeCloseTo(-0.05, 10);
    expect(rows[0]?.success_rate).toBe(0.5);
  });

  it('update_pattern_stats(uuid) is callable and recomputes; the statistics trigger still runs', async () => {
    await q(
      'UPDATE pattern_templates SET usage_count = 99, success_count = 0, success_rate = 0 WHERE id = $1',
      [A],
    );
    await q('SELECT update_pattern_stats($1)', [A]);
    const [a] = await q(
      'SELECT usage_count, success_rate, last_used_at, confidence_score FROM pattern_templates WHERE id = $1',
      [A],
    );
    expect(a).toMatchObject({ usage_count: 3, success_rate: 1, confidence_score: 0.9 });
    await q('INSERT INTO pattern_usage_events (pattern_id, success) VALUES ($1, false)', [D]);
    const [d] = await q('SELECT usage_count, success_rate FROM pattern_templates WHERE id = $1', [D]);
    expect(d).toEqual({ usage_count: 1, success_rate: 0 });
  });

  it("compute_pattern_analytics returns the stored row's id, as the seed's node read it; ours returns the row", async () => {
    const [{ id } = { id: '' }] = await q<{ id: string }>(
      `SELECT compute_pattern_analytics(now() - interval '30 days', now(), $1) AS id`,
      [B],
    );
    const [row] = await q(
      `SELECT id, period_start, period_end, pattern_id, total_usage_count, success_count, failure_count,
              average_execution_time_ms, average_quality_improvement, top_patterns, trend_direction,
              trend_strength, computed_at
         FROM pattern_analytics WHERE id = $1`,
      [id],
    );
    expect(row).toMatchObject({ pattern_id: B, total_usage_count: 2, success_count: 1, failure_count: 1 });
    const [whole] = await q(
      `SELECT id, pattern_id FROM compute_pattern_analytics_row(now() - interval '1 day', now())`,
    );
    expect(whole).toMatchObject({ pattern_id: null });
    // The analytics computed before 015 is still there.
    const [{ n } = { n: 0 }] = await q<{ n: number }>(
      'SELECT count(*)::int AS n FROM pattern_analytics WHERE pattern_id = $1',
      [A],
    );
    expect(n).toBe(1);
  });

  it('a new analytics row takes the id the worker hands over in its transaction, a random one otherwise', async () => {
    const given = 'a1a1a1a1-0000-4000-8000-000000000001';
    const client = await db.pool.connect();
    try {
      await client.query('BEGIN');
      await client.query(`SELECT set_config('pattern_worker.analytics_id', $1, true)`, [given]);
      const { rows } = await client.query<{ id: string }>(
        `SELECT id FROM compute_pattern_analytics_row('2025-01-01Z', '2025-01-02Z', $1)`,
        [D],
      );
      await client.query('COMMIT');
      expect(rows[0]?.id).toBe(given);
    } finally {
      client.release();
    }
    const [other] = await q<{ id: string }>(
      `SELECT compute_pattern_analytics('2025-02-01Z', '2025-02-02Z', $1) AS id`,
      [D],
    );
    expect(other?.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(other?.id).not.toBe(given);
  });
});
