// Scenario "nodes" (issue 3): the four effect nodes alone, on 100,000 patterns and 1,000,000 usage events
// (one hot pattern holds 100,000). Loading is bulk; every measured operation goes through a node.
import type { ModelResult } from '../../src/contracts/results.ts';
import {
  NodePatternAnalyticsEffect,
  NodePatternQueryEffect,
  NodePatternStorageEffect,
  NodePatternUpdateEffect,
} from '../../src/nodes/index.ts';
import { generatePatterns, searchQueries, take, usageEvents } from '../lib/dataset.ts';
import {
  analyze,
  bulkLoadEvents,
  checkStatistics,
  createBenchDatabase,
  identityStoreBytes,
  loadPatterns,
} from '../lib/db.ts';
import { goal, progress, type ScenarioOptions, type ScenarioResult } from '../lib/scenario.ts';
import { fmt, summarize, type LatencySummary } from '../lib/stats.ts';

const SEED = 3;
const DAY = 86_400_000;

/** The seed's targets (Python storage layer) and our goals on this machine, per operation. */
const TARGETS: Record<string, { seedMs?: number; goalP99Ms?: number }> = {
  insert: { seedMs: 50, goalP99Ms: 5 },
  search: { seedMs: 20, goalP99Ms: 10 },
  record_usage: { seedMs: 30, goalP99Ms: 5 },
  record_usage_batch_500: {},
  compute_analytics_hot_30d: { seedMs: 100, goalP99Ms: 10 },
  compute_analytics_global_all: { seedMs: 100, goalP99Ms: 20 },
  compute_analytics_global_30d: { seedMs: 100, goalP99Ms: 20 },
  get_global_stats: { seedMs: 100, goalP99Ms: 20 },
  get_effectiveness_hot: { goalP99Ms: 10 },
  get_by_id: {},
};

async function timed(n: number, warmup: number, fn: (i: number) => Promise<ModelResult | ModelResult[]>) {
  const samples: number[] = [];
  let failures = 0;
  let firstError: unknown;
  for (let i = 0; i < warmup + n; i++) {
    const t0 = performance.now();
    const r = await fn(i);
    const ms = performance.now() - t0;
    const bad = (Array.isArray(r) ? r : [r]).find((x) => !x.success);
    if (bad) {
      failures++;
      firstError ??= bad.error;
    }
    if (i >= warmup) samples.push(ms);
  }
  return { summary: summarize(samples), failures, firstError };
}

export async function nodes(options: ScenarioOptions): Promise<ScenarioResult> {
  const started = Date.now();
  const s = options.smoke
    ? { patterns: 1000, events: 10_000, hot: 1000, ops: 20, batches: 4, batchSize: 100, global: 3 }
    : {
        patterns: 100_000,
        events: 1_000_000,
        hot: 100_000,
        ops: 500,
        batches: 40,
        batchSize: 500,
        global: 20,
      };
  const anchor = new Date();
  const db = await createBenchDatabase('nodes', 4);
  const load: Record<string, number> = {};
  try {
    const patterns = generatePatterns(SEED, s.patterns, anchor);
    const hot = patterns[0] as (typeof patterns)[number];
    let t0 = performance.now();
    let bar = progress('patterns', s.patterns);
    await loadPatterns(db.pool, patterns, (d) => bar.update(d));
    bar.stop();
    load.patternsPerSecond = Math.round(s.patterns / ((performance.now() - t0) / 1000));
    t0 = performance.now();
    bar = progress('usage events', s.events);
    // 90 days of history; the hot pattern's share makes it hold `hot` events.
    await bulkLoadEvents(
      db.pool,
      usageEvents({ seed: SEED, patterns, skew: 0.9, days: 90, anchor, hotShare: s.hot / s.events }),
      s.events,
      { progress: (d) => bar.update(d) },
    );
    bar.stop();
    load.eventsPerSecond = Math.round(s.events / ((performance.now() - t0) / 1000));
    t0 = performance.now();
    await analyze(db.pool);
    load.analyzeSeconds = Math.round(performance.now() - t0) / 1000;
    const { rows: hotRows } = await db.pool.query<{ usage_count: number }>(
      'SELECT usage_count FROM pattern_templates WHERE id = $1',
      [hot.id],
    );
    const problems = await checkStatistics(db.pool, [hot.id, ...patterns.slice(1, 40).map((p) => p.id)]);
    options.log(
      `  loaded ${s.patterns} patterns (${fmt(load.patternsPerSecond, 0)}/s) and ${s.events} events (${fmt(load.eventsPerSecond, 0)}/s); ` +
        `hot pattern holds ${hotRows[0]?.usage_count}; statistics ${problems.length === 0 ? 'consistent' : 'INCONSISTENT'}`,
    );
    if (problems.length > 0)
      throw new Error(`bulk load left statistics inconsistent:\n${problems.join('\n')}`);

    const storage = new NodePatternStorageEffect(db.pool);
    const query = new NodePatternQueryEffect(db.pool);
    const update = new NodePatternUpdateEffect(db.pool);
    // As the worker builds it: top_patterns reused for a minute (ANALYTICS_TOP_PATTERNS_MAX_AGE_MS).
    const analytics = new NodePatternAnalyticsEffect(db.pool, { topPatternsMaxAgeMs: 60_000 });
    const ops: Record<string, LatencySummary & { failures: number; eventsPerSecond?: number }> = {};
    const run = async (
      name: string,
      n: number,
      warmup: number,
      fn: (i: number) => Promise<ModelResult | ModelResult[]>,
    ) => {
      const r = await timed(n, warmup, fn);
      ops[name] = { ...r.summary, failures: r.failures };
      options.log(
        `  ${name.padEnd(30)} p50 ${fmt(r.summary.p50, 2).padStart(7)} ms  p99 ${fmt(r.summary.p99, 2).padStart(7)} ms  (n=${n}${r.failures ? `, ${r.failures} FAILED: ${JSON.stringify(r.firstError)}` : ''})`,
      );
    };
    const ctx = (identity: string) => ({ identity, eventTime: new Date() });

    const fresh = generatePatterns(SEED + 1, s.ops + 20, anchor);
    await run('insert', s.ops, 20, (i) => {
      const p = fresh[i] as (typeof fresh)[number];
      return storage.executeEffect(
        {
          operation: 'insert',
          data: {
            pattern_name: `${p.pattern_name}Bench${i}`,
            pattern_type: p.pattern_type,
            language: p.language,
            category: p.category,
            template_code: p.template_code,
            description: p.description,
            confidence_score: p.confidence_score,
            tags: p.tags,
            context: p.context,
          },
        } as never,
        ctx(`bench/insert/${i}`),
      );
    });

    const queries = searchQueries(SEED, s.ops + 20);
    await run('search', s.ops, 20, (i) =>
      query.executeEffect({ operation: 'search', limit: 10, ...(queries[i] as object) } as never),
    );
    await run('get_by_id', s.ops, 20, (i) =>
      query.executeEffect({
        operation: 'get_by_id',
        pattern_id: (patterns[(i * 7919) % patterns.length] as { id: string }).id,
      } as never),
    );

    // New events follow the same popularity (the hot pattern included), dated now.
    const live = usageEvents({
      seed: SEED + 2,
      patterns,
      skew: 0.9,
      days: 1,
      anchor,
      hotShare: s.hot / s.events,
    });
    const single = take(live, s.ops + 20);
    await run('record_usage', s.ops, 20, (i) =>
      update.executeEffect(
        { operation: 'record_usage', ...(single[i] as object) } as never,
        ctx(`bench/usage/${i}`),
      ),
    );

    const batchEvents = take(live, (s.batches + 2) * s.batchSize);
    const batchOf = (b: number) =>
      batchEvents.slice(b * s.batchSize, (b + 1) * s.batchSize).map((e, k) => ({
        request: { operation: 'record_usage' as const, ...e },
        context: { ...ctx(`bench/batch/${b}/${k}`), validated: true },
      }));
    const tb = performance.now();
    await run(`record_usage_batch_${s.batchSize}`, s.batches, 2, (b) => update.recordUsageBatch(batchOf(b)));
    const batchSeconds = (performance.now() - tb) / 1000;
    const batchKey = `record_usage_batch_${s.batchSize}`;
    const batchStats = ops[batchKey] as LatencySummary & { eventsPerSecond?: number };
    // Throughput from the measured batches only (the median batch time is the steadier figure).
    batchStats.eventsPerSecond = Math.round(s.batchSize / (batchStats.p50 / 1000));
    options.log(
      `  batch record_usage: ${fmt(batchStats.eventsPerSecond, 0)} events/s at the median batch (${fmt(((s.batches + 2) * s.batchSize) / batchSeconds, 0)}/s overall incl. warm-up)`,
    );

    await run('compute_analytics_hot_30d', s.ops / 5, 5, () =>
      analytics.executeEffect({ operation: 'compute_analytics', pattern_id: hot.id } as never, {
        eventTime: new Date(),
      }),
    );
    const allPeriod = {
      period_start: new Date(anchor.getTime() - 91 * DAY).toISOString(),
      period_end: new Date(Date.now() + 60_000).toISOString(),
    };
    await run('compute_analytics_global_all', s.global, 2, () =>
      analytics.executeEffect({ operation: 'compute_analytics', ...allPeriod } as never, {
        eventTime: new Date(),
      }),
    );
    await run('compute_analytics_global_30d', s.global, 2, () =>
      analytics.executeEffect({ operation: 'compute_analytics' } as never, { eventTime: new Date() }),
    );
    await run('get_global_stats', s.ops / 5, 2, () =>
      analytics.executeEffect({ operation: 'get_global_stats' } as never, { eventTime: new Date() }),
    );
    await run('get_effectiveness_hot', s.ops / 5, 2, () =>
      analytics.executeEffect({ operation: 'get_effectiveness', pattern_id: hot.id } as never, {
        eventTime: new Date(),
      }),
    );
    const { rows: daily } = await db.pool.query<{ rows: number; events: number }>(
      'SELECT count(*) AS rows, sum(usage_count) AS events FROM pattern_usage_daily',
    );
    // Last, as it rewrites the identity records: what one usage event costs in processed_messages.
    const identityStore = await identityStoreBytes(db.pool, 'record_usage');
    const identityLine =
      `identity store per usage event: ${identityStore.rowBytesBefore} B before pruning ` +
      `(result JSON ${identityStore.resultBytesBefore} B), ${identityStore.rowBytesAfter} B after ` +
      `(result ${identityStore.resultBytesAfter} B), over ${identityStore.records} records; plus the primary key`;
    options.log(`  ${identityLine}`);

    const goals = [
      goal('insert p99', '<= 5 ms', ops.insert?.p99 ?? null, 'ms', (ops.insert?.p99 ?? Infinity) <= 5),
      goal('search p99', '<= 10 ms', ops.search?.p99 ?? null, 'ms', (ops.search?.p99 ?? Infinity) <= 10),
      goal(
        'record_usage p99',
        '<= 5 ms',
        ops.record_usage?.p99 ?? null,
        'ms',
        (ops.record_usage?.p99 ?? Infinity) <= 5,
      ),
      goal(
        'batch record_usage',
        '>= 50,000 events/s',
        batchStats.eventsPerSecond,
        'events/s',
        batchStats.eventsPerSecond >= 50_000,
      ),
      goal(
        'compute_analytics, hot pattern, 30 days, p99',
        '<= 10 ms',
        ops.compute_analytics_hot_30d?.p99 ?? null,
        'ms',
        (ops.compute_analytics_hot_30d?.p99 ?? Infinity) <= 10,
      ),
      goal(
        'compute_analytics, global, all events, p99',
        '<= 20 ms',
        ops.compute_analytics_global_all?.p99 ?? null,
        'ms',
        (ops.compute_analytics_global_all?.p99 ?? Infinity) <= 20,
      ),
      goal(
        'compute_analytics, global, 30 days, p99',
        '<= 20 ms',
        ops.compute_analytics_global_30d?.p99 ?? null,
        'ms',
        (ops.compute_analytics_global_30d?.p99 ?? Infinity) <= 20,
      ),
      goal(
        'get_global_stats p99',
        '<= 20 ms',
        ops.get_global_stats?.p99 ?? null,
        'ms',
        (ops.get_global_stats?.p99 ?? Infinity) <= 20,
      ),
      goal(
        'get_effectiveness, one pattern, p99',
        '<= 10 ms',
        ops.get_effectiveness_hot?.p99 ?? null,
        'ms',
        (ops.get_effectiveness_hot?.p99 ?? Infinity) <= 10,
      ),
    ];
    for (const [name, o] of Object.entries(ops)) {
      const t = TARGETS[name.startsWith('record_usage_batch') ? 'record_usage_batch_500' : name];
      if (t?.seedMs && o.p99 > t.seedMs)
        goals.push(goal(`${name} p99 within the seed's target`, `< ${t.seedMs} ms`, o.p99, 'ms', false));
    }
    return {
      scenario: 'nodes',
      smoke: options.smoke,
      startedAt: new Date(started).toISOString(),
      durationS: Math.round((Date.now() - started) / 100) / 10,
      params: { ...s, seed: SEED, zipfExponent: 0.9, historyDays: 90 },
      figures: {
        load,
        hotPatternEvents: hotRows[0]?.usage_count,
        dailyRollupRows: daily[0]?.rows,
        dailyRollupEvents: daily[0]?.events,
        identityStore,
        ops,
        targets: TARGETS,
      },
      goals,
      summary: [
        ...Object.entries(ops).map(([name, o]) => {
          const t = TARGETS[name.startsWith('record_usage_batch') ? 'record_usage_batch_500' : name] ?? {};
          return (
            `${name.padEnd(30)} p50 ${fmt(o.p50, 2).padStart(7)} ms  p99 ${fmt(o.p99, 2).padStart(7)} ms` +
            (t.seedMs ? `  seed target < ${t.seedMs} ms` : '') +
            (t.goalP99Ms ? `  goal p99 <= ${t.goalP99Ms} ms` : '') +
            (o.eventsPerSecond ? `  ${fmt(o.eventsPerSecond, 0)} events/s` : '')
          );
        }),
        identityLine,
      ],
    };
  } finally {
    await db.drop();
  }
}
