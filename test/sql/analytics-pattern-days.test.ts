// Migration 018: usage_by_pattern_day (global get_effectiveness, period quality trends) reads a period's
// partial days from their smaller side, as 017 does for usage_by_day: the raw events inside the period, or
// the day's rollup rows minus the events outside it. Every (pattern, day) row equals a recomputation from the
// raw events; and a partial day read as "row minus outside" really comes from the rollup.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => db.drop());

const D = '2026-05-10';
const at = (day: number, time: string) =>
  new Date(Date.parse(`${D}T${time}Z`) + day * 86_400_000).toISOString();
const A = randomUUID();
const B = randomUUID();
const C = randomUUID();

/**
 * Day 0: busy early (10 of A at 01:00), quiet late (1 of B at 23:00, 1 of C at 23:30). Days 1-2: a few of
 * each. Day 3: busy early (5 of B at 01:00), quiet late (1 of A at 23:00). Some events without execution
 * time or quality, so that the counts of those differ from the usage counts.
 */
async function load(): Promise<void> {
  await db.pool.query(
    `INSERT INTO pattern_templates (id, pattern_name, pattern_type, language)
     VALUES ($1, 'DaysA', 'code', 'go'), ($2, 'DaysB', 'code', 'go'), ($3, 'DaysC', 'code', 'go')`,
    [A, B, C],
  );
  const events: [string, string, boolean, number | null, boolean][] = [];
  for (let i = 0; i < 10; i++) events.push([A, at(0, `01:00:0${i}`), i % 3 === 0, 10 + i, i % 2 === 0]);
  events.push([B, at(0, '23:00:00'), true, null, true]);
  events.push([C, at(0, '23:30:00'), false, 7, false]);
  for (const day of [1, 2])
    for (const [i, p] of [A, B, C].entries()) events.push([p, at(day, `1${i}:00:00`), i !== 1, 5, true]);
  for (let i = 0; i < 5; i++) events.push([B, at(3, `01:00:0${i}`), i !== 2, 20, i % 2 === 1]);
  events.push([A, at(3, '23:00:00'), false, 3, true]);
  await db.pool.query(
    `INSERT INTO pattern_usage_events (pattern_id, used_at, success, execution_time_ms, quality_before, quality_after)
     SELECT p, t, s, ms, CASE WHEN q THEN 0.5 END, CASE WHEN q THEN 0.75 END
       FROM unnest($1::uuid[], $2::timestamptz[], $3::boolean[], $4::int[], $5::boolean[]) AS x (p, t, s, ms, q)`,
    [
      events.map((e) => e[0]),
      events.map((e) => e[1]),
      events.map((e) => e[2]),
      events.map((e) => e[3]),
      events.map((e) => e[4]),
    ],
  );
}

const FRESH = `SELECT pattern_id, (used_at AT TIME ZONE 'UTC')::date AS day, count(*)::bigint AS usage_count,
       count(*) FILTER (WHERE success)::bigint AS success_count,
       coalesce(sum(execution_time_ms), 0)::numeric AS execution_time_sum,
       count(execution_time_ms)::bigint AS execution_time_count,
       coalesce(sum(quality_improvement), 0)::numeric AS quality_improvement_sum,
       count(quality_improvement)::bigint AS quality_improvement_count
  FROM pattern_usage_events
 WHERE ($3::uuid IS NULL OR pattern_id = $3) AND used_at >= $1 AND used_at < $2
 GROUP BY 1, 2`;

/** usage_by_pattern_day's rows with usage (each pattern and all) against the raw events. */
async function expectExact(start: string, end: string): Promise<void> {
  for (const pattern of [A, B, C, null]) {
    const { rows } = await db.pool.query<{ kept: unknown; fresh: unknown }>(
      `SELECT (SELECT json_agg(x ORDER BY x.day, x.pattern_id)
                 FROM (SELECT pattern_id, day, usage_count, success_count, execution_time_sum::numeric,
                              execution_time_count, quality_improvement_sum::numeric, quality_improvement_count
                         FROM usage_by_pattern_day($1, $2, $3) WHERE usage_count > 0) x) AS kept,
              (SELECT json_agg(y ORDER BY y.day, y.pattern_id) FROM (${FRESH}) y) AS fresh`,
      [start, end, pattern],
    );
    const r = rows[0] as { kept: unknown; fresh: unknown };
    expect(r.kept, `${start} .. ${end}, pattern ${pattern ?? 'all'}`).toEqual(r.fresh);
  }
}

async function plan(start: string, end: string) {
  const { rows } = await db.pool.query<{ adds: number; subs: number }>(
    `SELECT (add1_to > add1_from)::int + (add2_to > add2_from)::int AS adds,
            (sub1_to > sub1_from)::int + (sub2_to > sub2_from)::int AS subs
       FROM usage_period_plan($1, $2)`,
    [start, end],
  );
  return rows[0];
}

describe('usage_by_pattern_day reads partial days from their smaller side', () => {
  beforeAll(load);

  it('equals the raw events when a partial day is read from its inside, and from its row minus its outside', async () => {
    // Day 0 from 12:00: inside 2 events, outside 10 (inside). Day 3 to 12:00: inside 5, outside 1 (row minus outside).
    const start = at(0, '12:00:00');
    const end = at(3, '12:00:00');
    expect(await plan(start, end)).toEqual({ adds: 1, subs: 1 });
    await expectExact(start, end);
    // Day 0 from 01:00:05: the row minus [00:00, 01:00:05); day 3 to 01:00:03: its inside.
    expect(await plan(at(0, '01:00:05'), at(3, '01:00:03'))).toEqual({ adds: 1, subs: 1 });
    await expectExact(at(0, '01:00:05'), at(3, '01:00:03'));
  });

  it('equals the raw events for periods within one day, whole days, and a sweep of starts and lengths', async () => {
    expect(await plan(at(0, '00:30:00'), at(0, '23:15:00'))).toEqual({ adds: 0, subs: 2 });
    await expectExact(at(0, '00:30:00'), at(0, '23:15:00'));
    await expectExact(at(0, '23:10:00'), at(0, '23:45:00'));
    await expectExact(at(0, '00:00:00'), at(4, '00:00:00'));
    await expectExact(at(-20, '06:00:00'), at(3, '23:30:00'));
    for (let minute = 0; minute < 24 * 60 * 4; minute += 89) {
      const s = new Date(Date.parse(at(0, '00:00:00')) + minute * 60_000 + 1234).toISOString();
      await expectExact(s, new Date(Date.parse(s) + (minute % 3100) * 60_000 + 61_000).toISOString());
    }
  });

  it('a day read as its row minus its outside comes from the rollup, not from the raw events', async () => {
    // Day 3 to 12:00 is read as the rollup row minus [12:00, 24:00). Change B's day-3 rollup row (inside a
    // transaction that is rolled back): the function follows the rollup; before 018 it read day 3's raw events.
    const start = at(0, '12:00:00');
    const end = at(3, '12:00:00');
    const client = await db.pool.connect();
    try {
      await client.query('BEGIN');
      await client.query(
        `UPDATE pattern_usage_daily SET usage_count = usage_count + 100 WHERE pattern_id = $1 AND day = $2::date`,
        [B, at(3, '00:00:00').slice(0, 10)],
      );
      const { rows } = await client.query<{ usage_count: string }>(
        `SELECT usage_count FROM usage_by_pattern_day($1, $2, $3) WHERE day = $4::date`,
        [start, end, B, at(3, '00:00:00').slice(0, 10)],
      );
      expect(rows.map((r) => Number(r.usage_count))).toEqual([105]);
      await client.query('ROLLBACK');
    } finally {
      client.release();
    }
  });

  it('the global get_effectiveness sums and the period quality trends follow it', async () => {
    const start = at(0, '12:00:00');
    const end = at(3, '12:00:00');
    const { rows } = await db.pool.query<{ kept: unknown; fresh: unknown }>(
      `SELECT (SELECT json_agg(u ORDER BY u.pattern_id) FROM (SELECT pattern_id, sum(usage_count)::bigint AS n,
                      sum(success_count)::bigint AS ok FROM usage_by_pattern_day($1, $2, NULL) GROUP BY 1) u) AS kept,
              (SELECT json_agg(f ORDER BY f.pattern_id) FROM (SELECT pattern_id, count(*)::bigint AS n,
                      count(*) FILTER (WHERE success)::bigint AS ok FROM pattern_usage_events
                WHERE used_at >= $1 AND used_at < $2 GROUP BY 1) f) AS fresh`,
      [start, end],
    );
    const r = rows[0] as { kept: unknown; fresh: unknown };
    expect(r.kept).toEqual(r.fresh);
  });
});
