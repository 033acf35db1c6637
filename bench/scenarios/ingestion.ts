// Scenario "ingestion": N record_usage events produced to pattern.usage, timed until every result is
// published (and every effect committed, checked in the database). Our worker with tracing off and on
// (against a local OTLP receiver), the same worker capped with package.json's config.nodeOptions (its
// idle and peak RSS), the naive worker, and the database floor, on the same data.
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { Kafka, Message, Producer } from 'kafkajs';
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
// The compiled worker, as the image and `npm start` run it (bench/run.ts builds it first).
export const WORKER_CLI = fileURLToPath(new URL('../../dist/bundle/patterns.js', import.meta.url));
const NAIVE = fileURLToPath(new URL('../baselines/naive-worker.ts', import.meta.url));
const PACKAGE_JSON = fileURLToPath(new URL('../../package.json', import.meta.url));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The V8 flags the shipped worker runs with, read now: the figure follows whatever package.json says. */
export async function shippedNodeOptions(): Promise<string> {
  const pkg = JSON.parse(await readFile(PACKAGE_JSON, 'utf8')) as { config?: { nodeOptions?: unknown } };
  const flags = pkg.config?.nodeOptions;
  if (typeof flags !== 'string') throw new Error(`${PACKAGE_JSON} has no "config.nodeOptions" string`);
  return flags;
}

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
  /** VmHWM at the end: the highest RSS of the process's life, the ingestion included. */
  peakRssMiB: number;
  /** RSS once ready and idle for a while, before any load (only when the variant asks for it). */
  idleRssMiB?: number;
  failures: number;
  rowsChecked: boolean;
  extra?: Record<string, unknown>;
}

export function usageMessages(events: UsageEvent[]): Message[] {
  return events.map((e) => ({
    key: e.pattern_id,
    value: JSON.stringify({ operation: 'record_usage', pattern_id: e.pattern_id, usage_data: e.usage_data }),
  }));
}

export async function countEvents(db: BenchDatabase): Promise<number> {
  const { rows } = await db.pool.query<{ n: number }>('SELECT count(*) AS n FROM pattern_usage_events');
  return rows[0]?.n ?? 0;
}

export interface KafkaVariant {
  label: string;
  start(db: BenchDatabase, names: TopicNames): Promise<Child>;
  prepare?(db: BenchDatabase): Promise<void>;
  /** Wait this long once ready and take the idle RSS before the first batch. */
  idleMs?: number;
}

export interface IngestTarget {
  producer: Producer;
  topic: string;
  /** Counts the results of this topic; runs wait until it has grown by their events. */
  counter: TopicCounter;
  child: Child;
}

/** One batch of `n` events, timed from its first send to its last result (run `index` of `count`). */
async function ingestRun(
  target: IngestTarget,
  source: Iterator<UsageEvent>,
  n: number,
  at: { index: number; count: number; label: string; log: (line: string) => void },
): Promise<RunFigures> {
  const { producer, topic, counter, child } = target;
  const target0 = counter.count;
  const batch = usageMessages(take(source, n));
  const before = child.sample();
  const t0 = performance.now();
  await produceAll(producer, topic, batch);
  const produced = performance.now();
  await waitForResults(counter, target0 + n, child);
  const t1 = performance.now();
  const after = child.sample();
  const seconds = (t1 - t0) / 1000;
  const cpu = after.cpuSeconds - before.cpuSeconds;
  at.log(
    `    ${at.label} run ${at.index + 1}/${at.count}: ${fmt(n / seconds, 0)} events/s ` +
      `(${n} in ${seconds.toFixed(2)} s, produced in ${((produced - t0) / 1000).toFixed(2)} s, worker ${(cpu / seconds).toFixed(2)} cores)`,
  );
  return {
    events: n,
    seconds: Math.round(seconds * 1000) / 1000,
    eventsPerSecond: Math.round(n / seconds),
    produceSeconds: Math.round(produced - t0) / 1000,
    cpuCores: Math.round((cpu / seconds) * 100) / 100,
    cpuMsPerThousandEvents: Math.round((cpu * 1e7) / n) / 10,
  };
}

/** `runs` batches of `n` events one after another, each timed from its first send to its last result. */
export async function ingestRuns(
  target: IngestTarget,
  source: Iterator<UsageEvent>,
  n: number,
  runCount: number,
  label: string,
  log: (line: string) => void,
): Promise<RunFigures[]> {
  const runs: RunFigures[] = [];
  for (let r = 0; r < runCount; r++) {
    runs.push(await ingestRun(target, source, n, { index: r, count: runCount, label, log }));
  }
  return runs;
}

/** Warnings the process logged (retried deadlocks, backoffs), counted by message: they explain slow runs. */
export function warningCounts(child: Child): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const l of child.output().split('\n')) {
    if (!/"level":(40|50)/.test(l)) continue;
    let msg = l;
    try {
      msg = (JSON.parse(l) as { msg?: string }).msg ?? l;
    } catch {
      // a warning line that is not JSON: counted as it is
    }
    counts[msg] = (counts[msg] ?? 0) + 1;
  }
  return counts;
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
  const [figures] = await measureKafkaVariants(kafka, patterns, source, n, options, [variant]);
  return figures as VariantFigures;
}

/**
 * Several variants, each with its own database, topics and worker, all up together; their runs alternate
 * (run r of each, the first one rotating), so that a slow minute of a shared machine falls on all alike.
 */
export async function measureKafkaVariants(
  kafka: Kafka,
  patterns: PatternRow[],
  source: Iterator<UsageEvent>,
  n: number,
  options: ScenarioOptions,
  variants: readonly KafkaVariant[],
): Promise<VariantFigures[]> {
  interface Setup {
    variant: KafkaVariant;
    db: BenchDatabase;
    names: TopicNames;
    producer: Producer;
    counter?: TopicCounter;
    child?: Child;
    monitor?: ProcMonitor;
    idleRssMiB?: number;
    runs: RunFigures[];
  }
  const setups: Setup[] = [];
  try {
    for (const variant of variants) {
      const setup: Setup = {
        variant,
        db: await createBenchDatabase('ingest'),
        names: await createBenchTopics(kafka),
        producer: await bulkProducer(kafka),
        runs: [],
      };
      setups.push(setup);
      await loadPatterns(setup.db.pool, patterns);
      await variant.prepare?.(setup.db);
      setup.counter = await new TopicCounter(kafka, [setup.names.result('pattern.usage')]).start();
      setup.child = await variant.start(setup.db, setup.names);
      await setup.child.waitReady();
      if (variant.idleMs) {
        await sleep(variant.idleMs);
        setup.idleRssMiB = Math.round(setup.child.sample().rssMiB * 10) / 10;
        options.log(
          `    ${variant.label}: idle RSS ${fmt(setup.idleRssMiB, 0)} MiB after ${variant.idleMs / 1000} s`,
        );
      }
    }
    for (const setup of setups) setup.monitor = new ProcMonitor((setup.child as Child).pid).start(250);
    for (let r = 0; r < options.runs; r++) {
      for (let j = 0; j < setups.length; j++) {
        const setup = setups[(r + j) % setups.length] as Setup;
        const target = {
          producer: setup.producer,
          topic: setup.names.request('pattern.usage'),
          counter: setup.counter as TopicCounter,
          child: setup.child as Child,
        };
        setup.runs.push(
          await ingestRun(target, source, n, {
            index: r,
            count: options.runs,
            label: setup.variant.label,
            log: (line) => options.log(line),
          }),
        );
      }
    }
    const out: VariantFigures[] = [];
    for (const setup of setups) {
      const child = setup.child as Child;
      const monitor = setup.monitor as ProcMonitor;
      monitor.stop();
      const stored = await countEvents(setup.db);
      out.push({
        runs: setup.runs,
        eventsPerSecond: spread(setup.runs.map((r) => r.eventsPerSecond)),
        cpuCores: spread(setup.runs.map((r) => r.cpuCores)),
        peakRssMiB: Math.round(child.sample().peakRssMiB * 10) / 10,
        ...(setup.idleRssMiB === undefined ? {} : { idleRssMiB: setup.idleRssMiB }),
        failures: (setup.counter as TopicCounter).failures,
        rowsChecked: stored === n * options.runs,
        extra: {
          storedEvents: stored,
          // The highest 250 ms sample during the runs; VmHWM above also covers moments between samples.
          loadPeakSampledMiB: Math.round(Math.max(...monitor.series.map((p) => p.rssMiB)) * 10) / 10,
          warnings: warningCounts(child),
          rssSeriesMiB: monitor.series.filter((_, i) => i % 4 === 0).map((p) => Math.round(p.rssMiB)),
        },
      });
    }
    return out;
  } finally {
    for (const setup of setups) {
      setup.monitor?.stop();
      await setup.child?.stop();
      await setup.counter?.stop().catch(() => undefined);
      await setup.producer.disconnect().catch(() => undefined);
      await setup.db.drop();
      await deleteBenchTopics(kafka, setup.names);
    }
  }
}

/** Waits until `target` results have arrived; fails with the process's last warnings if progress stops. */
export async function waitForResults(
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
    // No V8 flags inherited from the harness's environment; BENCH_WORKER_NODE_OPTIONS sets some for
    // experiments, e.g. --max-old-space-size=128.
    NODE_OPTIONS: process.env.BENCH_WORKER_NODE_OPTIONS ?? '',
    // Settings for experiments, as a JSON object (e.g. {"WORKER_WRITES_CONCURRENCY":"2"}).
    ...(JSON.parse(process.env.BENCH_WORKER_ENV || '{}') as Record<string, string>),
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

/** µs of worker CPU per event: steadier than throughput on a shared machine. */
const cpuPerEvent = (v: VariantFigures) => (v.cpuCores.median / v.eventsPerSecond.median) * 1e6;

/** Ours against another build measured in the same run (BENCH_COMPARE_WORKER_SCRIPT): no worse. */
function compareGoals(ours: VariantFigures, other: VariantFigures | undefined) {
  if (!other) return [];
  const label = typeof other.extra?.label === 'string' ? other.extra.label : 'comparison build';
  const throughput = ours.eventsPerSecond.median / other.eventsPerSecond.median;
  const cpu = cpuPerEvent(ours) / cpuPerEvent(other);
  return [
    goal(`ingestion vs ${label} (same run)`, '>= 1x', throughput, 'x', throughput >= 1),
    goal(
      `worker CPU per event vs ${label}`,
      '<= 1x',
      cpu,
      'x',
      cpu <= 1,
      `${fmt(cpuPerEvent(ours), 0)} µs vs ${fmt(cpuPerEvent(other), 0)} µs per event`,
    ),
  ];
}

export async function ingestion(options: ScenarioOptions): Promise<ScenarioResult> {
  const started = Date.now();
  const sizes = options.smoke
    ? { patterns: 200, events: 300, naiveEvents: 60, idleSeconds: 2 }
    : {
        patterns: 10_000,
        events: Number(process.env.BENCH_INGEST_EVENTS ?? 40_000),
        naiveEvents: 2_000,
        idleSeconds: 5,
      };
  const cappedNodeOptions = await shippedNodeOptions();
  const patterns = generatePatterns(SEED, sizes.patterns);
  const source = usageEvents({ seed: SEED, patterns, skew: 1, days: 30 });
  const kafka = benchKafka('bench-ingestion');
  const otlp = await startOtlpReceiver();
  const figures: Record<string, VariantFigures | Record<string, unknown>> = {};
  const worker = (label: string, env: Record<string, string>, idle: boolean): KafkaVariant => ({
    label,
    ...(idle ? { idleMs: sizes.idleSeconds * 1000 } : {}),
    start: (db, names) =>
      spawnNode({ script: WORKER_CLI, args: ['worker'], env: { ...workerEnv(db, names), ...env } }),
  });
  try {
    // Uncapped first and capped right after it, so the two runs compared see the most similar machine.
    options.log(
      `  our worker, tracing off: ${options.runs} x ${sizes.events} events over ${sizes.patterns} patterns`,
    );
    // Another build of the worker (e.g. the previous Kafka client), when asked for: up beside ours, on a
    // database and topics of its own, its runs alternating with ours.
    const compareScript = process.env.BENCH_COMPARE_WORKER_SCRIPT;
    const compareLabel = process.env.BENCH_COMPARE_LABEL || 'comparison build';
    if (compareScript) options.log(`  interleaved with ${compareLabel} (${compareScript}), tracing off`);
    const [ours, compared] = await measureKafkaVariants(kafka, patterns, source, sizes.events, options, [
      worker('worker (tracing off)', tracingEnv('off', otlp), true),
      ...(compareScript
        ? [
            {
              label: compareLabel,
              start: (db: BenchDatabase, names: TopicNames) =>
                spawnNode({
                  script: compareScript,
                  args: ['worker'],
                  env: { ...workerEnv(db, names), ...tracingEnv('off', otlp) },
                }),
            },
          ]
        : []),
    ]);
    figures.worker_tracing_off = ours as VariantFigures;
    if (compared) {
      compared.extra = { ...compared.extra, label: compareLabel, script: compareScript };
      figures.compare_worker = compared;
    }

    options.log(`  our worker, capped (NODE_OPTIONS="${cappedNodeOptions}"), tracing off`);
    figures.worker_capped = await measureKafkaVariant(
      kafka,
      patterns,
      source,
      sizes.events,
      options,
      worker('worker (capped)', { ...tracingEnv('off', otlp), NODE_OPTIONS: cappedNodeOptions }, true),
    );

    options.log(`  our worker, tracing on: ${options.runs} x ${sizes.events} events`);
    otlp.reset();
    const traced = await measureKafkaVariant(
      kafka,
      patterns,
      source,
      sizes.events,
      options,
      worker('worker (tracing on)', tracingEnv('on', otlp), false),
    );
    traced.extra = { ...traced.extra, otlp: otlp.counts() };
    figures.worker_tracing_on = traced;

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

  // Assigned above, so already typed as VariantFigures here.
  const ours = figures.worker_tracing_off;
  const capped = figures.worker_capped;
  const traced = figures.worker_tracing_on;
  const naive = figures.naive;
  const floor = (figures.database_floor as { eventsPerSecond: Spread }).eventsPerSecond;
  const vsNaive = ours.eventsPerSecond.median / naive.eventsPerSecond.median;
  const vsFloor = ours.eventsPerSecond.median / floor.median;
  const tracingCost = 1 - traced.eventsPerSecond.median / ours.eventsPerSecond.median;
  const cappedOverUncapped = capped.eventsPerSecond.median / ours.eventsPerSecond.median;
  const otlpCounts = (traced.extra?.otlp ?? {}) as Record<string, { requests: number; bytes: number }>;
  const spansArrived = (otlpCounts['/v1/traces']?.requests ?? 0) > 0;
  const ratios = {
    vsNaive,
    vsFloor,
    tracingCost,
    tracedOverUntraced: traced.eventsPerSecond.median / ours.eventsPerSecond.median,
    cappedOverUncapped,
  };
  const uncappedNodeOptions = process.env.BENCH_WORKER_NODE_OPTIONS ?? '';
  const memory = {
    idleSeconds: sizes.idleSeconds,
    uncapped: {
      nodeOptions: uncappedNodeOptions,
      idleRssMiB: ours.idleRssMiB ?? null,
      peakRssMiB: ours.peakRssMiB,
    },
    capped: {
      nodeOptions: cappedNodeOptions,
      idleRssMiB: capped.idleRssMiB ?? null,
      peakRssMiB: capped.peakRssMiB,
    },
    tracedPeakRssMiB: traced.peakRssMiB,
  };
  const cappedIdle = capped.idleRssMiB ?? NaN;
  const goals = [
    goal('ingestion vs naive worker', '>= 20x', vsNaive, 'x', vsNaive >= 20),
    goal('ingestion vs database floor', '>= 0.8x', vsFloor, 'x', vsFloor >= 0.8),
    goal(
      'worker peak RSS at full ingestion (capped)',
      '<= 200 MiB',
      capped.peakRssMiB,
      'MiB',
      capped.peakRssMiB <= 200,
      `NODE_OPTIONS="${cappedNodeOptions}"`,
    ),
    goal(
      'worker idle RSS (capped)',
      '<= 100 MiB',
      cappedIdle,
      'MiB',
      cappedIdle <= 100,
      `after ${sizes.idleSeconds} s idle`,
    ),
    goal('capped throughput vs uncapped', '>= 0.9x', cappedOverUncapped, 'x', cappedOverUncapped >= 0.9),
    goal(
      'tracing cost at 100% sampling',
      '<= 15%',
      tracingCost * 100,
      '%',
      tracingCost <= 0.15,
      spansArrived ? undefined : 'no spans reached the OTLP receiver: the worker does not export traces yet',
    ),
    ...compareGoals(ours, figures.compare_worker as VariantFigures | undefined),
    goal('worker peak RSS at full ingestion (uncapped)', 'report', ours.peakRssMiB, 'MiB', null),
    goal('worker idle RSS (uncapped)', 'report', ours.idleRssMiB ?? NaN, 'MiB', null),
  ];
  const line = (label: string, s: Spread) =>
    `${label.padEnd(26)} ${fmt(s.median, 0).padStart(8)} events/s (runs ${s.runs.map((x) => fmt(x, 0)).join(', ')})`;
  const mib = (x: number | undefined) => `${fmt(x ?? NaN, 0)} MiB`;
  return {
    scenario: 'ingestion',
    smoke: options.smoke,
    startedAt: new Date(started).toISOString(),
    durationS: Math.round((Date.now() - started) / 100) / 10,
    params: {
      ...sizes,
      runs: options.runs,
      seed: SEED,
      zipfExponent: 1,
      partitions: 6,
      cappedNodeOptions,
      uncappedNodeOptions,
    },
    figures: { ...figures, memory, ratios },
    goals,
    summary: [
      line('worker, tracing off', ours.eventsPerSecond),
      line('worker, capped', capped.eventsPerSecond),
      line('worker, tracing on', traced.eventsPerSecond),
      line('naive worker', naive.eventsPerSecond),
      ...(figures.compare_worker
        ? [
            line(
              process.env.BENCH_COMPARE_LABEL || 'comparison build',
              (figures.compare_worker as VariantFigures).eventsPerSecond,
            ),
          ]
        : []),
      line('database floor', floor),
      `worker CPU ${ours.cpuCores.median} cores; RSS uncapped idle ${mib(ours.idleRssMiB)}, peak ${mib(ours.peakRssMiB)}; ` +
        `capped (${cappedNodeOptions}) idle ${mib(capped.idleRssMiB)}, peak ${mib(capped.peakRssMiB)}; traced peak ${mib(traced.peakRssMiB)}`,
      `ratios: ${vsNaive.toFixed(1)}x naive, ${vsFloor.toFixed(2)}x database floor, capped/uncapped ${cappedOverUncapped.toFixed(2)}, tracing on/off ${ratios.tracedOverUntraced.toFixed(2)} (${spansArrived ? 'spans exported' : 'no spans exported'})`,
    ],
  };
}
