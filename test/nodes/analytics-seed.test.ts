// The analytics reads against the seed's semantics (node_pattern_analytics_effect.py), on a fixture whose
// every figure is computed by hand below. Message time T = 2026-03-10T12:00Z.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  NodePatternAnalyticsEffect,
  NodePatternStorageEffect,
  NodePatternUpdateEffect,
} from '../../src/nodes/index.ts';
import { createTestDatabase, lockTables, type TestDatabase } from '../support/database.ts';

const A = 'aa000000-0000-4000-8000-00000000000a';
const B = 'bb000000-0000-4000-8000-00000000000b';
const C = 'cc000000-0000-4000-8000-00000000000c';
const D = 'dd000000-0000-4000-8000-00000000000d';
const T = { eventTime: new Date('2026-03-10T12:00:00Z') };

let db: TestDatabase;
let analytics: NodePatternAnalyticsEffect;
beforeAll(async () => {
  db = await createTestDatabase();
  analytics = new NodePatternAnalyticsEffect(db.pool);
  const storage = new NodePatternStorageEffect(db.pool);
  const update = new NodePatternUpdateEffect(db.pool);
  const pattern = (id: string, name: string, confidence: number | null) =>
    storage.executeEffect(
      {
        operation: 'insert',
        data: {
          pattern_id: id,
          pattern_name: name,
          pattern_type: 'code',
          language: 'go',
          confidence_score: confidence,
        },
      } as never,
      { identity: `insert-${id}` },
    );
  await pattern(A, 'Alpha', 0.9);
  await pattern(B, 'Beta', 0.5);
  await pattern(C, 'Gamma', null);
  await pattern(D, 'Delta', 0.3);
  await db.pool.query('UPDATE pattern_templates SET is_deprecated = true WHERE id = $1', [B]);
  const use = (id: string, at: string, usage: Record<string, unknown>) =>
    update.executeEffect(
      { operation: 'record_usage', pattern_id: id, usage_data: { ...usage, used_at: at } } as never,
      { identity: `use-${id}-${at}` },
    );
  // A: 3 uses (2 successes; times 100 and 300 ms; improvements 0.2 and 0), B: 1 (deprecated), C: 1 old failure.
  await use(A, '2026-03-09T10:00:00Z', {
    success: true,
    execution_time_ms: 100,
    quality_before: 0.5,
    quality_after: 0.7,
  });
  await use(A, '2026-03-09T11:00:00Z', { success: false, execution_time_ms: 300 });
  await use(A, '2026-03-02T08:00:00Z', { success: true, quality_before: 0.4, quality_after: 0.4 });
  await use(B, '2026-03-09T09:00:00Z', {
    success: true,
    execution_time_ms: 50,
    quality_before: 0.1,
    quality_after: 0.4,
  });
  await use(C, '2025-10-01T00:00:00Z', { success: false });
});
afterAll(async () => db.drop());

async function read(body: Record<string, unknown>) {
  const result = await analytics.executeEffect(body as never, T);
  expect(result.error).toBeNull();
  return JSON.parse(JSON.stringify(result.data)) as never;
}

describe('get_global_stats: all time, as the seed', () => {
  it('answers the seed keys with their meanings, ours beside', async () => {
    const s = (await read({ operation: 'get_global_stats' })) as Record<string, unknown>;
    expect(s).toMatchObject({
      total_patterns: 4,
      active_patterns: 3, // not deprecated (B is)
      total_usage_events: 5,
      patterns_used: 3, // A, B, C
      deprecated_patterns: 1,
      total_relationships: 0,
      success_count: 3,
    });
    expect(s.avg_confidence).toBeCloseTo((0.9 + 0.5 + 0.3) / 3, 12); // C has none
    expect(s.avg_success_rate).toBeCloseTo((2 / 3 + 1 + 0) / 3, 12); // per pattern used
    expect(s.global_success_rate).toBeCloseTo(3 / 5, 12);
    expect(s.average_execution_time_ms).toBeCloseTo(150, 12);
    expect(s.average_quality_improvement).toBeCloseTo(0.5 / 3, 12);
    // v_top_patterns: not deprecated, Wilson order: A (2/3) before C (0/1); D is unused.
    const top = s.top_patterns as Record<string, unknown>[];
    expect(top.map((t) => t.pattern_name)).toEqual(['Alpha', 'Gamma']);
    expect(top[0]).toMatchObject({ usage_count: 3, confidence_score: 0.9, pattern_id: A });
    expect(top[0]?.success_rate).toBeCloseTo(2 / 3, 12);
    // The 30 days before T: A's three uses and B's one.
    expect(s.period).toMatchObject({ usage_count: 4, success_count: 3, success_rate: 0.75 });
  });
});

describe('get_usage_trends: one pattern, the 90 days before T, a list', () => {
  it('per day', async () => {
    const rows = (await read({ operation: 'get_usage_trends', pattern_id: A })) as Record<string, unknown>[];
    expect(rows).toEqual([
      {
        period: '2026-03-02T00:00:00.000Z',
        usage_count: 1,
        success_count: 1,
        success_rate: 1,
        avg_execution_time_ms: null,
        avg_quality_improvement: 0, // zero stays zero
        bucket: '2026-03-02',
        failure_count: 0,
      },
      {
        period: '2026-03-09T00:00:00.000Z',
        usage_count: 2,
        success_count: 1,
        success_rate: 0.5,
        avg_execution_time_ms: 200,
        avg_quality_improvement: 0.2,
        bucket: '2026-03-09',
        failure_count: 1,
      },
    ]);
  });
  it("per month, and C's old use outside the default 90 days", async () => {
    const rows = (await read({
      operation: 'get_usage_trends',
      pattern_id: A,
      aggregate_by: 'month',
    })) as Record<string, number>[];
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      period: '2026-03-01T00:00:00.000Z',
      usage_count: 3,
      success_count: 2,
      avg_execution_time_ms: 200,
    });
    expect(rows[0]?.avg_quality_improvement).toBeCloseTo(0.1, 12);
    expect(await read({ operation: 'get_usage_trends', pattern_id: C })).toEqual([]);
  });
});

describe('get_quality_trends: per pattern per day, all time, newest first', () => {
  it('lists every (pattern, day) with the seed keys', async () => {
    const rows = (await read({ operation: 'get_quality_trends' })) as Record<string, unknown>[];
    expect(
      rows.map((r) => [r.id, r.usage_date, r.usage_count, r.success_rate, r.avg_quality_improvement]),
    ).toEqual([
      [A, '2026-03-09', 2, 0.5, 0.2],
      [B, '2026-03-09', 1, 1, 0.3],
      [A, '2026-03-02', 1, 1, 0],
      [C, '2025-10-01', 1, 0, null],
    ]);
    expect(rows[0]).toMatchObject({
      pattern_name: 'Alpha',
      pattern_type: 'code',
      pattern_id: A,
      quality_samples: 1,
    });
    const one = (await read({ operation: 'get_quality_trends', pattern_id: C })) as unknown[];
    expect(one).toHaveLength(1);
  });
});

describe("get_effectiveness: one pattern's all-time profile", () => {
  it('for a used pattern', async () => {
    const e = (await read({ operation: 'get_effectiveness', pattern_id: A })) as Record<string, unknown>;
    expect(e).toMatchObject({
      pattern_id: A,
      pattern_name: 'Alpha',
      pattern_type: 'code',
      confidence_score: 0.9,
      total_usage: 3,
      successes: 2,
      avg_execution_time_ms: 200,
      first_used: '2026-03-02T08:00:00.000Z',
      last_used: '2026-03-09T11:00:00.000Z',
    });
    expect(e.success_rate).toBeCloseTo(2 / 3, 12);
    expect(e.avg_quality_improvement).toBeCloseTo(0.1, 12);
  });
  it('for an unused one (rate null, not an invented 0), and NOT_FOUND for an unknown one', async () => {
    const e = (await read({ operation: 'get_effectiveness', pattern_id: D })) as Record<string, unknown>;
    expect(e).toMatchObject({
      total_usage: 0,
      successes: 0,
      success_rate: null,
      first_used: null,
      last_used: null,
    });
    const missing = await analytics.executeEffect(
      { operation: 'get_effectiveness', pattern_id: '00000000-0000-4000-8000-000000000000' } as never,
      T,
    );
    expect(missing.error?.code).toBe('NOT_FOUND');
  });
  it('ranks patterns over a period when no pattern is named (ours)', async () => {
    const r = (await read({ operation: 'get_effectiveness', limit: 5 })) as {
      patterns: { pattern_id: string }[];
    };
    expect(r.patterns.map((p) => p.pattern_id)).toEqual([B, A]);
  });
});

describe('compute_analytics: global, the 30 days before T', () => {
  it('totals and top patterns from the rollups', async () => {
    const c = (await read({ operation: 'compute_analytics' })) as Record<string, unknown>;
    expect(c).toMatchObject({
      pattern_id: null,
      total_usage_count: 4,
      success_count: 3,
      failure_count: 1,
      success_rate: 0.75,
    });
    expect((c.top_patterns as { pattern_id: string }[]).map((t) => t.pattern_id)).toEqual([A, B]);
    expect(typeof c.analytics_id).toBe('string');
  });
});

describe('deadline', () => {
  it('cancels a read still running at the caller deadline, in the database', async () => {
    const result = await analytics.executeEffect({ operation: 'get_global_stats' } as never, {
      ...T,
      deadline: Date.now() + 5_000,
    });
    expect(result.success).toBe(true);
    // A transaction holding the tables makes the read wait in the database past its deadline.
    const lock = await lockTables(db.url, [
      'pattern_templates',
      'pattern_usage_daily',
      'usage_global_hourly',
    ]);
    try {
      const started = Date.now();
      const late = await analytics.executeEffect({ operation: 'get_global_stats' } as never, {
        ...T,
        deadline: Date.now() + 300,
      });
      expect(late.error).toMatchObject({
        code: 'DEADLINE_EXCEEDED',
        message: expect.stringContaining('cancelled in the database') as string,
      });
      expect(Date.now() - started).toBeLessThan(3_000);
    } finally {
      await lock.release();
    }
  });
});
