// Scenario "soak" (not part of the default run): the worker under steady load for 10 minutes
// (BENCH_SOAK_MINUTES), usage events at a fixed rate (BENCH_SOAK_RATE per second) plus searches, with its
// RSS sampled throughout. Goal: peak RSS <= 200 MiB and growth < 10% from the second minute to the last.
import { PatternClient } from '../../src/client/index.ts';
import { generatePatterns, searchQueries, take, usageEvents } from '../lib/dataset.ts';
import { createBenchDatabase, loadPatterns } from '../lib/db.ts';
import {
  benchKafka,
  BROKERS,
  bulkProducer,
  createBenchTopics,
  deleteBenchTopics,
  produceAll,
  TopicCounter,
} from '../lib/kafka.ts';
import { ProcMonitor, spawnNode, type Child } from '../lib/proc.ts';
import { goal, type ScenarioOptions, type ScenarioResult } from '../lib/scenario.ts';
import { fmt, spread } from '../lib/stats.ts';
import { WORKER_CLI, workerEnv } from './ingestion.ts';

const SEED = 11;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function soak(options: ScenarioOptions): Promise<ScenarioResult> {
  const started = Date.now();
  const minutes = options.smoke ? 0.34 : Number(process.env.BENCH_SOAK_MINUTES ?? 10);
  const rate = options.smoke ? 200 : Number(process.env.BENCH_SOAK_RATE ?? 3000);
  const searchRate = options.smoke ? 5 : Number(process.env.BENCH_SOAK_SEARCH_RATE ?? 5);
  const patterns = generatePatterns(SEED, options.smoke ? 300 : 10_000);
  const source = usageEvents({ seed: SEED, patterns, days: 30 });
  const queries = searchQueries(SEED, 1000);
  const kafka = benchKafka('bench-soak');
  const db = await createBenchDatabase('soak');
  const names = await createBenchTopics(kafka);
  const producer = await bulkProducer(kafka);
  let child: Child | undefined;
  let client: PatternClient | undefined;
  let counter: TopicCounter | undefined;
  try {
    await loadPatterns(db.pool, patterns);
    counter = await new TopicCounter(kafka, [names.result('pattern.usage')]).start();
    child = await spawnNode({
      script: WORKER_CLI,
      args: ['worker'],
      env: { ...workerEnv(db, names), OTEL_SDK_DISABLED: 'true' },
    });
    await child.waitReady();
    client = await new PatternClient({
      brokers: BROKERS,
      topicPrefix: names.prefix,
      clientId: 'bench-soak',
    }).connect();
    const monitor = new ProcMonitor(child.pid).start(options.smoke ? 1000 : 5000);
    const end = Date.now() + minutes * 60_000;
    let sent = 0;
    let searches = 0;
    let searchErrors = 0;
    const c = client;
    const t0 = Date.now();
    for (let second = 0; Date.now() < end; second++) {
      const due = t0 + second * 1000;
      const batch = take(source, rate).map((e) => ({
        key: e.pattern_id,
        value: JSON.stringify({
          operation: 'record_usage',
          pattern_id: e.pattern_id,
          usage_data: e.usage_data,
        }),
      }));
      await produceAll(producer, names.request('pattern.usage'), batch);
      sent += batch.length;
      for (let i = 0; i < searchRate; i++) {
        searches++;
        c.search({ ...queries[searches % queries.length], limit: 10 } as { search_query: string }, {
          timeoutMs: 10_000,
        }).then(
          (r) => void (r.success || searchErrors++),
          () => void searchErrors++,
        );
      }
      if (second % 60 === 0) {
        const s = child.sample();
        options.log(
          `    ${(second / 60).toFixed(0)} min: ${sent} events sent, ${counter.count} results, RSS ${fmt(s.rssMiB, 0)} MiB`,
        );
      }
      const wait = due + 1000 - Date.now();
      if (wait > 0) await sleep(wait);
    }
    const loadEnded = Date.now();
    const resultsAtEnd = counter.count;
    // Then the backlog, as long as it keeps moving (a worker that cannot keep up is a finding, not an error).
    let seen = counter.count;
    let movedAt = Date.now();
    while (counter.count < sent && Date.now() - movedAt < 30_000 && Date.now() - loadEnded < 600_000) {
      await counter.waitFor(sent, 1000).catch(() => undefined);
      if (counter.count > seen) {
        seen = counter.count;
        movedAt = Date.now();
      }
    }
    const drainSeconds = (Date.now() - loadEnded) / 1000;
    monitor.stop();
    const peak = child.sample().peakRssMiB;
    const series = monitor.series;
    // Windows are taken within the load period, not the drain after it.
    const total = (loadEnded - t0) / 1000;
    // Compare the second minute (after warm-up) with the last minute: medians, robust to GC sawtooth.
    const window = (from: number, to: number) =>
      spread(series.filter((p) => p.t >= from && p.t < to).map((p) => p.rssMiB)).median;
    const early = options.smoke ? window(total * 0.25, total * 0.5) : window(60, 120);
    const late = options.smoke ? window(total * 0.75, total + 1) : window(total - 60, total + 1);
    const growth = late / early - 1;
    const during = series.filter((p) => p.t <= total);
    const cpu = (during[during.length - 1]?.cpuSeconds ?? 0) - (during[0]?.cpuSeconds ?? 0);
    return {
      scenario: 'soak',
      smoke: options.smoke,
      startedAt: new Date(started).toISOString(),
      durationS: Math.round((Date.now() - started) / 100) / 10,
      params: { minutes, rate, searchRate, patterns: patterns.length },
      figures: {
        eventsSent: sent,
        resultsAtEndOfLoad: resultsAtEnd,
        backlogAtEndOfLoad: sent - resultsAtEnd,
        drainSeconds: Math.round(drainSeconds),
        results: counter.count,
        failures: counter.failures,
        searches,
        searchErrors,
        peakRssMiB: Math.round(peak * 10) / 10,
        rssEarlyMiB: early,
        rssLateMiB: late,
        growthPercent: Math.round(growth * 1000) / 10,
        cpuCores: Math.round((cpu / Math.max(1, total)) * 100) / 100,
        rssSeries: series.map((p) => ({ t: Math.round(p.t), rssMiB: Math.round(p.rssMiB * 10) / 10 })),
      },
      goals: [
        goal(
          'worker kept up with the offered load',
          'backlog 0',
          sent - resultsAtEnd,
          'events behind',
          sent - resultsAtEnd < rate * 5,
        ),
        goal('worker peak RSS under steady load', '<= 200 MiB', peak, 'MiB', peak <= 200),
        goal('RSS growth, second minute to last', '< 10%', growth * 100, '%', growth < 0.1),
      ],
      summary: [
        `${sent} events at ${rate}/s and ${searches} searches over ${minutes} min; ${resultsAtEnd} results by the end of the load, the rest ${counter.count >= sent ? `${drainSeconds.toFixed(0)} s later` : `not all within ${drainSeconds.toFixed(0)} s (${counter.count} in all)`}; ${counter.failures} failed results, ${searchErrors} failed searches`,
        `worker RSS ${fmt(early, 0)} MiB early, ${fmt(late, 0)} MiB late (${(growth * 100).toFixed(1)}%), peak ${fmt(peak, 0)} MiB, CPU ${(cpu / Math.max(1, total)).toFixed(2)} cores`,
      ],
    };
  } finally {
    await child?.stop();
    await client?.close().catch(() => undefined);
    await counter?.stop().catch(() => undefined);
    await producer.disconnect().catch(() => undefined);
    await db.drop();
    await deleteBenchTopics(kafka, names);
  }
}
