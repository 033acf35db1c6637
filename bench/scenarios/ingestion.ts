// Scenario "ingestion": N record_usage events produced to pattern.usage, timed until every result is
// published (and every effect committed, checked in the database). Our worker with tracing off and on
// (against a local OTLP receiver), the naive worker, and the database floor, on the same data.
import { fileURLToPath } from 'node:url';
import type { Kafka, Message } from 'kafkajs';
import type { TopicNames } from '../../src/contracts/topics.ts';
import { installRowTrigger } from '../baselines/naive-schema.ts';
import { generatePatterns, take, usageEvents, type PatternRow, type UsageEvent } from '../lib/dataset.ts';
import { createBenchDatabase, loadEvents, loadPatterns, type BenchDatabase } from '../lib/db.ts';
import {
  benchKafka,
  bulkProducer,
  createBenchTopics,
  deleteBenchTopics,
  produceAll,
  TopicCounter,
} from '../lib/kafka.ts';
import { startOtlpReceiver, type OtlpReceiver } from '../lib/otlp.ts';
import { ProcMonitor, spawnNode, type Child } from '../lib/proc.ts';
import { goal, type ScenarioOptions, type ScenarioResult } from '../lib/scenario.ts';
import { fmt, spread, type Spread } from '../lib/stats.ts';

const SEED = 8;
export const WORKER_CLI = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
const NAIVE = fileURLToPath(new URL('../baselines/naive-worker.ts', import.meta.url));

export interface RunFigures {
  events: number;
  seconds: number;
  eventsPerSecond: number;
  produceSeconds: number;
  /** Worker CPU in cores (1.0 = one core busy) over the run. */
  cpuCores: number;
  cpuMsPerThousandEvents: number;
}

export interface VariantFigures {
  runs: RunFigures[];
  eventsPerSecond: Spread;
  cpuCores: Spread;
  peakRssMiB: number;
  failures: number;
  rowsChecked: boolean;
  extra?: Record<string, unknown>;
}

function messages(events: UsageEvent[]): Message[] {
  return events.map((e) => ({
    key: e.pattern_id,
    value: JSON.stringify({ operation: 'record_usage', pattern_id: e.pattern_id, usage_data: e.usage_data }),
  }));
}

async function countEvents(db: BenchDatabase): Promise<number> {
  const { rows } = await db.pool.query<{ n: number }>('SELECT count(*) AS n FROM pattern_usage_events');
  return rows[0]?.n ?? 0;
}

export interface KafkaVariant {
  label: string;
  start(db: BenchDatabase, names: TopicNames): Promise<Child>;
  prepare?(db: BenchDatabase): Promise<void>;
}

/** Runs one Kafka-consuming variant: fresh database and topics, `runs` batches of `n` events. */
export async function measureKafkaVariant(
  kafka: Kafka,
  patterns: PatternRow[],
  source: Iterator<UsageEvent>,
  n: number,
  options: ScenarioOptions,
  variant: KafkaVariant,
): Promise<VariantFigures> {
  const db = await createBenchDatabase('ingest');
  const names = await createBenchTopics(kafka);
  let child: Child | undefined;
  let counter: TopicCounter | undefined;
  const producer = await bulkProducer(kafka);
  try {
    await loadPatterns(db.pool, patterns);
    await variant.prepare?.(db);
    counter = await new TopicCounter(kafka, [names.result('pattern.usage')]).start();
    child = await variant.start(db, names);
    await child.waitReady();
    const monitor = new ProcMonitor(child.pid).start(250);
    const runs: RunFigures[] = [];
    for (let r = 0; r < options.runs; r++) {
      const batch = messages(take(source, n));
      const before = child.sample();
      const t0 = performance.now();
      await produceAll(producer, names.request('pattern.usage'), batch);
      const produced = performance.now();
      await waitForResults(counter, (r + 1) * n, child);
      const t1 = performance.now();
      const after = child.sample();
      const seconds = (t1 - t0) / 1000;
      const cpu = after.cpuSeconds - before.cpuSeconds;
      runs.push({
        events: n,
        seconds: Math.round(seconds * 1000) / 1000,
        eventsPerSecond: Math.round(n / seconds),
        produceSeconds: Math.round(produced - t0) / 1000,
        cpuCores: Math.round((cpu / seconds) * 100) / 100,
        cpuMsPerThousandEvents: Math.round((cpu * 1e7) / n) / 10,
      });
      options.log(
        `    ${variant.label} run ${r + 1}/${options.runs}: ${fmt(n / seconds, 0)} events/s ` +
          `(${n} in ${seconds.toFixed(2)} s, produced in ${((produced - t0) / 1000).toFixed(2)} s, worker ${(cpu / seconds).toFixed(2)} cores)`,
      );
    }
    monitor.stop();
    const peakRssMiB = Math.round(child.sample().peakRssMiB * 10) / 10;
    // Warnings the process logged (retried deadlocks, backoffs): they explain slow runs.
    const warnings = child
      .output()
      .split('\n')
      .filter((l) => /"level":(40|50)/.test(l))
      .map((l) => (JSON.parse(l) as { msg?: string; err?: unknown }).msg ?? l);
    const warningCounts: Record<string, number> = {};
    for (const w of warnings) warningCounts[w] = (warningCounts[w] ?? 0) + 1;
    const stored = await countEvents(db);
    return {
      runs,
      eventsPerSecond: spread(runs.map((r) => r.eventsPerSecond)),
      cpuCores: spread(runs.map((r) => r.cpuCores)),
      peakRssMiB,
      failures: counter.failures,
      rowsChecked: stored === n * options.runs,
      extra: {
        storedEvents: stored,
        warnings: warningCounts,
        rssSeriesMiB: monitor.series.filter((_, i) => i % 4 === 0).map((s) => Math.round(s.rssMiB)),
      },
    };
  } finally {
    await child?.stop();
    await counter?.stop().catch(() => undefined);
    await producer.disconnect().catch(() => undefined);
    await db.drop();
    await deleteBenchTopics(kafka, names);
  }
}

/** Waits until `target` results have arrived; fails with the process's last warnings if progress stops. */
async function waitForResults(
  counter: TopicCounter,
  target: number,
  child: Child,
  stallMs = 30_000,
): Promise<void> {
  let seen = counter.count;
  let progressAt = Date.now();
  while (counter.count < target) {
    await counter.waitFor(target, 1000).catch(() => undefined);
    if (counter.count > seen) {
      seen = counter.count;
      progressAt = Date.now();
    } else if (Date.now() - progressAt > stallMs) {
      const tail = child
        .output()
        .split('\n')
        .filter((l) => l.trim())
        .slice(-5)
        .map((l) => l.slice(0, 600))
        .join('\n');
      throw new Error(
        `stalled at ${counter.count} of ${target} results for ${stallMs / 1000} s; the process said:\n${tail}`,
      );
    }
  }
}

export function workerEnv(db: BenchDatabase, names: TopicNames): Record<string, string> {
  return {
    DATABASE_URL: db.url,
    KAFKA_BROKERS: process.env.KAFKA_BROKERS || '127.0.0.1:9092',
    TOPIC_PREFIX: names.prefix,
    KAFKA_GROUP_ID: `${names.prefix}worker`,
    KAFKA_CLIENT_ID: 'bench-worker',
    LOG_LEVEL: 'warn',
    KAFKA_SESSION_TIMEOUT_MS: '10000',
    // For experiments with the worker's V8 flags, e.g. --max-old-space-size=128.
    ...(process.env.BENCH_WORKER_NODE_OPTIONS ? { NODE_OPTIONS: process.env.BENCH_WORKER_NODE_OPTIONS } : {}),
  };
}

function tracingEnv(mode: 'off' | 'on', otlp: OtlpReceiver): Record<string, string> {
  if (mode === 'off') return { OTEL_SDK_DISABLED: 'true' };
  return {
    OTEL_SDK_DISABLED: 'false',
    OTEL_TRACES_EXPORTER: 'otlp',
    OTEL_METRICS_EXPORTER: 'otlp',
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
    OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url,
    OTEL_TRACES_SAMPLER: 'always_on',
    OTEL_SERVICE_NAME: 'pattern-worker-bench',
  };
}

export async function ingestion(options: ScenarioOptions): Promise<ScenarioResult> {
  const started = Date.now();
  const sizes = options.smoke
    ? { patterns: 200, events: 300, naiveEvents: 60 }
    : { patterns: 10_000, events: Number(process.env.BENCH_INGEST_EVENTS ?? 40_000), naiveEvents: 2_000 };
  const patterns = generatePatterns(SEED, sizes.patterns);
  const source = usageEvents({ seed: SEED, patterns, skew: 1, days: 30 });
  const kafka = benchKafka('bench-ingestion');
  const otlp = await startOtlpReceiver();
  const figures: Record<string, VariantFigures | Record<string, unknown>> = {};
  try {
    for (const mode of ['off', 'on'] as const) {
      options.log(
        `  our worker, tracing ${mode}: ${options.runs} x ${sizes.events} events over ${sizes.patterns} patterns`,
      );
      otlp.reset();
      const f = await measureKafkaVariant(kafka, patterns, source, sizes.events, options, {
        label: `worker (tracing ${mode})`,
        start: (db, names) =>
          spawnNode({
            script: WORKER_CLI,
            args: ['worker'],
            env: { ...workerEnv(db, names), ...tracingEnv(mode, otlp) },
          }),
      });
      f.extra = { ...f.extra, otlp: otlp.counts() };
      figures[`worker_tracing_${mode}`] = f;
    }

    options.log(`  naive worker: ${options.runs} x ${sizes.naiveEvents} events`);
    figures.naive = await measureKafkaVariant(kafka, patterns, source, sizes.naiveEvents, options, {
      label: 'naive worker',
      prepare: (db) => installRowTrigger(db.pool),
      start: (db, names) =>
        spawnNode({
          script: NAIVE,
          env: { DATABASE_URL: db.url, TOPIC_PREFIX: names.prefix, KAFKA_GROUP_ID: `${names.prefix}naive` },
          readyLine: 'naive worker ready',
        }),
    });

    options.log(
      `  database floor: ${options.runs} x ${sizes.events} events, batched multi-row inserts, no Kafka`,
    );
    const db = await createBenchDatabase('floor');
    try {
      await loadPatterns(db.pool, patterns);
      const runs: number[] = [];
      for (let r = 0; r < options.runs; r++) {
        const batch = take(source, sizes.events);
        const t0 = performance.now();
        await loadEvents(db.pool, batch, {
          batchSize: 5000,
          concurrency: 2,
          identities: { prefix: `floor/${r}/` },
        });
        const seconds = (performance.now() - t0) / 1000;
        runs.push(Math.round(sizes.events / seconds));
        options.log(
          `    database floor run ${r + 1}/${options.runs}: ${fmt(sizes.events / seconds, 0)} events/s`,
        );
      }
      figures.database_floor = {
        eventsPerSecond: spread(runs),
        rowsChecked: (await countEvents(db)) === sizes.events * options.runs,
      };
    } finally {
      await db.drop();
    }
  } finally {
    await otlp.close();
  }

  const ours = figures.worker_tracing_off as VariantFigures;
  const traced = figures.worker_tracing_on as VariantFigures;
  const naive = figures.naive;
  const floor = (figures.database_floor as { eventsPerSecond: Spread }).eventsPerSecond;
  const vsNaive = ours.eventsPerSecond.median / naive.eventsPerSecond.median;
  const vsFloor = ours.eventsPerSecond.median / floor.median;
  const tracingCost = 1 - traced.eventsPerSecond.median / ours.eventsPerSecond.median;
  const otlpCounts = (traced.extra?.otlp ?? {}) as Record<string, { requests: number; bytes: number }>;
  const spansArrived = (otlpCounts['/v1/traces']?.requests ?? 0) > 0;
  const ratios = {
    vsNaive,
    vsFloor,
    tracingCost,
    tracedOverUntraced: traced.eventsPerSecond.median / ours.eventsPerSecond.median,
  };
  const goals = [
    goal('ingestion vs naive worker', '>= 20x', vsNaive, 'x', vsNaive >= 20),
    goal('ingestion vs database floor', '>= 0.5x', vsFloor, 'x', vsFloor >= 0.5),
    goal(
      'worker peak RSS at full load',
      '<= 200 MiB',
      Math.max(ours.peakRssMiB, traced.peakRssMiB),
      'MiB',
      Math.max(ours.peakRssMiB, traced.peakRssMiB) <= 200,
    ),
    goal(
      'tracing cost at 100% sampling',
      '<= 15%',
      tracingCost * 100,
      '%',
      tracingCost <= 0.15,
      spansArrived ? undefined : 'no spans reached the OTLP receiver: the worker does not export traces yet',
    ),
  ];
  const line = (label: string, s: Spread) =>
    `${label.padEnd(26)} ${fmt(s.median, 0).padStart(8)} events/s (runs ${s.runs.map((x) => fmt(x, 0)).join(', ')})`;
  return {
    scenario: 'ingestion',
    smoke: options.smoke,
    startedAt: new Date(started).toISOString(),
    durationS: Math.round((Date.now() - started) / 100) / 10,
    params: { ...sizes, runs: options.runs, seed: SEED, zipfExponent: 1, partitions: 6 },
    figures: { ...figures, ratios },
    goals,
    summary: [
      line('worker, tracing off', ours.eventsPerSecond),
      line('worker, tracing on', traced.eventsPerSecond),
      line('naive worker', naive.eventsPerSecond),
      line('database floor', floor),
      `worker CPU ${ours.cpuCores.median} cores, peak RSS ${ours.peakRssMiB} MiB (traced: ${traced.peakRssMiB} MiB)`,
      `ratios: ${vsNaive.toFixed(1)}x naive, ${vsFloor.toFixed(2)}x database floor, tracing on/off ${ratios.tracedOverUntraced.toFixed(2)} (${spansArrived ? 'spans exported' : 'no spans exported'})`,
    ],
  };
}
