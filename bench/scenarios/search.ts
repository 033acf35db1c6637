// Scenario "search": PatternClient.search round trips against 100,000 patterns at a fixed offered load
// (open loop), then a ramp to the highest load that keeps p99 under 50 ms. Baselines on the same data
// and queries: the Kafka floor (echo service, no database) and the query floor (the SQL through pg).
import { fileURLToPath } from 'node:url';
import type { Kafka } from 'kafkajs';
import { PatternClient } from '../../src/client/index.ts';
import type { TopicNames } from '../../src/contracts/topics.ts';
import { searchDirect, searchPlan } from '../baselines/query-floor.ts';
import { generatePatterns, searchQueries } from '../lib/dataset.ts';
import { analyze, createBenchDatabase, loadPatterns } from '../lib/db.ts';
import { benchKafka, BROKERS, createBenchTopics, deleteBenchTopics, waitForDrain } from '../lib/kafka.ts';
import { openLoop, type LoadResult } from '../lib/load.ts';
import { serviceCpuSeconds, spawnNode, type Child } from '../lib/proc.ts';
import { goal, progress, type ScenarioOptions, type ScenarioResult } from '../lib/scenario.ts';
import { fmt, spread, summarize, type LatencySummary, type Spread } from '../lib/stats.ts';
import { WORKER_CLI, workerEnv } from './ingestion.ts';

const SEED = 5;
const ECHO = fileURLToPath(new URL('../baselines/kafka-echo.ts', import.meta.url));

interface Measured {
  runs: (LatencySummary & { errors: number; maxLagMs: number })[];
  p50: Spread;
  p90: Spread;
  p99: Spread;
  p999: Spread;
  /** Percentiles over all runs' samples together, for the chart. */
  pooled: LatencySummary;
  /** Latency at these percentiles, pooled, for the distribution chart. */
  curve: { p: number; ms: number }[];
}

/** CPU per search sent (µs), over a run and the drain of its backlog: the worker's, the database's and the
 * broker's (every process of each on this machine). */
interface CpuPerSearch {
  cpuUsPerSearch: number;
  databaseCpuUsPerSearch: number;
  brokerCpuUsPerSearch: number;
}

/** With the CPU per search, where it was measured. */
type WithCpu = Measured & { [K in keyof CpuPerSearch]?: Spread };

const CURVE = [10, 25, 50, 75, 90, 95, 99, 99.9];

function measured(results: LoadResult[]): Measured {
  const runs = results.map((r) => ({ ...summarize(r.latencies), errors: r.errors, maxLagMs: r.maxLagMs }));
  const all = results.flatMap((r) => r.latencies).sort((a, b) => a - b);
  const at = (p: number) =>
    all[Math.min(all.length - 1, Math.max(0, Math.ceil((p / 100) * all.length) - 1))] ?? NaN;
  return {
    runs,
    p50: spread(runs.map((r) => r.p50)),
    p90: spread(runs.map((r) => r.p90)),
    p99: spread(runs.map((r) => r.p99)),
    p999: spread(runs.map((r) => r.p999)),
    pooled: summarize(all),
    curve: CURVE.map((p) => ({ p, ms: Math.round(at(p) * 100) / 100 })),
  };
}

/** One measured run at `rate`, then the drain of its backlog: the worker's CPU over both, per search sent
 * (µs; steadier than latency on a shared machine, where an overloaded run's latency is mostly queue). */
async function measuredRun(
  child: Child,
  run: () => Promise<LoadResult>,
  drain: () => Promise<unknown>,
): Promise<LoadResult & CpuPerSearch> {
  const cpu0 = child.sample().cpuSeconds;
  const services0 = serviceCpuSeconds();
  const res = await run();
  await drain();
  const services1 = serviceCpuSeconds();
  const perSearch = (seconds: number) => Math.round((seconds * 1e6) / Math.max(1, res.sent));
  return {
    ...res,
    cpuUsPerSearch: perSearch(child.sample().cpuSeconds - cpu0),
    databaseCpuUsPerSearch: perSearch(services1.database - services0.database),
    brokerCpuUsPerSearch: perSearch(services1.broker - services0.broker),
  };
}

/** A build under measurement: its worker, how a search reaches it, and how to wait out its backlog. */
interface Contender {
  label: string;
  child: Child;
  send: Parameters<typeof openLoop>[2];
  drain: () => Promise<unknown>;
}

/**
 * `runs` measured runs of each build at `rate`, interleaved (run r of every build, the first one rotating),
 * so that a slow minute of a shared machine falls on all of them alike; each run logged with its CPU.
 */
async function interleavedRuns(
  contenders: readonly Contender[],
  rate: number,
  o: { runs: number; seconds: number; log: (line: string) => void },
): Promise<WithCpu[]> {
  const results = contenders.map(() => [] as (LoadResult & CpuPerSearch)[]);
  for (let r = 0; r < o.runs; r++) {
    for (let j = 0; j < contenders.length; j++) {
      const at = (r + j) % contenders.length;
      const c = contenders[at] as Contender;
      const res = await measuredRun(c.child, () => openLoop(rate, o.seconds, c.send), c.drain);
      results[at]?.push(res);
      const m = summarize(res.latencies);
      o.log(
        `    ${c.label} at ${rate}/s run ${r + 1}/${o.runs}: p50 ${fmt(m.p50, 2)} p90 ${fmt(m.p90, 2)} p99 ${fmt(m.p99, 2)} p99.9 ${fmt(m.p999, 2)} ms, ${res.errors} errors${res.firstError ? ` (${res.firstError.slice(0, 80)})` : ''}; CPU per search: worker ${res.cpuUsPerSearch}, database ${res.databaseCpuUsPerSearch}, broker ${res.brokerCpuUsPerSearch} µs`,
      );
    }
  }
  return results.map((rs) => ({
    ...measured(rs),
    cpuUsPerSearch: spread(rs.map((r) => r.cpuUsPerSearch)),
    databaseCpuUsPerSearch: spread(rs.map((r) => r.databaseCpuUsPerSearch)),
    brokerCpuUsPerSearch: spread(rs.map((r) => r.brokerCpuUsPerSearch)),
  }));
}

/** Waits until a worker's reads lane (its own consumer group, <KAFKA_GROUP_ID>.reads, as workerEnv names
 * it) has committed every search request sent to `names`. */
function searchBacklogDrain(kafka: Kafka, names: TopicNames, timeoutMs: number): () => Promise<boolean> {
  return () =>
    waitForDrain(kafka, `${names.prefix}worker.reads`, names.request('pattern.search.request'), timeoutMs);
}

/** The worker's pattern_worker_deadline_exceeded_total, summed, from its /metrics. */
async function deadlineCount(worker: Child): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${worker.port}/metrics`)).text();
  let total = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith('pattern_worker_deadline_exceeded_total')) total += Number(line.split(' ').pop());
  }
  return total;
}

interface OverloadStep {
  sent: number;
  answered: number;
  deadlineExceeded: number;
  timedOutOrFailed: number;
  answeredP99: number;
}
type Overload = { rate: number; withDeadlines: OverloadStep; withoutDeadlines: OverloadStep };

/** Report-only lines for the overload step: what deadlines change for the answered requests. */
function overloadGoals(o: Overload | undefined) {
  if (!o) return [];
  const share = (n: number, of: number) => (of > 0 ? (100 * n) / of : NaN);
  const on = o.withDeadlines;
  const off = o.withoutDeadlines;
  return [
    goal(
      `overload ${o.rate}/s with deadlines: answered p99`,
      'report',
      on.answeredP99,
      'ms',
      null,
      `${fmt(share(on.deadlineExceeded, on.sent), 1)}% not run (DEADLINE_EXCEEDED), ${fmt(share(on.timedOutOrFailed, on.sent), 1)}% timed out at the caller`,
    ),
    goal(
      `overload ${o.rate}/s without deadlines: answered p99`,
      'report',
      off.answeredP99,
      'ms',
      null,
      `${fmt(share(off.timedOutOrFailed, off.sent), 1)}% timed out at the caller`,
    ),
  ];
}

/** Ours against another build measured in the same run (BENCH_COMPARE_WORKER_SCRIPT): no worse. */
function compareGoals(ours: WithCpu, other: (WithCpu & { label: string }) | undefined, rate: number) {
  if (!other) return [];
  const p50 = ours.p50.median / other.p50.median;
  const p99 = ours.p99.median / other.p99.median;
  const cpuOurs = ours.cpuUsPerSearch?.median;
  const cpuOther = other.cpuUsPerSearch?.median;
  return [
    ...(cpuOurs !== undefined && cpuOther !== undefined
      ? [
          goal(
            `worker CPU per search at ${rate}/s vs ${other.label} (same run)`,
            '<= 1x',
            cpuOurs / cpuOther,
            'x',
            cpuOurs <= cpuOther,
            `${fmt(cpuOurs, 0)} µs vs ${fmt(cpuOther, 0)} µs per search`,
          ),
        ]
      : []),
    goal(
      `search p50 at ${rate}/s vs ${other.label} (same run)`,
      '<= 1x',
      p50,
      'x',
      p50 <= 1,
      `${fmt(ours.p50.median, 2)} ms vs ${fmt(other.p50.median, 2)} ms`,
    ),
    goal(
      `search p99 at ${rate}/s vs ${other.label} (same run)`,
      '<= 1x',
      p99,
      'x',
      p99 <= 1,
      `${fmt(ours.p99.median, 2)} ms vs ${fmt(other.p99.median, 2)} ms`,
    ),
  ];
}

export async function search(options: ScenarioOptions): Promise<ScenarioResult> {
  const started = Date.now();
  const s = options.smoke
    ? { patterns: 500, rate: 50, seconds: 2, ramp: [20, 50], rampSeconds: 1, floorQueries: 30 }
    : {
        patterns: 100_000,
        rate: 200,
        seconds: 5,
        ramp: [10, 25, 50, 100, 150, 200, 300, 400, 600, 800, 1000],
        rampSeconds: 5,
        floorQueries: 100,
      };
  const log = (line: string) => options.log(line);
  const queries = searchQueries(SEED, 2000);
  const query = (i: number) =>
    ({ ...queries[i % queries.length], limit: 10 }) as { search_query: string; limit: number };
  const kafka = benchKafka('bench-search');
  const db = await createBenchDatabase('search', 4);
  const names = await createBenchTopics(kafka);
  let child: Child | undefined;
  let client: PatternClient | undefined;
  let other: Child | undefined;
  let otherClient: PatternClient | undefined;
  let otherNames: TopicNames | undefined;
  const figures: Record<string, unknown> = {};
  try {
    const bar = progress('patterns', s.patterns);
    await loadPatterns(db.pool, generatePatterns(SEED, s.patterns), (d) => bar.update(d));
    bar.stop();
    await analyze(db.pool);

    client = await new PatternClient({
      brokers: BROKERS,
      topicPrefix: names.prefix,
      clientId: 'bench',
      timeoutMs: 10_000,
    }).connect();
    const c = client;
    const viaClient = (i: number) => c.search(query(i), { timeoutMs: 10_000 });
    // Overloaded runs give up after 5 s: the figure is already far past every goal by then.
    const viaShort = (i: number) => c.search(query(i), { timeoutMs: 5_000 });

    // Our worker.
    child = await spawnNode({
      script: WORKER_CLI,
      args: ['worker'],
      env: { ...workerEnv(db, names), OTEL_SDK_DISABLED: 'true' },
    });
    await child.waitReady();
    // A run that overloads the worker leaves a backlog; the next run starts only once it is worked off.
    const drain = searchBacklogDrain(kafka, names, 90_000);
    await openLoop(Math.min(20, s.rate), 3, viaClient); // warm-up: JIT, pools, plans
    await drain();

    // Ramp first, from a light load up, to find the highest load that keeps p99 under 50 ms.
    const ramp: { rate: number; p50: number; p99: number; errors: number; maxLagMs: number }[] = [];
    for (const rate of s.ramp) {
      const res = await openLoop(rate, s.rampSeconds, viaShort);
      const m = summarize(res.latencies);
      ramp.push({ rate, p50: m.p50, p99: m.p99, errors: res.errors, maxLagMs: res.maxLagMs });
      log(`    ramp ${rate}/s: p50 ${fmt(m.p50, 2)} p99 ${fmt(m.p99, 2)} ms, ${res.errors} errors`);
      await drain();
      // Past the 50 ms line the curve still says how latency grows with load; stop once it is hopeless.
      if (!(m.p99 < 1000) || res.errors > 0) break;
    }
    // The steps before the first one over the line (a lucky step after it does not count).
    const firstMiss = ramp.findIndex((r) => !(r.p99 < 50) || r.errors > 0);
    const ok = firstMiss < 0 ? ramp : ramp.slice(0, firstMiss);
    figures.ramp = ramp;
    figures.maxRateP99Under50 = ok.length > 0 ? Math.max(...ok.map((r) => r.rate)) : 0;
    figures.workerLightLoad = ramp[0];

    // Another build of the worker (e.g. the previous Kafka client), when asked for: the same client code,
    // database and queries, on topics and a group of its own, running beside ours and idle between its
    // runs, which alternate with ours: on a shared machine a minute can be twice as slow as the next.
    // Also at half the rate: at the edge of this host's capacity latency is mostly queue (bench/ANALYSIS.md,
    // 4 December, runs of one build against itself).
    const contenders: Contender[] = [{ label: 'worker', child, send: viaShort, drain }];
    const compareScript = process.env.BENCH_COMPARE_WORKER_SCRIPT;
    const compareLabel = process.env.BENCH_COMPARE_LABEL || 'comparison build';
    if (compareScript) {
      otherNames = await createBenchTopics(kafka);
      const theirNames = otherNames;
      other = await spawnNode({
        script: compareScript,
        args: ['worker'],
        env: { ...workerEnv(db, theirNames), OTEL_SDK_DISABLED: 'true' },
      });
      await other.waitReady();
      otherClient = await new PatternClient({
        brokers: BROKERS,
        topicPrefix: theirNames.prefix,
        clientId: 'bench-compare',
        timeoutMs: 10_000,
      }).connect();
      const theirClient = otherClient;
      const theirDrain = searchBacklogDrain(kafka, theirNames, 180_000);
      await openLoop(Math.min(20, s.rate), 3, (i) => theirClient.search(query(i), { timeoutMs: 10_000 }));
      await theirDrain();
      contenders.push({
        label: compareLabel,
        child: other,
        send: (i) => theirClient.search(query(i), { timeoutMs: 5_000 }),
        drain: theirDrain,
      });
    }
    const runsAt = { runs: options.runs, seconds: s.seconds, log };
    const [ours, theirs] = await interleavedRuns(contenders, s.rate, runsAt);
    figures.worker = ours;
    if (theirs) {
      figures.compare_worker = { label: compareLabel, script: compareScript, ...theirs };
      const [oursHalf, theirsHalf] = await interleavedRuns(contenders, s.rate / 2, runsAt);
      figures.worker_half_rate = oursHalf;
      figures.compare_worker_half_rate = { label: compareLabel, script: compareScript, ...theirsHalf };
      await other?.stop();
      other = undefined;
    }

    // Overload: twice the measured rate (the highest one this machine sustains without a backlog; the
    // ramp shows 1.5x already queues), once with deadlines (the client's default: pattern-deadline-ms =
    // now + timeout) and once without, with a 2 s caller timeout. With deadlines the worker skips
    // searches nobody waits for any more; without, it runs every one, late.
    const overloadRate = 2 * s.rate;
    const noDeadlines = await new PatternClient({
      brokers: BROKERS,
      topicPrefix: names.prefix,
      clientId: 'bench-no-deadlines',
      sendDeadlines: false,
    }).connect();
    try {
      const overload: Record<string, unknown> = { rate: overloadRate, timeoutMs: 2_000 };
      for (const [label, c2] of [
        ['withDeadlines', c],
        ['withoutDeadlines', noDeadlines],
      ] as const) {
        let seen = 0;
        const before = await deadlineCount(child);
        const res = await openLoop(overloadRate, s.seconds, async (i) => {
          const r = await c2.search(query(i), { timeoutMs: 2_000 });
          if (r.error?.code === 'DEADLINE_EXCEEDED') seen++;
          return r;
        });
        await drain();
        // Counted by the worker: most answers of a skipped read reach a caller that has given up already.
        const expired = (await deadlineCount(child)) - before;
        const m = summarize(res.latencies);
        const timedOut = res.errors - seen;
        overload[label] = {
          sent: res.sent,
          answered: res.latencies.length,
          deadlineExceeded: expired,
          deadlineExceededSeenByCaller: seen,
          timedOutOrFailed: timedOut,
          answeredP50: m.p50,
          answeredP99: m.p99,
        };
        log(
          `    overload ${overloadRate}/s ${label === 'withDeadlines' ? 'with' : 'without'} deadlines: answered ${res.latencies.length} of ${res.sent}, p50 ${fmt(m.p50, 2)} p99 ${fmt(m.p99, 2)} ms, ${expired} not run (DEADLINE_EXCEEDED, ${seen} seen by their caller), ${timedOut} timed out`,
        );
      }
      figures.overload = overload;
    } finally {
      await noDeadlines.close();
    }
    const sample = child.sample();
    figures.workerPeakRssMiB = Math.round(sample.peakRssMiB * 10) / 10;
    await child.stop();
    child = undefined;

    // Kafka floor: the same client and topics, an echo service instead of the worker.
    child = await spawnNode({
      script: ECHO,
      env: { TOPIC_PREFIX: names.prefix, KAFKA_GROUP_ID: `${names.prefix}echo` },
      readyLine: 'kafka echo ready',
    });
    await child.waitReady();
    await openLoop(Math.min(100, s.rate), Math.min(3, s.seconds), viaClient);
    const echo: LoadResult[] = [];
    for (let r = 0; r < options.runs; r++) {
      const res = await openLoop(s.rate, s.seconds, viaClient);
      echo.push(res);
      const m = summarize(res.latencies);
      log(
        `    Kafka floor at ${s.rate}/s run ${r + 1}/${options.runs}: p50 ${fmt(m.p50, 2)} p99 ${fmt(m.p99, 2)} ms, ${res.errors} errors`,
      );
    }
    figures.kafka_floor = measured(echo);
    await child.stop();
    child = undefined;

    // Query floor: the same queries straight through pg, one at a time (the SQL's own service time;
    // at an offered rate above its capacity an open loop would only measure the queue).
    const sql: LoadResult[] = [];
    // The plans of the first queries, kept with the results: the planner's choice varies between loads.
    figures.queryPlans = await Promise.all(
      [0, 1, 2].map(async (i) => ({ query: query(i), plan: await searchPlan(db.pool, query(i)) })),
    );
    for (let i = 0; i < 20; i++) await searchDirect(db.pool, query(i));
    for (let r = 0; r < options.runs; r++) {
      const latencies: number[] = [];
      for (let i = 0; i < s.floorQueries; i++) {
        const t0 = performance.now();
        await searchDirect(db.pool, query(r * s.floorQueries + i));
        latencies.push(performance.now() - t0);
      }
      sql.push({ offeredRate: 0, sent: latencies.length, latencies, errors: 0, maxLagMs: 0 });
      const m = summarize(latencies);
      log(
        `    query floor, one at a time, run ${r + 1}/${options.runs}: p50 ${fmt(m.p50, 2)} p99 ${fmt(m.p99, 2)} ms`,
      );
    }
    figures.query_floor = measured(sql);
  } finally {
    await child?.stop();
    await other?.stop();
    await client?.close().catch(() => undefined);
    await otherClient?.close().catch(() => undefined);
    await db.drop();
    await deleteBenchTopics(kafka, names);
    if (otherNames) await deleteBenchTopics(kafka, otherNames);
  }

  const w = figures.worker as WithCpu;
  const k = figures.kafka_floor as Measured;
  const q = figures.query_floor as Measured;
  // What the round trip cannot beat: the broker's path plus the query's own time, at the same percentile.
  const floorSum = k.p50.median + q.p50.median;
  const floorSum99 = k.p99.median + q.p99.median;
  const ratio = w.p50.median / floorSum;
  const ratio99 = w.p99.median / floorSum99;
  const light = figures.workerLightLoad as { rate: number; p50: number } | undefined;
  const lightRatio = light ? light.p50 / floorSum : NaN;
  figures.ratios = {
    lightLoadP50OverFloors: lightRatio,
    p50OverFloors: ratio,
    p99OverFloors: ratio99,
    p50OverKafkaFloor: w.p50.median / k.p50.median,
    p50OverQueryFloor: w.p50.median / q.p50.median,
  };
  const goals = [
    goal(
      `search round trip p50 at ${s.rate}/s vs (Kafka floor p50 + query floor p50)`,
      '<= 2x',
      ratio,
      'x',
      ratio <= 2,
      `${fmt(w.p50.median, 2)} ms vs ${fmt(floorSum, 2)} ms`,
    ),
    goal(
      `search round trip p99 at ${s.rate}/s vs (Kafka floor p99 + query floor p99)`,
      '<= 2x',
      ratio99,
      'x',
      ratio99 <= 2,
      `${fmt(w.p99.median, 2)} ms vs ${fmt(floorSum99, 2)} ms`,
    ),
    goal(
      `search p50 at a light ${light?.rate ?? '?'}/s vs (Kafka floor p50 + query floor p50)`,
      'report',
      lightRatio,
      'x',
      null,
    ),
    ...overloadGoals(figures.overload as Overload | undefined),
    ...compareGoals(w, figures.compare_worker as (WithCpu & { label: string }) | undefined, s.rate),
    ...(figures.worker_half_rate
      ? compareGoals(
          figures.worker_half_rate as WithCpu,
          figures.compare_worker_half_rate as (WithCpu & { label: string }) | undefined,
          s.rate / 2,
        )
      : []),
    goal(
      'highest offered load with p99 < 50 ms',
      'report',
      figures.maxRateP99Under50 as number,
      'requests/s',
      null,
    ),
  ];
  const row = (label: string, m: Measured) =>
    `${label.padEnd(14)} p50 ${fmt(m.p50.median, 2).padStart(6)}  p90 ${fmt(m.p90.median, 2).padStart(6)}  p99 ${fmt(m.p99.median, 2).padStart(6)}  p99.9 ${fmt(m.p999.median, 2).padStart(6)} ms (p50 runs ${m.p50.runs.join(', ')})`;
  return {
    scenario: 'search',
    smoke: options.smoke,
    startedAt: new Date(started).toISOString(),
    durationS: Math.round((Date.now() - started) / 100) / 10,
    params: { ...s, runs: options.runs, seed: SEED, limit: 10 },
    figures,
    goals,
    summary: [
      row('worker', w),
      row('Kafka floor', k),
      row('query floor', q),
      ...(figures.compare_worker
        ? [
            row('other build', figures.compare_worker as Measured) +
              ` (${(figures.compare_worker as { label: string }).label})`,
          ]
        : []),
      `worker p50 at a light ${light?.rate ?? '?'}/s: ${fmt(light?.p50 ?? NaN, 2)} ms = ${lightRatio.toFixed(2)}x the floors`,
      `ratios: worker p50 = ${ratio.toFixed(2)}x (Kafka floor p50 + query floor p50), p99 = ${ratio99.toFixed(2)}x (Kafka floor p99 + query floor p99); highest load with p99 < 50 ms: ${String(figures.maxRateP99Under50)}/s`,
    ],
  };
}
