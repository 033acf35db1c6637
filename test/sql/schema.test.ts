// Hand-checked values for the statistics trigger, the views and compute_pattern_analytics.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';

const A = 'aaaaaaaa-0000-4000-8000-000000000001';
const B = 'aaaaaaaa-0000-4000-8000-000000000002';
const C = 'aaaaaaaa-0000-4000-8000-000000000003';

let db: TestDatabase;
const q = async <T extends Record<string, unknown>>(sql: string, params: unknown[] = []) =>
  (await db.pool.query<T>(sql, params)).rows;

beforeAll(async () => {
  db = await createTestDatabase();
  await q(
    `INSERT INTO pattern_templates (id, pattern_name, pattern_type, language, confidence_score, tags) VALUES
     ($1, 'AsyncDatabaseWriterPattern', 'code', 'python', 0.92, '{onex,database}'),
     ($2, 'RetryWithBackoff', 'code', 'typescript', 0.8, '{resilience}'),
     ($3, 'UnusedPattern', 'architecture', 'go', NULL, '{}')`,
    [A, B, C],
  );
});
afterAll(async () => {
  await db.drop();
});

describe('update_pattern_stats trigger', () => {
  it('applies one multi-row insert over several patterns and days exactly', async () => {
    await q(
      `INSERT INTO pattern_usage_events (pattern_id, success, execution_time_ms, quality_before, quality_after, used_at) VALUES
       ($1, true, 100, 0.65, 0.88, '2026-01-01T10:00Z'),
       ($1, true, 200, 0.50, 0.50, '2026-01-01T23:59Z'),
       ($1, false, NULL, NULL, NULL, '2026-01-02T00:00Z'),
       ($2, false, 50, 0.70, 0.60, '2026-01-02T12:00Z'),
       ($2, true, NULL, NULL, NULL, '2026-01-03T12:00Z')`,
      [A, B],
    );
    const rows = await q(
      `SELECT id, usage_count, success_count, success_rate, avg_quality_improvement, avg_execution_time_ms, last_used_at
         FROM pattern_templates ORDER BY id`,
    );
    expect(rows[0]).toMatchObject({ usage_count: 3, success_count: 2, avg_execution_time_ms: 150 });
    expect(rows[0]?.success_rate).toBeCloseTo(2 / 3, 12);
    // (0.23 + 0) / 2: the 0.0 improvement counts as a sample, the NULL one does not.
    expect(rows[0]?.avg_quality_improvement).toBe(0.115);
    expect((rows[0]?.last_used_at as Date).toISOString()).toBe('2026-01-02T00:00:00.000Z');
    expect(rows[1]).toMatchObject({
      usage_count: 2,
      success_count: 1,
      success_rate: 0.5,
      avg_execution_time_ms: 50,
    });
    expect(rows[1]?.avg_quality_improvement).toBe(-0.1);
    // No usage: rate and averages stay unknown rather than invented.
    expect(rows[2]).toMatchObject({ usage_count: 0, success_rate: null, avg_quality_improvement: null });

    const daily = await q(
      `SELECT pattern_id, to_char(day, 'YYYY-MM-DD') AS day, usage_count, success_count FROM pattern_usage_daily
        ORDER BY pattern_id, day`,
    );
    expect(daily).toEqual([
      { pattern_id: A, day: '2026-01-01', usage_count: 2, success_count: 2 },
      { pattern_id: A, day: '2026-01-02', usage_count: 1, success_count: 0 },
      { pattern_id: B, day: '2026-01-02', usage_count: 1, success_count: 0 },
      { pattern_id: B, day: '2026-01-03', usage_count: 1, success_count: 1 },
    ]);
  });

  it('keeps means exact across later inserts and agrees with a full recompute', async () => {
    await q(
      `INSERT INTO pattern_usage_events (pattern_id, success, execution_time_ms, quality_before, quality_after, used_at)
       VALUES ($1, true, 30, 0.1, 0.4, '2026-01-03T08:00Z')`,
      [A],
    );
    const [incremental] = await q(
      'SELECT usage_count, success_rate, avg_quality_improvement, avg_execution_time_ms FROM pattern_templates WHERE id = $1',
      [A],
    );
    expect(incremental).toMatchObject({ usage_count: 4, success_rate: 0.75, avg_execution_time_ms: 110 });
    expect(incremental?.avg_quality_improvement).toBeCloseTo((0.23 + 0 + 0.3) / 3, 12);
    const [recomputed] = await q(
      'SELECT usage_count, success_rate, avg_quality_improvement, avg_execution_time_ms FROM recompute_pattern_stats($1)',
      [A],
    );
    expect(recomputed).toEqual(incremental);
  });
});

describe('views', () => {
  it('v_top_patterns ranks by the Wilson lower bound, so 990/1000 beats 1/1', async () => {
    const [big, one] = ['bbbbbbbb-0000-4000-8000-000000000001', 'bbbbbbbb-0000-4000-8000-000000000002'];
    await q(
      `INSERT INTO pattern_templates (id, pattern_name, pattern_type, language) VALUES
       ($1, 'Proven', 'code', 'java'), ($2, 'Lucky', 'code', 'java')`,
      [big, one],
    );
    await q(
      `INSERT INTO pattern_usage_events (pattern_id, success, used_at)
       SELECT $1::uuid, g <= 990, '2026-02-01T00:00Z'::timestamptz + g * interval '1 second' FROM generate_series(1, 1000) g
       UNION ALL SELECT $2::uuid, true, '2026-02-01T00:00Z'`,
      [big, one],
    );
    const top = await q<{ id: string; rank: number }>('SELECT id, rank FROM v_top_patterns ORDER BY rank');
    expect(top.findIndex((r) => r.id === big)).toBeLessThan(top.findIndex((r) => r.id === one));
    expect(top[0]?.id).toBe(big);
  });

  it('v_pattern_quality_trends aggregates per pattern per UTC day', async () => {
    const rows = await q(
      `SELECT to_char(day, 'YYYY-MM-DD') AS day, usage_count, avg_quality_improvement
         FROM v_pattern_quality_trends WHERE pattern_id = $1 ORDER BY day`,
      [A],
    );
    expect(rows).toEqual([
      { day: '2026-01-01', usage_count: 2, avg_quality_improvement: 0.115 },
      { day: '2026-01-02', usage_count: 1, avg_quality_improvement: null },
      { day: '2026-01-03', usage_count: 1, avg_quality_improvement: 0.3 },
    ]);
  });
});

describe('compute_pattern_analytics', () => {
  it('computes one pattern over a period with partial days (start inclusive, end exclusive)', async () => {
    const [row] = await q(
      `SELECT total_usage_count, success_count, failure_count, success_rate, average_execution_time_ms,
              average_quality_improvement, top_patterns, trend_direction
         FROM compute_pattern_analytics_row('2026-01-01T12:00Z', '2026-01-03T08:00Z', $1)`,
      [A],
    );
    // 23:59 on day 1 and 00:00 on day 2 are in; 10:00 on day 1 is before; 08:00 on day 3 is the (excluded) end.
    expect(row).toMatchObject({
      total_usage_count: 2,
      success_count: 1,
      failure_count: 1,
      success_rate: 0.5,
      average_execution_time_ms: 200,
      average_quality_improvement: 0,
      top_patterns: [],
    });
  });

  it('computes globally with top patterns, and upserts one row per period', async () => {
    const compute = () =>
      q<{
        id: string;
        total_usage_count: number;
        top_patterns: { pattern_id: string; usage_count: number }[];
      }>(
        `SELECT id, total_usage_count, top_patterns FROM compute_pattern_analytics_row('2026-01-01T00:00Z', '2026-01-04T00:00Z')`,
      );
    const [first] = await compute();
    const [second] = await compute();
    expect(first?.total_usage_count).toBe(6);
    expect(first?.top_patterns.map((t) => [t.pattern_id, t.usage_count])).toEqual([
      [A, 4],
      [B, 2],
    ]);
    expect(second?.id).toBe(first?.id);
    const [{ n } = { n: 0 }] = await q<{ n: number }>(
      'SELECT count(*) AS n FROM pattern_analytics WHERE pattern_id IS NULL',
    );
    expect(n).toBe(1);
  });

  it('reads trends: increasing, decreasing, stable, insufficient data', async () => {
    const p = 'cccccccc-0000-4000-8000-000000000001';
    await q(
      `INSERT INTO pattern_templates (id, pattern_name, pattern_type, language) VALUES ($1, 'Trendy', 'code', 'rust')`,
      [p],
    );
    // 1, 2, 3, 4 uses on four consecutive days, then 4, 3, 2, 1.
    await q(
      `INSERT INTO pattern_usage_events (pattern_id, success, used_at)
       SELECT $1::uuid, true, '2026-03-01T12:00Z'::timestamptz + (d - 1) * interval '1 day'
         FROM generate_series(1, 4) d, generate_series(1, d) k
       UNION ALL
       SELECT $1::uuid, true, '2026-03-11T12:00Z'::timestamptz + (d - 1) * interval '1 day'
         FROM generate_series(1, 4) d, generate_series(1, 5 - d) k`,
      [p],
    );
    const trend = async (from: string, to: string) =>
      (
        await q<{ trend_direction: string; trend_strength: number }>(
          'SELECT trend_direction, trend_strength FROM compute_pattern_analytics_row($1, $2, $3)',
          [from, to, p],
        )
      )[0];
    expect(await trend('2026-03-01T00:00Z', '2026-03-05T00:00Z')).toEqual({
      trend_direction: 'increasing',
      trend_strength: 1,
    });
    expect(await trend('2026-03-11T00:00Z', '2026-03-15T00:00Z')).toEqual({
      trend_direction: 'decreasing',
      trend_strength: 1,
    });
    expect(await trend('2026-03-20T00:00Z', '2026-03-25T00:00Z')).toEqual({
      trend_direction: 'insufficient_data',
      trend_strength: 0,
    });
    expect(await trend('2026-03-01T00:00Z', '2026-03-01T20:00Z')).toEqual({
      trend_direction: 'insufficient_data',
      trend_strength: 0,
    });
    expect((await trend('2026-03-01T00:00Z', '2026-03-15T00:00Z'))?.trend_direction).toBe('stable');
  });

  it('matches a raw-event computation over partial days', async () => {
    const [fromDaily] = await q<{ total_usage_count: number; success_count: number }>(
      `SELECT total_usage_count, success_count FROM compute_pattern_analytics_row('2026-01-01T05:00Z', '2026-03-13T07:00Z')`,
    );
    const [raw] = await q<{ n: number; ok: number }>(
      `SELECT count(*) AS n, count(*) FILTER (WHERE success) AS ok FROM pattern_usage_events
        WHERE used_at >= '2026-01-01T05:00Z' AND used_at < '2026-03-13T07:00Z'`,
    );
    expect(fromDaily).toEqual({ total_usage_count: raw?.n, success_count: raw?.ok });
  });

  it('rejects an empty period', async () => {
    await expect(q(`SELECT compute_pattern_analytics('2026-01-02Z', '2026-01-01Z')`)).rejects.toMatchObject({
      code: '22023',
    });
  });
});

describe('constraints', () => {
  it.each([
    [
      'a score out of range',
      `INSERT INTO pattern_templates (pattern_name, pattern_type, language, confidence_score) VALUES ('x', 'code', 'c', 1.5)`,
      '23514',
    ],
    [
      'a duplicate name and language',
      `INSERT INTO pattern_templates (pattern_name, pattern_type, language) VALUES ('RetryWithBackoff', 'code', 'typescript')`,
      '23505',
    ],
    [
      'a self relationship',
      `INSERT INTO pattern_relationships (source_pattern_id, target_pattern_id, relationship_type) VALUES ('${A}', '${A}', 'similar')`,
      '23514',
    ],
    [
      'an unknown relationship type',
      `INSERT INTO pattern_relationships (source_pattern_id, target_pattern_id, relationship_type) VALUES ('${A}', '${B}', 'loves')`,
      '23514',
    ],
    [
      'usage of a missing pattern',
      `INSERT INTO pattern_usage_events (pattern_id, success) VALUES ('dddddddd-0000-4000-8000-000000000000', true)`,
      '23503',
    ],
  ])('rejects %s', async (_what, sql, code) => {
    await expect(q(sql)).rejects.toMatchObject({ code });
  });

  it('cascades a pattern delete to events, rollups, relationships and analytics', async () => {
    await q(
      `INSERT INTO pattern_relationships (source_pattern_id, target_pattern_id, relationship_type) VALUES ($1, $2, 'similar')`,
      [B, A],
    );
    await q(`UPDATE pattern_templates SET parent_pattern_id = $1 WHERE id = $2`, [B, C]);
    await q(`SELECT compute_pattern_analytics('2026-01-01Z', '2026-01-05Z', $1)`, [B]);
    await q('DELETE FROM pattern_templates WHERE id = $1', [B]);
    const [counts] = await q(
      `SELECT (SELECT count(*) FROM pattern_usage_events WHERE pattern_id = $1) AS events,
              (SELECT count(*) FROM pattern_usage_daily WHERE pattern_id = $1) AS daily,
              (SELECT count(*) FROM pattern_relationships WHERE source_pattern_id = $1) AS rels,
              (SELECT count(*) FROM pattern_analytics WHERE pattern_id = $1) AS analytics,
              (SELECT parent_pattern_id FROM pattern_templates WHERE id = $2) AS parent`,
      [B, C],
    );
    expect(counts).toEqual({ events: 0, daily: 0, rels: 0, analytics: 0, parent: null });
  });
});

describe('scale', () => {
  it('computes global analytics over 200,000 events in one statement-inserted batch quickly', async () => {
    const ids = await q<{ id: string }>(
      `INSERT INTO pattern_templates (pattern_name, pattern_type, language)
       SELECT 'Bulk' || g, 'code', 'python' FROM generate_series(1, 1000) g RETURNING id`,
    );
    const started = performance.now();
    await q(
      `INSERT INTO pattern_usage_events (pattern_id, success, execution_time_ms, quality_before, quality_after, used_at)
       SELECT ($1::uuid[])[1 + (g % 1000)], g % 3 <> 0, g % 500, 0.5, 0.6,
              '2026-04-01T00:00Z'::timestamptz + g * interval '12 seconds'
         FROM generate_series(1, 200000) g`,
      [ids.map((r) => r.id)],
    );
    const inserted = performance.now();
    const [row] = await q<{ total_usage_count: number }>(
      `SELECT total_usage_count FROM compute_pattern_analytics_row('2026-04-01T06:00Z', '2026-05-01T00:00Z')`,
    );
    const computed = performance.now();
    console.log(
      `200,000 events: insert with trigger ${(inserted - started).toFixed(0)} ms, global analytics ${(computed - inserted).toFixed(0)} ms`,
    );
    const [raw] = await q<{ n: number }>(
      `SELECT count(*) AS n FROM pattern_usage_events WHERE used_at >= '2026-04-01T06:00Z' AND used_at < '2026-05-01T00:00Z'`,
    );
    expect(row?.total_usage_count).toBe(raw?.n);
    expect(raw?.n).toBeGreaterThan(150_000);
    const [stats] = await q<{ n: number }>(
      'SELECT sum(usage_count) AS n FROM pattern_templates WHERE pattern_name LIKE $1',
      ['Bulk%'],
    );
    expect(stats?.n).toBe(200_000);
  });
});

describe('compute_pattern_analytics top patterns beyond the 200 most used', () => {
  // 210 patterns used 5 times in January (P0..P9 six times), 20 others only in February: the 200 patterns
  // with the highest usage_count decide January alone, but none of them is used in February.
  const id = (i: number) => `bbbbbbbb-0000-4000-8000-${String(i).padStart(12, '0')}`;
  let own: TestDatabase;
  const top = async (start: string, end: string) => {
    const { rows } = await own.pool.query<{ top_patterns: { pattern_id: string; usage_count: number }[] }>(
      'SELECT top_patterns FROM compute_pattern_analytics_row($1, $2)',
      [start, end],
    );
    return rows[0]?.top_patterns.map((t) => [t.pattern_id, t.usage_count]);
  };
  beforeAll(async () => {
    own = await createTestDatabase();
    const ids = Array.from({ length: 230 }, (_, i) => id(i));
    await own.pool.query(
      `INSERT INTO pattern_templates (id, pattern_name, pattern_type, language)
       SELECT i, 'Top' || n, 'code', 'go' FROM unnest($1::uuid[]) WITH ORDINALITY AS t(i, n)`,
      [ids],
    );
    const uses = ids.flatMap((pattern, i) => {
      const [times, day] =
        i < 10
          ? [6, '2027-01-10']
          : i < 210
            ? [5, '2027-01-11']
            : i < 220
              ? [2, '2027-02-10']
              : [1, '2027-02-11'];
      return Array.from({ length: times }, () => ({ pattern, day }));
    });
    await own.pool.query(
      `INSERT INTO pattern_usage_events (pattern_id, success, used_at)
       SELECT u.pattern, true, u.day::timestamptz FROM jsonb_to_recordset($1) AS u(pattern uuid, day text)`,
      [JSON.stringify(uses)],
    );
  });
  afterAll(async () => own.drop());

  it('finds them among the most used patterns when the tenth beats every other usage_count', async () => {
    expect(await top('2027-01-01T00:00Z', '2027-02-01T00:00Z')).toEqual(
      Array.from({ length: 10 }, (_, i) => [id(i), 6]),
    );
  });

  it('counts every pattern when the most used ones were not used in the period', async () => {
    expect(await top('2027-02-01T00:00Z', '2027-03-01T00:00Z')).toEqual(
      Array.from({ length: 10 }, (_, i) => [id(210 + i), 2]),
    );
  });
});
