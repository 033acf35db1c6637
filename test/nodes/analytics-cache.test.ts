// Global analytics reads answered from one computation for a bounded freshness (ANALYTICS_RESULT_MAX_AGE_MS),
// stating metadata.as_of; reads of one pattern, writes and failures never cached; max_age_ms bypasses.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  NodePatternAnalyticsEffect,
  NodePatternStorageEffect,
  NodePatternUpdateEffect,
} from '../../src/nodes/index.ts';
import type { ModelResult } from '../../src/contracts/results.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';

const P = 'ee000000-0000-4000-8000-00000000000e';
const T = new Date('2026-04-10T12:00:00Z');
const PERIOD = { period_start: '2026-04-01T00:00:00Z', period_end: '2026-04-11T00:00:00Z' };

let db: TestDatabase;
let update: NodePatternUpdateEffect;
beforeAll(async () => {
  db = await createTestDatabase();
  update = new NodePatternUpdateEffect(db.pool);
  await new NodePatternStorageEffect(db.pool).executeEffect(
    {
      operation: 'insert',
      data: { pattern_id: P, pattern_name: 'Cached', pattern_type: 'code', language: 'go' },
    } as never,
    { identity: 'insert-cached' },
  );
  await use();
});
afterAll(async () => db.drop());

/** One more usage event of P, inside PERIOD. */
async function use(): Promise<void> {
  const r = await update.executeEffect(
    {
      operation: 'record_usage',
      pattern_id: P,
      usage_data: { success: true, used_at: '2026-04-09T10:00:00Z' },
    } as never,
    { identity: randomUUID() },
  );
  expect(r.error).toBeNull();
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const node = (resultMaxAgeMs: number, topPatternsMaxAgeMs = 0) =>
  new NodePatternAnalyticsEffect(db.pool, { resultMaxAgeMs, topPatternsMaxAgeMs });

const events = (r: ModelResult) => (r.data as { total_usage_events: number }).total_usage_events;
const periodUsage = (r: ModelResult) => (r.data as { period: { usage_count: number } }).period.usage_count;

describe('global reads within the freshness bound', () => {
  it('answers identical global reads from one computation, stating when it was read', async () => {
    const analytics = node(60_000);
    const before = Date.now();
    const first = await analytics.executeEffect({ operation: 'get_global_stats', ...PERIOD } as never, {
      eventTime: T,
    });
    expect(first.error).toBeNull();
    expect(first.metadata.cached).toBeUndefined();
    const asOf = Date.parse(first.metadata.as_of ?? '');
    expect(asOf).toBeGreaterThanOrEqual(before);
    expect(asOf).toBeLessThanOrEqual(Date.now());
    expect(first.data).not.toHaveProperty('top_patterns_as_of');

    await use();
    const second = await analytics.executeEffect(
      { operation: 'get_global_stats', ...PERIOD, correlation_id: randomUUID() } as never,
      { eventTime: T },
    );
    expect(second.metadata).toMatchObject({ cached: true, as_of: first.metadata.as_of });
    expect(second.metadata.correlation_id).not.toBe(first.metadata.correlation_id);
    expect(JSON.stringify(second.data)).toBe(JSON.stringify(first.data));

    // max_age_ms: 0 reads now, and sees the event recorded since.
    const now = await analytics.executeEffect(
      { operation: 'get_global_stats', ...PERIOD, max_age_ms: 0 } as never,
      { eventTime: T },
    );
    expect(now.metadata.cached).toBeUndefined();
    expect(events(now)).toBe(events(first) + 1);
    expect(periodUsage(now)).toBe(periodUsage(first) + 1);
    expect(Date.parse(now.metadata.as_of ?? '')).toBeGreaterThan(asOf);

    // Another period is another question.
    const other = await analytics.executeEffect(
      {
        operation: 'get_global_stats',
        period_start: PERIOD.period_start,
        period_end: '2026-04-10T00:00:00Z',
      } as never,
      { eventTime: T },
    );
    expect(other.metadata.cached).toBeUndefined();
  });

  it('computes again once the answer is older than the bound (or than the max_age_ms asked)', async () => {
    const analytics = node(2_000);
    const request = { operation: 'get_usage_trends', ...PERIOD } as never;
    const first = await analytics.executeEffect(request, { eventTime: T });
    const total = (r: ModelResult) =>
      (r.data as { usage_count: number }[]).reduce((n, b) => n + b.usage_count, 0);
    await use();
    const hit = await analytics.executeEffect(request, { eventTime: T });
    expect(hit.metadata.cached).toBe(true);
    expect(total(hit)).toBe(total(first));
    const stricter = await analytics.executeEffect(
      { operation: 'get_usage_trends', ...PERIOD, max_age_ms: 1 } as never,
      { eventTime: T },
    );
    expect(stricter.metadata.cached).toBeUndefined();
    expect(total(stricter)).toBe(total(first) + 1);
    await use();
    await sleep(2_100);
    const later = await analytics.executeEffect(request, { eventTime: T });
    expect(later.metadata.cached).toBeUndefined();
    expect(total(later)).toBe(total(first) + 2);
  });

  it('computes the next answer ahead, in the background, once half the bound has passed', async () => {
    const analytics = node(3_000);
    const request = { operation: 'get_global_stats', ...PERIOD } as never;
    const first = await analytics.executeEffect(request, { eventTime: T });
    await use();
    await sleep(1_600);
    // Still within the bound: answered at once from the old computation, which starts the next one.
    const stale = await analytics.executeEffect(request, { eventTime: T });
    expect(stale.metadata).toMatchObject({ cached: true, as_of: first.metadata.as_of });
    expect(events(stale)).toBe(events(first));
    let next = stale;
    for (let i = 0; i < 300 && next.metadata.as_of === first.metadata.as_of; i++) {
      await sleep(10);
      next = await analytics.executeEffect(request, { eventTime: T });
    }
    // The answer computed ahead: newer, with the event recorded since, and no reader computed it.
    expect(next.metadata.cached).toBe(true);
    expect(events(next)).toBe(events(first) + 1);
    expect(Date.parse(next.metadata.as_of ?? '')).toBeGreaterThan(Date.parse(first.metadata.as_of ?? ''));
  });

  it('runs one computation for concurrent identical reads', async () => {
    const analytics = node(60_000);
    const results = await Promise.all(
      Array.from({ length: 6 }, () =>
        analytics.executeEffect({ operation: 'get_effectiveness', ...PERIOD, limit: 5 } as never, {
          eventTime: T,
        }),
      ),
    );
    expect(results.every((r) => r.success)).toBe(true);
    expect(results.filter((r) => r.metadata.cached !== true)).toHaveLength(1);
    expect(new Set(results.map((r) => r.metadata.as_of)).size).toBe(1);
    expect(new Set(results.map((r) => JSON.stringify(r.data))).size).toBe(1);
  });

  it('reuses no failure: a read cancelled by its deadline is computed by the next caller', async () => {
    const analytics = node(60_000);
    const request = { operation: 'get_quality_trends', ...PERIOD } as never;
    const late = await analytics.executeEffect(request, { eventTime: T, deadline: Date.now() - 1 });
    expect(late.error?.code).toBe('DEADLINE_EXCEEDED');
    expect(late.metadata.as_of).toBeUndefined();
    const next = await analytics.executeEffect(request, { eventTime: T });
    expect(next.error).toBeNull();
    expect(next.metadata.cached).toBeUndefined();
  });
});

/** The test database's pool, counting the connections taken (one per computation), each `delayMs` late. */
function countingPool(delayMs = 0): { pool: typeof db.pool; computations: () => number } {
  let n = 0;
  const pool = new Proxy(db.pool, {
    get(target, prop) {
      if (prop === 'connect')
        return async () => {
          n++;
          if (delayMs > 0) await sleep(delayMs);
          return target.connect();
        };
      const value: unknown = Reflect.get(target, prop);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
  return { pool, computations: () => n };
}

/**
 * A read and whether it was answered without waiting for any I/O (so for no computation): resolved before
 * a setImmediate queued when it started, which runs once the event loop has polled for I/O.
 */
async function timedRead(
  analytics: NodePatternAnalyticsEffect,
  request: unknown,
): Promise<{ result: ModelResult; atOnce: boolean; ageMs: number }> {
  let polled = false;
  setImmediate(() => (polled = true));
  const result = await analytics.executeEffect(request as never, { eventTime: T });
  const atOnce = !polled;
  return { result, atOnce, ageMs: Date.now() - Date.parse(result.metadata.as_of ?? '') };
}

describe('refresh-ahead (ANALYTICS_REFRESH_AHEAD_MS)', () => {
  const MAX_AGE = 200;

  it('answers a key polled less often than the max age from the cache after its first read', async () => {
    const { pool, computations } = countingPool();
    // No pause between refreshes: at this test's 200 ms bound, a computation slowed past 25 ms by a loaded
    // host would otherwise be held back by the duty bound (tested below), which a real bound of seconds
    // is not.
    const analytics = new NodePatternAnalyticsEffect(pool, {
      resultMaxAgeMs: MAX_AGE,
      refreshAheadMs: 2_000,
      refreshDuty: 1,
    });
    try {
      const request = { operation: 'get_global_stats', ...PERIOD };
      const first = await timedRead(analytics, request);
      expect(first.result.metadata.cached).toBeUndefined();
      expect(computations()).toBeGreaterThanOrEqual(1);
      const reads = [];
      // Intervals longer than the max age (and shorter): each read finds an answer computed ahead.
      for (const interval of [350, 450, 50, 50, 300, 500, 120, 350]) {
        await sleep(interval);
        await use();
        reads.push(await timedRead(analytics, request));
      }
      for (const { result, atOnce, ageMs } of reads) {
        expect(result.error).toBeNull();
        expect(result.metadata.cached).toBe(true);
        expect(atOnce).toBe(true);
        expect(ageMs).toBeLessThanOrEqual(MAX_AGE);
      }
      // Computed ahead, so newer than the first answer: it sees usage recorded since.
      expect(events(reads.at(-1)!.result)).toBeGreaterThan(events(first.result));
      // Bounded: at most one computation per half the max age (plus the first).
      const elapsed = 350 + 450 + 50 + 50 + 300 + 500 + 120 + 350;
      expect(computations()).toBeLessThanOrEqual(Math.ceil(elapsed / (MAX_AGE / 2)) + 2);
    } finally {
      analytics.stopRefreshing();
    }
  });

  it('keeps background refreshes to a quarter of the time, however many keys producers ask for', async () => {
    // Every computation takes at least 100 ms; 8 keys due every 100 ms would keep a connection busy.
    const { pool, computations } = countingPool(100);
    const analytics = new NodePatternAnalyticsEffect(pool, {
      resultMaxAgeMs: MAX_AGE,
      refreshAheadMs: 10_000,
    });
    try {
      const keys = Array.from({ length: 8 }, (_, i) => ({
        operation: 'get_effectiveness',
        period_start: `2026-04-0${i + 1}T00:00:00Z`,
        period_end: '2026-04-11T00:00:00Z',
      }));
      for (const request of keys) await timedRead(analytics, request);
      const read = computations();
      await sleep(3_000);
      // A refresh of at least 100 ms, then a rest three times as long: at most 3000 / 400 of them.
      const background = computations() - read;
      expect(background).toBeGreaterThan(0);
      expect(background).toBeLessThanOrEqual(Math.ceil(3_000 / 400) + 1);
    } finally {
      analytics.stopRefreshing();
    }
  });

  it('stops refreshing a key not read for refreshAheadMs; its next read computes', async () => {
    const { pool, computations } = countingPool();
    const analytics = new NodePatternAnalyticsEffect(pool, { resultMaxAgeMs: MAX_AGE, refreshAheadMs: 600 });
    try {
      const request = { operation: 'get_usage_trends', ...PERIOD };
      await timedRead(analytics, request);
      await sleep(400);
      // Refreshed while read recently, at most one computation per half the max age.
      const whileHot = computations();
      expect(whileHot).toBeGreaterThanOrEqual(3);
      expect(whileHot).toBeLessThanOrEqual(Math.ceil(400 / (MAX_AGE / 2)) + 1);
      // 600 ms after the read, plus one more refresh that may have been due then.
      await sleep(200 + MAX_AGE);
      const cold = computations();
      await sleep(800);
      expect(computations()).toBe(cold);
      // Its answer expired: the next read computes, and the key is refreshed again after it.
      const again = await timedRead(analytics, request);
      expect(again.result.metadata.cached).toBeUndefined();
      // Counted, not timed: under load a computation can finish before the event loop's next check phase.
      expect(computations()).toBeGreaterThan(cold);
      await sleep(350);
      const hit = await timedRead(analytics, request);
      expect(hit.result.metadata.cached).toBe(true);
      expect(hit.atOnce).toBe(true);
      expect(hit.ageMs).toBeLessThanOrEqual(MAX_AGE);
    } finally {
      analytics.stopRefreshing();
    }
  });

  it('a read that finds its answer expired while a refresh runs waits for that refresh (single flight)', async () => {
    // Each computation takes at least 150 ms: the refresh due at half the first answer's age starts as the
    // first ends, and the first answer expires while it runs.
    const { pool, computations } = countingPool(150);
    const analytics = new NodePatternAnalyticsEffect(pool, {
      resultMaxAgeMs: MAX_AGE,
      refreshAheadMs: 2_000,
    });
    try {
      const request = { operation: 'get_effectiveness', ...PERIOD, limit: 3 };
      const first = await timedRead(analytics, request);
      const firstAsOf = Date.parse(first.result.metadata.as_of ?? '');
      expect(computations()).toBe(2);
      await sleep(firstAsOf + MAX_AGE + 10 - Date.now());
      const joined = await Promise.all([timedRead(analytics, request), timedRead(analytics, request)]);
      // Neither computed (a reader's own computation is not `cached`); both waited for the refresh.
      expect(computations()).toBeLessThanOrEqual(3);
      for (const { result, atOnce, ageMs } of joined) {
        expect(result.metadata.cached).toBe(true);
        expect(atOnce).toBe(false);
        expect(ageMs).toBeLessThanOrEqual(MAX_AGE);
        expect(Date.parse(result.metadata.as_of ?? '')).toBeGreaterThan(firstAsOf);
      }
      expect(joined[0].result.metadata.as_of).toBe(joined[1].result.metadata.as_of);
    } finally {
      analytics.stopRefreshing();
    }
  });
});

describe('never cached', () => {
  it('reads of one pattern: each states its own as_of and sees the latest usage', async () => {
    const analytics = node(60_000);
    const request = { operation: 'get_effectiveness', pattern_id: P } as never;
    const first = await analytics.executeEffect(request, { eventTime: T });
    await use();
    const second = await analytics.executeEffect(request, { eventTime: T });
    expect(second.metadata.cached).toBeUndefined();
    expect(second.metadata.as_of).toBeDefined();
    expect((second.data as { total_usage: number }).total_usage).toBe(
      (first.data as { total_usage: number }).total_usage + 1,
    );
  });

  it('compute_analytics, a write stored per message: computed every time, no as_of', async () => {
    const analytics = node(60_000);
    const run = () =>
      analytics.executeEffect({ operation: 'compute_analytics', ...PERIOD } as never, {
        eventTime: T,
        identity: randomUUID(),
      });
    const first = await run();
    await use();
    const second = await run();
    expect(second.metadata.cached).toBeUndefined();
    expect(second.metadata.as_of).toBeUndefined();
    const n = (r: ModelResult) => Number((r.data as { total_usage_count: unknown }).total_usage_count);
    expect(n(second)).toBe(n(first) + 1);
  });

  it('compute_analytics of an unknown pattern: NOT_FOUND, nothing stored', async () => {
    const missing = randomUUID();
    const r = await node(60_000).executeEffect(
      { operation: 'compute_analytics', pattern_id: missing, ...PERIOD } as never,
      { eventTime: T, identity: randomUUID() },
    );
    expect(r.error?.code).toBe('NOT_FOUND');
    const { rows } = await db.pool.query('SELECT 1 FROM pattern_analytics WHERE pattern_id = $1', [missing]);
    expect(rows).toEqual([]);
  });

  it('invalid requests are refused by name, as by every node', async () => {
    const r = await node(60_000).executeEffect({ operation: 'get_global_stats', max_age_ms: -1 } as never);
    expect(r.error?.code).toBe('VALIDATION_ERROR');
    expect(r.error?.message).toContain('max_age_ms');
  });
});

describe('get_global_stats: as_of covers the reused top patterns', () => {
  it('is never later than when the reused top_patterns were read', async () => {
    const analytics = node(0, 60_000);
    const first = await analytics.executeEffect({ operation: 'get_global_stats' } as never, { eventTime: T });
    await sleep(30);
    const startedSecond = Date.now();
    const second = await analytics.executeEffect({ operation: 'get_global_stats' } as never, {
      eventTime: T,
    });
    expect(second.metadata.cached).toBeUndefined();
    const asOf = Date.parse(second.metadata.as_of ?? '');
    // The top patterns were read during the first call; the totals now.
    expect(asOf).toBeLessThan(startedSecond);
    expect(asOf).toBeGreaterThanOrEqual(Date.parse(first.metadata.as_of ?? ''));
    expect(second.data).not.toHaveProperty('top_patterns_as_of');
  });
});
