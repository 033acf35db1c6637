// Migration 017: a partial day of a period is read from its smaller side, the events inside the period or
// the day's rollup row minus the events outside it; both give the exact answer. And
// rebuild_analytics_rollups() rebuilds 016's global rollups after a load that bypassed the triggers.
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

/** Events: day 0 busy early (10 of A at 01:00), quiet late (1 of B at 23:00); day 3 the same at 01:00 and 23:00. */
async function load(): Promise<void> {
  await db.pool.query(
    `INSERT INTO pattern_templates (id, pattern_name, pattern_type, language)
     VALUES ($1, 'PartialA', 'code', 'go'), ($2, 'PartialB', 'code', 'go')`,
    [A, B],
  );
  const events: [string, string, boolean][] = [];
  for (let i = 0; i < 10; i++) events.push([A, at(0, `01:00:0${i % 10}`), i % 3 === 0]);
  events.push([B, at(0, '23:00:00'), true]);
  for (let i = 0; i < 5; i++) events.push([B, at(3, `01:00:0${i}`), true]);
  events.push([A, at(3, '23:00:00'), false]);
  await db.pool.query(
    `INSERT INTO pattern_usage_events (pattern_id, used_at, success, execution_time_ms, quality_before, quality_after)
     SELECT p, t, s, 10, 0.5, 0.75 FROM unnest($1::uuid[], $2::timestamptz[], $3::boolean[]) AS x (p, t, s)`,
    [events.map((e) => e[0]), events.map((e) => e[1]), events.map((e) => e[2])],
  );
}

async function plan(start: string, end: string) {
  const { rows } = await db.pool.query<Record<string, Date | string>>(
    'SELECT * FROM usage_period_plan($1, $2)',
    [start, end],
  );
  const p = rows[0] as Record<string, Date | string>;
  const range = (from: string, to: string) =>
    new Date(p[from] as Date).getTime() < new Date(p[to] as Date).getTime()
      ? [new Date(p[from] as Date).toISOString(), new Date(p[to] as Date).toISOString()]
      : null;
  return {
    add: [range('add1_from', 'add1_to'), range('add2_from', 'add2_to')].filter(Boolean),
    subtract: [range('sub1_from', 'sub1_to'), range('sub2_from', 'sub2_to')].filter(Boolean),
  };
}

/** usage_by_day (each pattern and all), usage_of_patterns and top_used_patterns against brute force. */
async function expectExact(start: string, end: string): Promise<void> {
  for (const pattern of [A, B, null]) {
    const { rows } = await db.pool.query<{ kept: unknown; fresh: unknown }>(
      `SELECT (SELECT json_agg(x ORDER BY x.day) FROM usage_by_day($1, $2, $3) x) AS kept,
              (SELECT json_agg(y ORDER BY y.day) FROM (SELECT (used_at AT TIME ZONE 'UTC')::date AS day,
                     count(*)::numeric AS usage_count, count(*) FILTER (WHERE success)::numeric AS success_count,
                     coalesce(sum(execution_time_ms), 0)::numeric AS execution_time_sum,
                     count(execution_time_ms)::numeric AS execution_time_count,
                     coalesce(sum(quality_improvement), 0)::numeric AS quality_improvement_sum,
                     count(quality_improvement)::numeric AS quality_improvement_count
                FROM pattern_usage_events
               WHERE ($3::uuid IS NULL OR pattern_id = $3) AND used_at >= $1 AND used_at < $2 GROUP BY 1) y) AS fresh`,
      [start, end, pattern],
    );
    const r = rows[0] as { kept: unknown; fresh: unknown };
    expect(r.kept).toEqual(r.fresh);
  }
  const { rows } = await db.pool.query<{ kept: unknown; top: unknown; fresh: unknown }>(
    `SELECT (SELECT json_agg(u ORDER BY u.usage_count DESC, u.pattern_id)
               FROM usage_of_patterns($1, $2, ARRAY[$3, $4]::uuid[]) u WHERE u.usage_count <> 0) AS kept,
            (SELECT json_agg(t) FROM top_used_patterns($1, $2, 2, ARRAY[1]) t) AS top,
            (SELECT json_agg(b) FROM (SELECT pattern_id, count(*)::numeric AS usage_count,
                    count(*) FILTER (WHERE success)::numeric AS success_count
               FROM pattern_usage_events WHERE used_at >= $1 AND used_at < $2
              GROUP BY pattern_id ORDER BY count(*) DESC, pattern_id) b) AS fresh`,
    [start, end, A, B],
  );
  const r = rows[0] as { kept: unknown; top: unknown; fresh: unknown };
  expect(r.kept).toEqual(r.fresh);
  expect(r.top).toEqual(r.fresh);
}

describe('partial days from their smaller side', () => {
  beforeAll(load);

  it('reads the events inside when they are fewer: a start after the busy hour', async () => {
    const start = at(0, '12:00:00');
    const end = at(3, '12:00:00');
    // Day 0 inside [12:00, 24:00) holds 1 event, outside 10: inside. Day 3 inside [00:00, 12:00) holds 5,
    // outside [12:00, 24:00) 1: the day's row minus the outside.
    expect(await plan(start, end)).toEqual({
      add: [[start, at(1, '00:00:00')]],
      subtract: [[end, at(4, '00:00:00')]],
    });
    await expectExact(start, end);
  });

  it("subtracts the outside when it is smaller: a start just after the busy hour's first minute", async () => {
    const start = at(0, '01:00:05');
    const end = at(3, '01:00:03');
    // Estimated by whole hours: day 0 outside [00:00, 01:00:05) counts hours 00-01 (10 events), inside
    // counts hours 01-23 (11): the row minus the outside, which holds 5 of the 10 events at 01:00.
    expect(await plan(start, end)).toEqual({
      add: [[at(3, '00:00:00'), end]],
      subtract: [[at(0, '00:00:00'), start]],
    });
    await expectExact(start, end);
  });

  it('a period within one day: its row minus both outsides, or its inside', async () => {
    const start = at(0, '00:30:00');
    const end = at(0, '23:30:00');
    expect(await plan(start, end)).toEqual({
      add: [],
      subtract: [
        [at(0, '00:00:00'), start],
        [end, at(1, '00:00:00')],
      ],
    });
    await expectExact(start, end);
    const late = at(0, '22:00:00');
    expect(await plan(late, end)).toEqual({ add: [[late, end]], subtract: [] });
    await expectExact(late, end);
  });

  it('whole days need no raw events; a period ending now subtracts the empty rest of today', async () => {
    expect(await plan(at(0, '00:00:00'), at(4, '00:00:00'))).toEqual({ add: [], subtract: [] });
    await expectExact(at(0, '00:00:00'), at(4, '00:00:00'));
    const now = at(3, '23:30:00');
    expect((await plan(at(-20, '06:00:00'), now)).subtract).toEqual([[now, at(4, '00:00:00')]]);
    for (let minute = 0; minute < 24 * 60 * 4; minute += 97) {
      const s = new Date(Date.parse(at(0, '00:00:00')) + minute * 60_000 + 1234).toISOString();
      await expectExact(s, new Date(Date.parse(s) + (minute % 3000) * 60_000 + 61_000).toISOString());
    }
  });
});

describe('rebuild_analytics_rollups', () => {
  it('rebuilds the hourly rollup and the counters after a load without the statistics trigger', async () => {
    const id = randomUUID();
    await db.pool.query(
      `INSERT INTO pattern_templates (id, pattern_name, pattern_type, language, confidence_score, is_deprecated)
       VALUES ($1, 'Rebuilt', 'code', 'go', 0.4, true)`,
      [id],
    );
    await db.pool.query('ALTER TABLE pattern_usage_events DISABLE TRIGGER trg_usage_events_stats');
    await db.pool.query(
      `INSERT INTO pattern_usage_events (pattern_id, used_at, success)
       SELECT $1, timestamptz '2026-06-01T10:00:00Z' + g * interval '7 minutes', g % 2 = 0 FROM generate_series(1, 40) g`,
      [id],
    );
    await db.pool.query('ALTER TABLE pattern_usage_events ENABLE TRIGGER trg_usage_events_stats');
    await db.pool.query('SELECT recompute_pattern_stats($1)', [id]);
    const hourly = `SELECT hour, sum(usage_count)::int AS n, sum(success_count)::int AS ok FROM usage_global_hourly
                     GROUP BY hour HAVING sum(usage_count) <> 0 ORDER BY hour`;
    const fresh = `SELECT date_trunc('hour', used_at, 'UTC') AS hour, count(*)::int AS n,
                          (count(*) FILTER (WHERE success))::int AS ok
                     FROM pattern_usage_events GROUP BY 1 ORDER BY 1`;
    expect((await db.pool.query(hourly)).rows).not.toEqual((await db.pool.query(fresh)).rows);
    await db.pool.query('SELECT rebuild_analytics_rollups()');
    expect((await db.pool.query(hourly)).rows).toEqual((await db.pool.query(fresh)).rows);
    const { rows } = await db.pool.query(
      `SELECT (SELECT row_to_json(c) FROM (SELECT total_patterns, deprecated_patterns, confidence_sum,
                      confidence_count, used_patterns, success_rate_sum, total_relationships FROM v_pattern_counters) c) AS kept,
              (SELECT row_to_json(f) FROM (SELECT count(*) AS total_patterns,
                      count(*) FILTER (WHERE is_deprecated) AS deprecated_patterns,
                      coalesce(sum(confidence_score), 0) AS confidence_sum, count(confidence_score) AS confidence_count,
                      count(*) FILTER (WHERE usage_count > 0) AS used_patterns,
                      coalesce(sum(success_rate) FILTER (WHERE usage_count > 0), 0) AS success_rate_sum,
                      (SELECT count(*) FROM pattern_relationships) AS total_relationships FROM pattern_templates) f) AS fresh`,
    );
    const r = rows[0] as { kept: unknown; fresh: unknown };
    expect(r.kept).toEqual(r.fresh);
    const { rows: slots } = await db.pool.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM pattern_counters WHERE slot <> 0 AND total_patterns <> 0',
    );
    expect(slots[0]?.n).toBe(0);
  });
});
