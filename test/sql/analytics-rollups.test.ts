// Migration 016's rollups (and 017's reads of partial days) against a full recomputation from the raw rows, after random interleavings of
// concurrent usage batches (through the node, with replays of already applied messages), pattern deletes
// (their events cascade), confidence and deprecation changes, relationships and statistics repairs.
import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { NodePatternStorageEffect, NodePatternUpdateEffect } from '../../src/nodes/index.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase({ poolMax: 8 });
});
afterAll(async () => db.drop());

const BASE = Date.parse('2026-03-01T00:00:00Z');
const HOUR = 3_600_000;

const event = fc.record({
  pattern: fc.nat(7),
  hour: fc.nat(24 * 6),
  minute: fc.nat(59),
  success: fc.boolean(),
  ms: fc.option(fc.nat(500)),
  quality: fc.option(fc.tuple(fc.nat(100), fc.nat(100))),
});
const command = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant('batches' as const),
      batches: fc.array(fc.array(event, { minLength: 1, maxLength: 12 }), { minLength: 1, maxLength: 4 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('replay' as const), back: fc.nat(5) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('delete' as const), pattern: fc.nat(7) }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('flags' as const),
      pattern: fc.nat(7),
      confidence: fc.option(fc.nat(100)),
      deprecated: fc.boolean(),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('relate' as const), a: fc.nat(7), b: fc.nat(7) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('repair' as const), pattern: fc.nat(7) }) },
);

async function reset(): Promise<void> {
  await db.pool.query(
    'TRUNCATE pattern_templates, pattern_usage_events, pattern_usage_daily, pattern_relationships, pattern_analytics, processed_messages, usage_global_hourly CASCADE',
  );
  await db.pool.query(
    `UPDATE pattern_counters SET total_patterns = 0, deprecated_patterns = 0, confidence_sum = 0, confidence_count = 0,
            used_patterns = 0, success_rate_sum = 0, total_relationships = 0`,
  );
}

/** Every rollup of 016 recomputed from the raw rows; each entry must equal the maintained one. */
async function checkRollups(): Promise<void> {
  const hourly = await db.pool.query(
    `WITH kept AS (SELECT hour, sum(usage_count) AS n, sum(success_count) AS ok, sum(execution_time_sum) AS esum,
                          sum(execution_time_count) AS en, sum(quality_improvement_sum) AS qsum,
                          sum(quality_improvement_count) AS qn
                     FROM usage_global_hourly GROUP BY hour
                   HAVING sum(usage_count) <> 0 OR sum(execution_time_count) <> 0 OR sum(quality_improvement_count) <> 0),
          fresh AS (SELECT date_trunc('hour', used_at, 'UTC') AS hour, count(*) AS n, count(*) FILTER (WHERE success) AS ok,
                           coalesce(sum(execution_time_ms), 0) AS esum, count(execution_time_ms) AS en,
                           coalesce(sum(quality_improvement), 0) AS qsum, count(quality_improvement) AS qn
                      FROM pattern_usage_events GROUP BY 1)
     SELECT * FROM ((TABLE kept EXCEPT TABLE fresh) UNION ALL (TABLE fresh EXCEPT TABLE kept)) d`,
  );
  expect(hourly.rows).toEqual([]);
  const counters = await db.pool.query(
    `SELECT (SELECT row_to_json(c) FROM (SELECT total_patterns, deprecated_patterns, confidence_sum, confidence_count,
                    used_patterns, success_rate_sum, total_relationships FROM v_pattern_counters) c) AS kept,
            (SELECT row_to_json(f) FROM (SELECT count(*) AS total_patterns, count(*) FILTER (WHERE is_deprecated) AS deprecated_patterns,
                    coalesce(sum(confidence_score), 0) AS confidence_sum, count(confidence_score) AS confidence_count,
                    count(*) FILTER (WHERE usage_count > 0) AS used_patterns,
                    coalesce(sum(success_rate) FILTER (WHERE usage_count > 0), 0) AS success_rate_sum,
                    (SELECT count(*) FROM pattern_relationships) AS total_relationships FROM pattern_templates) f) AS fresh`,
  );
  const { kept, fresh } = counters.rows[0] as { kept: Record<string, number>; fresh: Record<string, number> };
  expect(kept).toEqual(fresh);
  const stats = await db.pool.query(
    `SELECT p.id FROM pattern_templates p
       LEFT JOIN (SELECT pattern_id, count(*) AS n, count(*) FILTER (WHERE success) AS ok FROM pattern_usage_events GROUP BY 1) e
         ON e.pattern_id = p.id
      WHERE p.usage_count <> coalesce(e.n, 0) OR p.success_count <> coalesce(e.ok, 0)`,
  );
  expect(stats.rows).toEqual([]);
}

/** Global reads of random periods, not aligned to hours or days, against brute force. */
async function checkReads(startHour: number, lengthMinutes: number): Promise<void> {
  const start = new Date(BASE + startHour * HOUR + 17 * 60_000 + 123);
  const end = new Date(start.getTime() + lengthMinutes * 60_000);
  const byDay = await db.pool.query(
    `SELECT (SELECT json_agg(x ORDER BY x.day) FROM (SELECT day, usage_count, success_count, execution_time_sum,
                   execution_time_count, quality_improvement_sum, quality_improvement_count
              FROM usage_global_by_day($1, $2)) x) AS kept,
            (SELECT json_agg(y ORDER BY y.day) FROM (SELECT (used_at AT TIME ZONE 'UTC')::date AS day, count(*)::numeric AS usage_count,
                   count(*) FILTER (WHERE success)::numeric AS success_count,
                   coalesce(sum(execution_time_ms), 0) AS execution_time_sum, count(execution_time_ms)::numeric AS execution_time_count,
                   coalesce(sum(quality_improvement), 0) AS quality_improvement_sum,
                   count(quality_improvement)::numeric AS quality_improvement_count
              FROM pattern_usage_events WHERE used_at >= $1 AND used_at < $2 GROUP BY 1) y) AS fresh`,
    [start, end],
  );
  const row = byDay.rows[0] as { kept: unknown; fresh: unknown };
  expect(row.kept).toEqual(row.fresh);
  // Few candidates per day (k = 1, then 2), so the bound and the full count are both exercised.
  const top = await db.pool.query(
    `SELECT (SELECT json_agg(t) FROM top_used_patterns($1, $2, 3, ARRAY[1, 2]) t) AS kept,
            (SELECT json_agg(b) FROM (SELECT pattern_id, count(*)::numeric AS usage_count,
                    count(*) FILTER (WHERE success)::numeric AS success_count
               FROM pattern_usage_events WHERE used_at >= $1 AND used_at < $2
              GROUP BY pattern_id ORDER BY count(*) DESC, pattern_id LIMIT 3) b) AS fresh`,
    [start, end],
  );
  const t = top.rows[0] as { kept: unknown; fresh: unknown };
  expect(t.kept).toEqual(t.fresh);
  // One pattern's days (and every pattern's, pattern_id null), the partial days read from either side
  // (migration 017: the events inside, or the day's rollup row minus the events outside).
  const perPattern = await db.pool.query<{ id: string | null; kept: unknown; fresh: unknown }>(
    `SELECT p.id,
            (SELECT json_agg(x ORDER BY x.day) FROM usage_by_day($1, $2, p.id) x) AS kept,
            (SELECT json_agg(y ORDER BY y.day) FROM (SELECT (used_at AT TIME ZONE 'UTC')::date AS day,
                   count(*)::numeric AS usage_count, count(*) FILTER (WHERE success)::numeric AS success_count,
                   coalesce(sum(execution_time_ms), 0)::numeric AS execution_time_sum,
                   count(execution_time_ms)::numeric AS execution_time_count,
                   coalesce(sum(quality_improvement), 0)::numeric AS quality_improvement_sum,
                   count(quality_improvement)::numeric AS quality_improvement_count
              FROM pattern_usage_events
             WHERE (p.id IS NULL OR pattern_id = p.id) AND used_at >= $1 AND used_at < $2 GROUP BY 1) y) AS fresh
       FROM (SELECT id FROM pattern_templates UNION ALL SELECT NULL::uuid) p`,
    [start, end],
  );
  for (const r of perPattern.rows) expect({ id: r.id, days: r.kept }).toEqual({ id: r.id, days: r.fresh });
}

it('keeps every rollup equal to a recomputation from the raw rows', async () => {
  const storage = new NodePatternStorageEffect(db.pool);
  const update = new NodePatternUpdateEffect(db.pool);
  await fc.assert(
    fc.asyncProperty(
      fc.array(command, { minLength: 1, maxLength: 10 }),
      fc.nat(24 * 6),
      fc.integer({ min: 1, max: 60 * 24 * 4 }),
      async (commands, startHour, lengthMinutes) => {
        await reset();
        const ids = Array.from({ length: 8 }, () => randomUUID());
        await storage.executeEffect({
          operation: 'batch_insert',
          patterns: ids.map((id, i) => ({
            pattern_id: id,
            pattern_name: `Rollup${i}`,
            pattern_type: 'code',
            language: 'go',
            confidence_score: i % 3 === 0 ? null : i / 10,
          })),
        } as never);
        const sent: { request: never; context: { identity: string; eventTime: Date; validated: true } }[][] =
          [];
        for (const c of commands) {
          if (c.kind === 'batches') {
            const batches = c.batches.map((events) =>
              events.map((e) => ({
                request: {
                  operation: 'record_usage',
                  pattern_id: ids[e.pattern],
                  usage_data: {
                    success: e.success,
                    execution_time_ms: e.ms ?? undefined,
                    quality_before: e.quality ? e.quality[0] / 100 : undefined,
                    quality_after: e.quality ? e.quality[1] / 100 : undefined,
                    used_at: new Date(BASE + e.hour * HOUR + e.minute * 60_000).toISOString(),
                  },
                } as never,
                context: { identity: randomUUID(), eventTime: new Date(BASE), validated: true as const },
              })),
            );
            sent.push(...batches);
            // Concurrent transactions; a batch naming a deleted pattern fails whole (and changes nothing).
            await Promise.all(batches.map((items) => update.recordUsageBatch(items)));
          } else if (c.kind === 'replay') {
            const again = sent[sent.length - 1 - Math.min(c.back, sent.length - 1)];
            if (again) await update.recordUsageBatch(again);
          } else if (c.kind === 'delete') {
            await storage.executeEffect({ operation: 'delete', pattern_id: ids[c.pattern] } as never, {
              identity: randomUUID(),
            });
          } else if (c.kind === 'flags') {
            await db.pool.query(
              'UPDATE pattern_templates SET confidence_score = $2, is_deprecated = $3 WHERE id = $1',
              [ids[c.pattern], c.confidence === null ? null : c.confidence / 100, c.deprecated],
            );
          } else if (c.kind === 'relate') {
            await db.pool.query(
              `INSERT INTO pattern_relationships (source_pattern_id, target_pattern_id, relationship_type)
               SELECT $1, $2, 'similar' WHERE EXISTS (SELECT 1 FROM pattern_templates WHERE id = $1)
                  AND EXISTS (SELECT 1 FROM pattern_templates WHERE id = $2) AND $1 <> $2
               ON CONFLICT DO NOTHING`,
              [ids[c.a], ids[c.b]],
            );
          } else {
            await db.pool.query('SELECT recompute_pattern_stats($1)', [ids[c.pattern]]);
          }
        }
        await checkRollups();
        await checkReads(startHour, lengthMinutes);
      },
    ),
    { numRuns: 40 },
  );
}, 240_000);
