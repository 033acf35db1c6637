// Scenario "mixed": the lanes under a mixed load. Usage ingestion at full speed, searches at 50/s and
// global analytics at 2/s (a dashboard's get_global_stats, see ANALYTICS_OPERATION) through PatternClient in a
// process of its own (bench/lib/requester.ts),
// while a replay of 100,000 usage messages (its own topic prefix, its own database on the same PostgreSQL
// server, a child process with its default budget) runs at the same time. Compared with the same ingestion and the same searches done alone by the same
// worker earlier in the run. The replay is told the live worker's KAFKA_GROUP_ID, as a replay of the same
// deployment would be, so its default budget is the one beside live lanes (WORKER_REPLAY_LIVE_MAX_RATE);
// the goal "replay at its budget" compares its rate in the window with that budget. After the window the
// worker stops, and the replay finishes unlimited (its budget follows the live groups).
import { availableParallelism } from 'node:os';
import type { TopicNames } from '../../src/contracts/topics.ts';
import { generatePatterns, searchQueries, take, usageEvents } from '../lib/dataset.ts';
import { analyze, createBenchDatabase, loadPatterns, type BenchDatabase } from '../lib/db.ts';
import {
  benchKafka,
  BROKERS,
  bulkProducer,
  createBenchTopics,
  deleteBenchTopics,
  produceAll,
  TopicCounter,
  waitForDrain,
} from '../lib/kafka.ts';
import type { LoadResult } from '../lib/load.ts';
import { cpuWindow, spawnNode, type Child, type CpuCores } from '../lib/proc.ts';
import { Requester } from '../lib/requester.ts';
import { goal, progress, type ScenarioOptions, type ScenarioResult } from '../lib/scenario.ts';
import { fmt, percentile, spread, summarize } from '../lib/stats.ts';
import {
  countEvents,
  ingestRuns,
  usageMessages,
  warningCounts,
  WORKER_CLI,
  workerEnv,
  type RunFigures,
} from './ingestion.ts';

const SEED = 13;
/**
 * The global analytics of the mixed load: by default a dashboard's poll, get_global_stats (the default
 * period), which the worker answers from one computation per ANALYTICS_RESULT_MAX_AGE_MS;
 * BENCH_MIXED_ANALYTICS=compute_analytics sends the write instead, computed and stored per message.
 */
const ANALYTICS_OPERATION =
  process.env.BENCH_MIXED_ANALYTICS === 'compute_analytics' ? 'compute_analytics' : 'get_global_stats';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * How the live worker is deployed: one process with every lane (as a new user starts it), or, with
 * BENCH_MIXED_LANES=split, ingestion in one process (WORKER_LANES=writes) and the queries, searches and
 * analytics, in another (WORKER_LANES=reads,analytics), on the same host.
 */
const SPLIT = process.env.BENCH_MIXED_LANES === 'split';
const DEPLOYMENT = SPLIT
  ? 'two processes: WORKER_LANES=writes and WORKER_LANES=reads,analytics'
  : 'one process, every lane';

/** p99 with every failed or unanswered request counted as slower than every answer. */
function p99CountingFailures(results: LoadResult[]): number {
  const answered = results.flatMap((r) => r.latencies).sort((a, b) => a - b);
  const failed = results.reduce((n, r) => n + r.errors, 0);
  return percentile([...answered, ...new Array<number>(failed).fill(Infinity)], 99);
}

function latencyFigures(results: LoadResult[]) {
  const firstError = results.find((r) => r.firstError)?.firstError;
  return {
    sent: results.reduce((n, r) => n + r.sent, 0),
    errors: results.reduce((n, r) => n + r.errors, 0),
    ...(firstError ? { firstError: firstError.slice(0, 300) } : {}),
    maxLagMs: Math.max(...results.map((r) => r.maxLagMs)),
    runs: results.map((r) => ({ ...summarize(r.latencies), errors: r.errors })),
    pooled: summarize(results.flatMap((r) => r.latencies)),
    // The worker's own part (node run, database included), beside the round trip.
    effect: summarize(results.flatMap((r) => r.effectMs ?? [])),
    p99CountingFailures: p99CountingFailures(results),
  };
}

function ingestFigures(runs: RunFigures[]) {
  return {
    runs,
    eventsPerSecond: spread(runs.map((r) => r.eventsPerSecond)),
    cpuCores: spread(runs.map((r) => r.cpuCores)),
  };
}

/** Waits until the replay has written its first rows; fails with its output if it exits first. */
async function replayWriting(db: BenchDatabase, replay: Child, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const n = await countEvents(db);
    if (n > 0) return n;
    if (replay.child.exitCode !== null)
      throw new Error(`replay exited with ${replay.child.exitCode} before writing:\n${replay.output()}`);
    if (Date.now() > deadline)
      throw new Error(`replay wrote nothing in ${timeoutMs} ms:\n${replay.output().slice(-2000)}`);
    await sleep(100);
  }
}

interface ReplaySummary {
  seconds: number;
  messages: number;
  applied: number;
  alreadyApplied: number;
  deadLettered: number;
  failed: number;
}

/** The rate of the replay's budget line (`budget 1 in flight, at most 500 messages/s while live lanes run (...)`), or null. */
function parseBudgetRate(output: string): number | null {
  const m = /budget [^\n]*?at most (\d+) messages\/s/.exec(output);
  return m ? Number(m[1]) : null;
}

/** The line `replay done in X s: N messages, applied A, already applied B, dead-lettered C[, failed D]`. */
function parseReplay(output: string): ReplaySummary | undefined {
  const m =
    /replay done in ([\d.]+) s: (\d+) messages, applied (\d+), already applied (\d+), dead-lettered (\d+)(?:, failed (\d+))?/.exec(
      output,
    );
  if (!m) return undefined;
  return {
    seconds: Number(m[1]),
    messages: Number(m[2]),
    applied: Number(m[3]),
    alreadyApplied: Number(m[4]),
    deadLettered: Number(m[5]),
    failed: Number(m[6] ?? 0),
  };
}

export async function mixed(options: ScenarioOptions): Promise<ScenarioResult> {
  const started = Date.now();
  const s = options.smoke
    ? {
        patterns: 500,
        usagePatterns: 200,
        events: 300,
        warmupEvents: 100,
        // Enough for the replay to outlast the window at its live budget (500/s by default).
        replayEvents: 3000,
        searchRate: 50,
        searchSeconds: 2,
        analyticsRate: 2,
        // Tiny batches are over in a blink; the loads then run on alone for this long.
        minWindowSeconds: 2,
        replayTimeoutS: 60,
      }
    : {
        patterns: 100_000,
        usagePatterns: 10_000,
        events: Number(process.env.BENCH_MIXED_EVENTS ?? 40_000),
        warmupEvents: 5_000,
        replayEvents: 100_000,
        searchRate: 50,
        searchSeconds: 5,
        analyticsRate: 2,
        minWindowSeconds: 0,
        replayTimeoutS: 600,
      };
  const log = (line: string) => options.log(line);
  // One dataset: searches run over all of it, usage (live and replayed) over its first patterns.
  const patterns = generatePatterns(SEED, s.patterns);
  const usagePatterns = patterns.slice(0, s.usagePatterns);
  const source = usageEvents({ seed: SEED, patterns: usagePatterns, skew: 1, days: 30 });
  const replaySource = usageEvents({ seed: SEED + 1, patterns: usagePatterns, skew: 1, days: 30 });
  const queries = searchQueries(SEED, 2000).map((q) => ({ ...q, limit: 10 }));
  const kafka = benchKafka('bench-mixed');

  let db: BenchDatabase | undefined;
  let replayDb: BenchDatabase | undefined;
  let names: TopicNames | undefined;
  let replayNames: TopicNames | undefined;
  let producer: Awaited<ReturnType<typeof bulkProducer>> | undefined;
  let counter: TopicCounter | undefined;
  let worker: Child | undefined;
  let queriesWorker: Child | undefined;
  let replay: Child | undefined;
  let requester: Requester | undefined;
  const figures: Record<string, unknown> = {};
  try {
    db = await createBenchDatabase('mixed', 4);
    replayDb = await createBenchDatabase('mixed_replay', 4);
    names = await createBenchTopics(kafka);
    replayNames = await createBenchTopics(kafka);
    producer = await bulkProducer(kafka);

    const bar = progress('patterns', s.patterns);
    await loadPatterns(db.pool, patterns, (d) => bar.update(d));
    bar.stop();
    await analyze(db.pool);
    await loadPatterns(replayDb.pool, usagePatterns);
    // The replay's input is on its topic before anything is measured.
    log(`  pre-filling the replay's pattern.usage with ${s.replayEvents} record_usage events`);
    for (let left = s.replayEvents; left > 0; left -= 10_000) {
      const chunk = usageMessages(take(replaySource, Math.min(10_000, left)));
      await produceAll(producer, replayNames.request('pattern.usage'), chunk);
    }

    counter = await new TopicCounter(kafka, [names.result('pattern.usage')]).start();
    const liveEnv = { ...workerEnv(db, names), OTEL_SDK_DISABLED: 'true' };
    worker = await spawnNode({
      script: WORKER_CLI,
      args: ['worker'],
      env: SPLIT ? { ...liveEnv, WORKER_LANES: 'writes' } : liveEnv,
    });
    await worker.waitReady();
    if (SPLIT) {
      queriesWorker = await spawnNode({
        script: WORKER_CLI,
        args: ['worker'],
        env: { ...liveEnv, WORKER_LANES: 'reads,analytics' },
      });
      await queriesWorker.waitReady();
    }
    log(`  the live worker: ${DEPLOYMENT}`);
    // Searches and analytics come from a process of their own, as from a client service: this process
    // produces and counts the ingestion, and its backlog would otherwise be timed as the worker's latency.
    requester = await Requester.start(
      { brokers: BROKERS, topicPrefix: names.prefix, clientId: 'bench-mixed' },
      queries,
    );
    const r = requester;
    const search = (rate: number, seconds: number) => r.loop('search', rate, seconds);
    const analytics = (rate: number, seconds: number) => r.loop(ANALYTICS_OPERATION, rate, seconds);
    const target = { producer, topic: names.request('pattern.usage'), counter, child: worker };
    // The reads lane's consumer group (each lane has its own: <KAFKA_GROUP_ID>.<lane>).
    const group = `${names.prefix}worker.reads`;
    const requestTopic = names.request('pattern.search.request');
    const drain = () => waitForDrain(kafka, group, requestTopic, 90_000);

    // Warm-up of every path measured below (JIT, pools, plans); not measured.
    await ingestRuns(target, source, s.warmupEvents, 1, 'warm-up', () => undefined);
    await search(20, 2).done;
    await analytics(s.analyticsRate, 1).done;
    await drain();

    // Each role's processes as they are when sampled (the replay starts later).
    const roles = () => ({
      worker: [worker?.pid, queriesWorker?.pid],
      replay: [replay?.pid],
      load: [process.pid, requester?.pid],
    });
    log(`  solo ingestion: ${options.runs} x ${s.events} events over ${s.usagePatterns} patterns`);
    const soloCpu = cpuWindow(roles);
    const soloIngest = await ingestRuns(target, source, s.events, options.runs, 'solo ingestion', log);
    const soloCores = soloCpu.cores();

    log(
      `  solo searches at ${s.searchRate}/s over ${s.patterns} patterns: ${options.runs} x ${s.searchSeconds} s`,
    );
    const soloSearch: LoadResult[] = [];
    for (let r = 0; r < options.runs; r++) {
      const res = await search(s.searchRate, s.searchSeconds).done;
      soloSearch.push(res);
      const m = summarize(res.latencies);
      log(
        `    solo search run ${r + 1}/${options.runs}: p50 ${fmt(m.p50, 2)} p99 ${fmt(m.p99, 2)} ms, ${res.errors} errors`,
      );
      await drain();
    }

    log(
      `  mixed: replay of ${s.replayEvents} usage messages (default budget, beside the live worker) + ingestion ${options.runs} x ${s.events} + ` +
        `searches ${s.searchRate}/s + global analytics (${ANALYTICS_OPERATION}) ${s.analyticsRate}/s`,
    );
    // The dashboard is open before the mixed load starts (polls not measured until the window opens): the
    // window measures its polls under load, not the first read after the solo phases' idle minutes.
    const dashboard = analytics(s.analyticsRate, 3600);
    const replayT0 = performance.now();
    replay = await spawnNode({
      script: WORKER_CLI,
      args: ['replay', '--from', 'earliest', '--topics', 'pattern.usage'],
      // Its own database and topics, the live worker's group name: the budget of a replay beside it.
      env: {
        ...workerEnv(replayDb, replayNames),
        KAFKA_GROUP_ID: workerEnv(db, names).KAFKA_GROUP_ID as string,
        OTEL_SDK_DISABLED: 'true',
      },
    });
    // The window opens once the replay is writing, so that it competes with everything measured.
    await replayWriting(replayDb, replay, 60_000);
    const rowsAtWindowStart = await countEvents(replayDb);
    await dashboard.stop();
    await dashboard.done;
    const windowT0 = performance.now();
    const mixedCpu = cpuWindow(roles);
    const searching = search(s.searchRate, 3600);
    const computing = analytics(s.analyticsRate, 3600);
    let mixedIngest: RunFigures[];
    try {
      mixedIngest = await ingestRuns(target, source, s.events, options.runs, 'mixed ingestion', log);
      const pad = s.minWindowSeconds * 1000 - (performance.now() - windowT0);
      if (pad > 0) await sleep(pad);
    } finally {
      await Promise.all([searching.stop(), computing.stop()]);
    }
    const mixedCores = mixedCpu.cores();
    const rowsAtWindowEnd = await countEvents(replayDb);
    const windowSeconds = (performance.now() - windowT0) / 1000;
    const [mixedSearch, mixedAnalytics] = await Promise.all([searching.done, computing.done]);
    log(
      `    mixed window ${windowSeconds.toFixed(1)} s: ${mixedSearch.sent} searches, ${mixedAnalytics.sent} analytics; ` +
        `replay had ${rowsAtWindowStart} of ${s.replayEvents} rows at its start, ${rowsAtWindowEnd} at its end`,
    );

    // The worker's figures, then the worker stops: the replay's budget follows the live groups, so it
    // finishes unlimited (within its 5 s look) instead of at its live budget beside an idle worker.
    const workerPeakRssMiB = Math.round(worker.sample().peakRssMiB * 10) / 10;
    const queriesWorkerPeakRssMiB = queriesWorker && Math.round(queriesWorker.sample().peakRssMiB * 10) / 10;
    const stored = await countEvents(db);
    const liveWorker = worker;
    worker = undefined;
    await liveWorker.stop();
    await queriesWorker?.stop();
    queriesWorker = undefined;

    // The replay runs to its end wherever the window closed: its duration is a figure too.
    const code = await replay.waitExit(s.replayTimeoutS * 1000);
    const replayWallSeconds = (performance.now() - replayT0) / 1000;
    const replayOutput = replay.output();
    const summary = parseReplay(replayOutput);
    if (code !== 0 || !summary)
      throw new Error(`replay exited with ${code} without its summary line:\n${replayOutput.slice(-3000)}`);
    const replayRows = await countEvents(replayDb);
    replay = undefined;
    log(
      `    replay: ${summary.messages} messages in ${summary.seconds.toFixed(1)} s by its own clock ` +
        `(${fmt(summary.messages / summary.seconds, 0)}/s), ${replayWallSeconds.toFixed(1)} s from spawn to exit`,
    );

    const budgetRate = parseBudgetRate(replayOutput);
    const windowRate = (rowsAtWindowEnd - rowsAtWindowStart) / windowSeconds;
    figures.solo = { ingestion: ingestFigures(soloIngest), search: latencyFigures(soloSearch) };
    // Where the two phases' CPU went: ingestion in the window gets what the other loads leave it.
    figures.cpuCores = { soloIngestion: soloCores, mixedWindow: mixedCores };
    figures.mixed = {
      windowSeconds: Math.round(windowSeconds * 10) / 10,
      ingestion: ingestFigures(mixedIngest),
      search: latencyFigures([mixedSearch]),
      analytics: latencyFigures([mixedAnalytics]),
      replay: {
        ...summary,
        messagesPerSecond: Math.round(summary.messages / summary.seconds),
        wallSeconds: Math.round(replayWallSeconds * 10) / 10,
        budget: /budget ([^\n]+)/.exec(replayOutput)?.[1] ?? 'unknown',
        // Messages/s the budget allows beside live lanes (null: no rate), and the rate measured in the
        // window from the replay database's rows (every replayed message is one usage event).
        budgetRate,
        windowRate: Math.round(windowRate),
        budgetChanges: replayOutput
          .split('\n')
          .filter((l) => /^\s*budget now /.test(l))
          .map((l) => l.trim()),
        rowsChecked: replayRows === s.replayEvents && summary.applied === s.replayEvents,
        rowsAtWindowStart,
        rowsAtWindowEnd,
        // Whether the replay was still going when the window closed (it competed with all of it).
        runningThroughout: rowsAtWindowEnd < s.replayEvents,
      },
    };
    figures.worker = {
      peakRssMiB: workerPeakRssMiB,
      ...(queriesWorkerPeakRssMiB !== undefined ? { queriesProcessPeakRssMiB: queriesWorkerPeakRssMiB } : {}),
      failures: counter.failures,
      rowsChecked: stored === s.warmupEvents + 2 * options.runs * s.events,
      warnings: warningCounts(liveWorker),
    };

    // Replay alone into an empty database, before issue 22 (phases, --legacy-phases) and after (one merged
    // order under touch locks), same topic, same budget, same run: the figure the issue asks for.
    const empty: Record<string, { messages: number; seconds: number; messagesPerSecond: number }> = {};
    for (const [label, extra] of [
      ['before', ['--legacy-phases']],
      ['after', []],
    ] as const) {
      const fresh = await createBenchDatabase(`replay_${label}`, 6);
      try {
        await loadPatterns(fresh.pool, usagePatterns);
        const child = await spawnNode({
          script: WORKER_CLI,
          args: ['replay', '--from', 'earliest', '--topics', 'pattern.usage', '--concurrency', '4', ...extra],
          env: { ...workerEnv(fresh, replayNames), OTEL_SDK_DISABLED: 'true' },
        });
        const exit = await child.waitExit(s.replayTimeoutS * 1000);
        const done = parseReplay(child.output());
        if (exit !== 0 || !done || done.applied !== s.replayEvents)
          throw new Error(`replay (${label}) exited with ${exit}:\n${child.output().slice(-3000)}`);
        empty[label] = {
          messages: done.messages,
          seconds: done.seconds,
          messagesPerSecond: Math.round(done.messages / done.seconds),
        };
        log(
          `    replay into an empty database (${label} issue 22): ${fmt(done.messages / done.seconds, 0)} messages/s`,
        );
      } finally {
        await fresh.drop().catch(() => undefined);
      }
    }
    figures.replayIntoEmpty = empty;
  } finally {
    // Each step on its own, so one failing does not leave a process, a database or topics behind.
    const quietly = (p: Promise<unknown> | undefined) => p?.catch(() => undefined);
    await quietly(replay?.stop());
    await quietly(worker?.stop());
    await quietly(queriesWorker?.stop());
    await quietly(requester?.close());
    await quietly(counter?.stop());
    await quietly(producer?.disconnect());
    await quietly(db?.drop());
    await quietly(replayDb?.drop());
    if (names) await quietly(deleteBenchTopics(kafka, names));
    if (replayNames) await quietly(deleteBenchTopics(kafka, replayNames));
  }

  type Ingest = ReturnType<typeof ingestFigures>;
  type Latency = ReturnType<typeof latencyFigures>;
  const solo = figures.solo as { ingestion: Ingest; search: Latency };
  const mix = figures.mixed as {
    windowSeconds: number;
    ingestion: Ingest;
    search: Latency;
    analytics: Latency;
    replay: ReplaySummary & {
      messagesPerSecond: number;
      wallSeconds: number;
      budget: string;
      budgetRate: number | null;
      windowRate: number;
      rowsAtWindowEnd: number;
      budgetChanges: string[];
      rowsAtWindowStart: number;
      runningThroughout: boolean;
    };
  };
  const cpu = figures.cpuCores as { soloIngestion: CpuCores; mixedWindow: CpuCores };
  const cores = (c: CpuCores) =>
    `worker ${fmt(c.worker, 2)}, database ${fmt(c.database, 2)}, broker ${fmt(c.broker, 2)}, ` +
    `load generator ${fmt(c.load, 2)}${c.replay > 0 ? `, replay ${fmt(c.replay, 2)}` : ''}: ${fmt(c.all, 2)} of ${availableParallelism()}`;
  const ingestRatio = mix.ingestion.eventsPerSecond.median / solo.ingestion.eventsPerSecond.median;
  const searchRatio = mix.search.p99CountingFailures / solo.search.p99CountingFailures;
  figures.ratios = { ingestionMixedOverSolo: ingestRatio, searchP99MixedOverSolo: searchRatio };
  const failures = (l: Latency) =>
    l.errors > 0 ? `, ${l.errors} of ${l.sent} failed (counted as slowest)` : '';
  const r = mix.replay;
  const empty = (figures.replayIntoEmpty ?? {}) as Record<string, { messagesPerSecond: number } | undefined>;
  // At its budget: in the window, at least 90% of the budget (not starved) and at most 5% over it (the
  // limiter's burst is a tenth of a second's budget). Over a window the replay finished inside, its rate is
  // not the budget's: the goal then has no verdict.
  const atBudget =
    r.budgetRate === null
      ? false
      : r.runningThroughout
        ? r.windowRate >= 0.9 * r.budgetRate && r.windowRate <= 1.05 * r.budgetRate
        : null;
  const afterStop =
    r.budgetChanges.length > 0 ? `; after the worker stopped: ${r.budgetChanges.join('; ')}` : '';
  const overlap = r.runningThroughout
    ? 'running throughout the window'
    : `finished inside the window (${r.rowsAtWindowStart} rows applied when it opened)`;
  const goals = [
    goal(
      'mixed: ingestion vs its solo rate',
      '>= 0.8x',
      ingestRatio,
      'x',
      ingestRatio >= 0.8,
      `${fmt(mix.ingestion.eventsPerSecond.median, 0)} vs ${fmt(solo.ingestion.eventsPerSecond.median, 0)} events/s`,
    ),
    goal(
      `mixed: search p99 vs its solo p99 at ${s.searchRate}/s`,
      '<= 1.5x',
      searchRatio,
      'x',
      searchRatio <= 1.5,
      `${fmt(mix.search.p99CountingFailures, 2)} vs ${fmt(solo.search.p99CountingFailures, 2)} ms${failures(mix.search)}${failures(solo.search)}`,
    ),
    goal(
      'mixed: replay at its budget beside live lanes',
      r.budgetRate === null ? 'a budget' : `${r.budgetRate} messages/s`,
      r.windowRate,
      'messages/s',
      atBudget,
      `${r.rowsAtWindowEnd - r.rowsAtWindowStart} messages applied in the ${mix.windowSeconds} s window; budget ${r.budget}`,
    ),
    goal(
      'mixed: replay throughput',
      'report',
      r.messagesPerSecond,
      'messages/s',
      null,
      `${r.messages} in ${r.seconds} s, budget ${r.budget}, ${overlap}${afterStop}`,
    ),
    goal(
      'replay into an empty database: after vs before issue 22',
      'report',
      empty.after && empty.before ? empty.after.messagesPerSecond / empty.before.messagesPerSecond : null,
      'x',
      null,
      `${empty.after?.messagesPerSecond ?? '?'} vs ${empty.before?.messagesPerSecond ?? '?'} messages/s, ${s.replayEvents} usage messages, --concurrency 4, alone`,
    ),
    goal(
      `mixed: global analytics p99 at ${s.analyticsRate}/s, every request answered`,
      '<= 50 ms',
      mix.analytics.p99CountingFailures,
      'ms',
      mix.analytics.p99CountingFailures === null
        ? null
        : mix.analytics.p99CountingFailures <= 50 && mix.analytics.errors === 0,
      `${mix.analytics.sent} ${ANALYTICS_OPERATION} requests${failures(mix.analytics)}`,
    ),
  ];
  const lat = (l: Latency) =>
    `p50 ${fmt(l.pooled.p50, 2)} p99 ${fmt(l.p99CountingFailures, 2)} ms (${l.sent} sent, ${l.errors} failed; ` +
    `the worker's own part p50 ${fmt(l.effect.p50, 2)} p99 ${fmt(l.effect.p99, 2)} ms)`;
  const eps = (i: Ingest) =>
    `${fmt(i.eventsPerSecond.median, 0)} events/s (runs ${i.eventsPerSecond.runs.map((x) => fmt(x, 0)).join(', ')})`;
  return {
    scenario: 'mixed',
    smoke: options.smoke,
    startedAt: new Date(started).toISOString(),
    durationS: Math.round((Date.now() - started) / 100) / 10,
    params: {
      ...s,
      analyticsOperation: ANALYTICS_OPERATION,
      deployment: DEPLOYMENT,
      runs: options.runs,
      seed: SEED,
      zipfExponent: 1,
      partitions: 6,
      limit: 10,
    },
    figures,
    goals,
    summary: [
      `ingestion     solo ${eps(solo.ingestion)}; mixed ${eps(mix.ingestion)}`,
      `search ${s.searchRate}/s solo ${lat(solo.search)}; mixed ${lat(mix.search)}`,
      `analytics ${s.analyticsRate}/s (global ${ANALYTICS_OPERATION}, mixed) ${lat(mix.analytics)}`,
      `replay        ${fmt(r.windowRate, 0)} messages/s in the mixed window against its budget of ${r.budgetRate ?? 'none'} messages/s ` +
        `(${r.budget}); ${r.messages} messages in ${r.seconds} s overall (${fmt(r.messagesPerSecond, 0)}/s by its own clock, ` +
        `${r.wallSeconds} s from spawn to exit${afterStop}), ${overlap}; mixed window ${mix.windowSeconds} s`,
      `replay alone  into an empty database: ${empty.after?.messagesPerSecond ?? '?'} messages/s after issue 22, ${empty.before?.messagesPerSecond ?? '?'} before (same run)`,
      `ratios: mixed ingestion = ${ingestRatio.toFixed(2)}x solo, mixed search p99 = ${searchRatio.toFixed(2)}x solo`,
      `CPU cores     solo ingestion: ${cores(cpu.soloIngestion)}; mixed window: ${cores(cpu.mixedWindow)}`,
    ],
  };
}
