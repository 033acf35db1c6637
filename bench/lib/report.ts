// Result files: <scenario>-<timestamp>.json and <scenario>-latest.json, then the SVG charts and the
// README in the results directory, regenerated from the latest result of each scenario.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import type { Machine } from './machine.ts';
import type { Goal, ScenarioResult } from './scenario.ts';
import { machineLine, machineShort } from './machine.ts';
import type { CpuCores } from './proc.ts';
import { barChart, logLineChart } from './svg.ts';
import { fmt } from './stats.ts';

export type StoredResult = ScenarioResult & { machine: Machine };

export async function writeResult(dir: string, result: ScenarioResult, machine: Machine): Promise<string> {
  await mkdir(dir, { recursive: true });
  const stamp = result.startedAt.replace(/[:.]/g, '-');
  const body = `${JSON.stringify({ ...result, machine }, null, 2)}\n`;
  const file = join(dir, `${result.scenario}-${stamp}.json`);
  await writeFile(file, body);
  await writeFile(join(dir, `${result.scenario}-latest.json`), body);
  return file;
}

export async function readLatest(dir: string, scenario: string): Promise<StoredResult | undefined> {
  try {
    return JSON.parse(await readFile(join(dir, `${scenario}-latest.json`), 'utf8')) as StoredResult;
  } catch {
    return undefined;
  }
}

interface SpreadJson {
  median: number;
  min: number;
  max: number;
  runs: number[];
}
interface LatencyJson {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  failures?: number;
  eventsPerSecond?: number;
}
interface MeasuredJson {
  p50: SpreadJson;
  p90: SpreadJson;
  p99: SpreadJson;
  p999: SpreadJson;
  curve: { p: number; ms: number }[];
}
interface VariantJson {
  eventsPerSecond: SpreadJson;
  cpuCores?: SpreadJson;
  peakRssMiB?: number;
  idleRssMiB?: number;
  failures?: number;
  rowsChecked?: boolean;
}

const ANALYSIS = fileURLToPath(new URL('../ANALYSIS.md', import.meta.url));
const range = (s: SpreadJson, d = 0) => `${fmt(s.min, d)} – ${fmt(s.max, d)}`;

function goalsTable(goals: Goal[]): string[] {
  return [
    '| goal | target | measured | |',
    '| --- | --- | --- | --- |',
    ...goals.map(
      (g) =>
        `| ${g.name} | ${g.target} | ${g.value === null ? 'n/a' : `${fmt(g.value, g.unit === 'x' ? 2 : 1)} ${g.unit}`} | ${g.met === null ? 'reported' : g.met ? 'met' : '**missed**'}${g.note ? ` (${g.note})` : ''} |`,
    ),
  ];
}

function nodesSection(r: StoredResult): string[] {
  const f = r.figures as {
    ops: Record<string, LatencyJson>;
    targets: Record<string, { seedMs?: number; goalP99Ms?: number }>;
    load: Record<string, number>;
    hotPatternEvents: number;
    dailyRollupRows: number;
  };
  const p = r.params as { patterns: number; events: number; hot: number };
  return [
    '## Effect nodes alone (`npm run bench -- nodes`)',
    '',
    `${machineLine(r.machine)}. ${p.patterns.toLocaleString('en-US')} patterns, ${p.events.toLocaleString('en-US')} usage events over 90 days ` +
      `(hot pattern: ${f.hotPatternEvents?.toLocaleString('en-US')} events; daily rollup: ${f.dailyRollupRows?.toLocaleString('en-US')} rows). ` +
      `Bulk load: ${fmt(f.load.patternsPerSecond ?? NaN, 0)} patterns/s, ${fmt(f.load.eventsPerSecond ?? NaN, 0)} events/s. Every operation below goes through a node, sequentially.`,
    '',
    '| operation | n | p50 ms | p99 ms | seed target | our goal | throughput |',
    '| --- | ---: | ---: | ---: | --- | --- | ---: |',
    ...Object.entries(f.ops).map(([name, o]) => {
      const t = f.targets[name.startsWith('record_usage_batch') ? 'record_usage_batch_500' : name] ?? {};
      return `| ${name} | ${o.count} | ${fmt(o.p50, 2)} | ${fmt(o.p99, 2)} | ${t.seedMs ? `< ${t.seedMs} ms` : ''} | ${t.goalP99Ms ? `p99 ≤ ${t.goalP99Ms} ms` : name.startsWith('record_usage_batch') ? '≥ 50,000 events/s' : ''} | ${o.eventsPerSecond ? `${fmt(o.eventsPerSecond, 0)} events/s` : ''} |`;
    }),
    '',
    ...goalsTable(r.goals),
    '',
    '![effect node latency](nodes.svg)',
    '',
  ];
}

function ingestionSection(r: StoredResult): string[] {
  const f = r.figures as Record<string, VariantJson> & {
    ratios: { vsNaive: number; vsFloor: number; tracingCost: number; cappedOverUncapped?: number };
    memory?: {
      idleSeconds: number;
      uncapped: { nodeOptions: string; idleRssMiB: number | null; peakRssMiB: number };
      capped: { nodeOptions: string; idleRssMiB: number | null; peakRssMiB: number };
    };
  };
  const p = r.params as { patterns: number; events: number; naiveEvents: number; runs: number };
  const ours = f.worker_tracing_off as VariantJson;
  const row = (label: string, v: VariantJson | undefined, n: number) =>
    v
      ? `| ${label} | ${n.toLocaleString('en-US')} | ${fmt(v.eventsPerSecond.median, 0)} | ${range(v.eventsPerSecond)} | ${(v.eventsPerSecond.median / ours.eventsPerSecond.median).toFixed(3)} | ${v.cpuCores ? v.cpuCores.median.toFixed(2) : ''} | ${v.idleRssMiB ? fmt(v.idleRssMiB, 0) : ''} | ${v.peakRssMiB ? fmt(v.peakRssMiB, 0) : ''} |`
      : '';
  const m = f.memory;
  const flags = (o: string) => (o ? `\`NODE_OPTIONS="${o}"\`` : 'no NODE_OPTIONS');
  const memory = m
    ? [
        `Memory: uncapped (${flags(m.uncapped.nodeOptions)}) idle RSS ${fmt(m.uncapped.idleRssMiB ?? NaN, 0)} MiB, peak ${fmt(m.uncapped.peakRssMiB, 0)} MiB; ` +
          `capped as shipped (${flags(m.capped.nodeOptions)}, from package.json's \`config.nodeOptions\`) idle RSS ${fmt(m.capped.idleRssMiB ?? NaN, 0)} MiB, peak ${fmt(m.capped.peakRssMiB, 0)} MiB, ` +
          `throughput ${fmt(f.ratios.cappedOverUncapped ?? NaN, 2)}× uncapped. Idle: RSS once ready and idle for ${m.idleSeconds} s, before any load; peak: the process's VmHWM after the runs.`,
        '',
      ]
    : [];
  return [
    '## Usage ingestion, end to end (`npm run bench -- ingestion`)',
    '',
    `${machineLine(r.machine)}. record_usage events over ${p.patterns.toLocaleString('en-US')} patterns (Zipf s=1) produced to \`pattern.usage\` (6 partitions), ` +
      `timed from the first send until every result is on the result topic; rows checked in the database. ${p.runs} runs each, median and range.`,
    '',
    '| variant | events per run | events/s (median) | range | vs our worker | worker CPU (cores) | idle RSS MiB | peak RSS MiB |',
    '| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: |',
    // A variant missing from an older result leaves no empty line, which would end the table.
    ...[
      row('our worker, tracing off', ours, p.events),
      row('our worker, capped (config.nodeOptions), tracing off', f.worker_capped, p.events),
      row('our worker, tracing on (OTLP/HTTP, 100% sampled)', f.worker_tracing_on, p.events),
      row('naive worker (eachMessage, 1 tx per message, row trigger)', f.naive, p.naiveEvents),
      row('database floor (batched multi-row insert, no Kafka)', f.database_floor, p.events),
    ].filter(Boolean),
    '',
    `Ratios: our worker = **${f.ratios.vsNaive.toFixed(1)}×** the naive worker and **${f.ratios.vsFloor.toFixed(2)}×** the database floor; ` +
      `tracing costs ${(f.ratios.tracingCost * 100).toFixed(1)}% of throughput.`,
    '',
    ...memory,
    ...goalsTable(r.goals),
    '',
    '![ingestion throughput](throughput.svg)',
    '',
  ];
}

function searchSection(r: StoredResult): string[] {
  const f = r.figures as {
    worker: MeasuredJson;
    kafka_floor: MeasuredJson;
    query_floor: MeasuredJson;
    ramp: { rate: number; p50: number; p99: number; errors: number }[];
    maxRateP99Under50: number;
    ratios: { p50OverFloors: number; p99OverFloors?: number };
    workerPeakRssMiB: number;
  };
  const p = r.params as { patterns: number; rate: number; seconds: number; runs: number };
  const row = (label: string, m: MeasuredJson) =>
    `| ${label} | ${fmt(m.p50.median, 2)} | ${fmt(m.p90.median, 2)} | ${fmt(m.p99.median, 2)} | ${fmt(m.p999.median, 2)} | ${range(m.p50, 2)} |`;
  return [
    '## Request/reply search latency (`npm run bench -- search`)',
    '',
    `${machineLine(r.machine)}. \`PatternClient.search\` (limit 10, half with a language filter) against ${p.patterns.toLocaleString('en-US')} patterns, ` +
      `open loop at ${p.rate} requests/s for ${p.seconds} s, latency from each request's due time (a request unanswered after 5 s counts as an error, not a latency); ${p.runs} runs, medians of the per-run percentiles, each run starting once the previous backlog is worked off.`,
    '',
    '| path | p50 ms | p90 ms | p99 ms | p99.9 ms | p50 range |',
    '| --- | ---: | ---: | ---: | ---: | --- |',
    row('worker round trip', f.worker),
    row('Kafka floor (echo, no database)', f.kafka_floor),
    row('query floor (the search SQL through pg, one at a time)', f.query_floor),
    '',
    `Worker p50 = ${f.ratios.p50OverFloors.toFixed(2)}× (Kafka floor p50 + query floor p50), p99 = ${fmt(f.ratios.p99OverFloors ?? NaN, 2)}× (Kafka floor p99 + query floor p99). Highest offered load with p99 < 50 ms: **${f.maxRateP99Under50}/s**. Worker peak RSS ${fmt(f.workerPeakRssMiB, 0)} MiB.`,
    '',
    '| offered load /s | p50 ms | p99 ms | errors |',
    '| ---: | ---: | ---: | ---: |',
    ...f.ramp.map((x) => `| ${x.rate} | ${fmt(x.p50, 2)} | ${fmt(x.p99, 2)} | ${x.errors} |`),
    '',
    ...goalsTable(r.goals),
    '',
    '![search latency distribution](latency.svg)',
    '',
  ];
}

function mixedSection(r: StoredResult): string[] {
  interface Ingest {
    eventsPerSecond: SpreadJson;
    cpuCores: SpreadJson;
  }
  interface Latency {
    sent: number;
    errors: number;
    pooled: LatencyJson;
    p99CountingFailures: number;
    /** The worker's own part of each answer (metadata.duration_ms); absent in results before 4 December. */
    effect?: LatencyJson;
  }
  const f = r.figures as {
    solo: { ingestion: Ingest; search: Latency };
    mixed: {
      windowSeconds: number;
      ingestion: Ingest;
      search: Latency;
      analytics: Latency;
      replay: {
        messages: number;
        seconds: number;
        messagesPerSecond: number;
        wallSeconds: number;
        budget: string;
        rowsAtWindowStart: number;
        rowsAtWindowEnd: number;
        runningThroughout: boolean;
      };
    };
    worker: { peakRssMiB: number };
    ratios: { ingestionMixedOverSolo: number; searchP99MixedOverSolo: number };
    /** Absent in results before 5 December. */
    cpuCores?: Record<'soloIngestion' | 'mixedWindow', CpuCores>;
  };
  const p = r.params as {
    patterns: number;
    usagePatterns: number;
    events: number;
    replayEvents: number;
    searchRate: number;
    analyticsRate: number;
    runs: number;
  };
  const { solo, mixed: mix } = f;
  const rp = mix.replay;
  const ingestRow = (label: string, i: Ingest) =>
    `| ${label} | ${fmt(i.eventsPerSecond.median, 0)} events/s | ${range(i.eventsPerSecond)} | worker ${i.cpuCores.median.toFixed(2)} cores |`;
  const latencyRow = (label: string, l: Latency) =>
    `| ${label} | p50 ${fmt(l.pooled.p50, 2)} ms, p99 ${fmt(l.p99CountingFailures, 2)} ms` +
    (l.effect?.count
      ? ` (the worker's own part: p50 ${fmt(l.effect.p50, 2)} ms, p99 ${fmt(l.effect.p99, 2)} ms)`
      : '') +
    ` | ${l.sent} sent | ${l.errors} failed |`;
  return [
    '## Mixed load (`npm run bench -- mixed`)',
    '',
    `${machineLine(r.machine)}. One worker (default lanes) on ${p.patterns.toLocaleString('en-US')} patterns: usage ingestion at full speed ` +
      `(${p.runs} x ${p.events.toLocaleString('en-US')} record_usage events over ${p.usagePatterns.toLocaleString('en-US')} patterns), ` +
      `searches at ${p.searchRate}/s and global analytics at ${p.analyticsRate}/s (\`get_global_stats\`, a dashboard's poll) through \`PatternClient\` from a process of its own (open loop), ` +
      `while \`patterns replay\` re-applies ${p.replayEvents.toLocaleString('en-US')} usage messages of another topic prefix into another database on the same PostgreSQL server. ` +
      `Solo: the same ingestion and searches by the same worker, alone, earlier in the run. Percentiles pooled over the window; a failed request counts as slower than every answer.`,
    '',
    '| measurement | figure | range / count | |',
    '| --- | --- | --- | --- |',
    ingestRow('ingestion, solo', solo.ingestion),
    ingestRow('ingestion, mixed', mix.ingestion),
    latencyRow(`search ${p.searchRate}/s, solo`, solo.search),
    latencyRow(`search ${p.searchRate}/s, mixed`, mix.search),
    latencyRow(`global analytics ${p.analyticsRate}/s, mixed`, mix.analytics),
    `| replay (${rp.budget}) | ${fmt(rp.messagesPerSecond, 0)} messages/s | ${rp.messages.toLocaleString('en-US')} in ${fmt(rp.seconds, 1)} s (${fmt(rp.wallSeconds, 1)} s from spawn to exit) | ${rp.runningThroughout ? 'running throughout the window' : `done inside the window (${rp.rowsAtWindowStart.toLocaleString('en-US')} applied when it opened)`} |`,
    '',
    `Ratios: mixed ingestion = **${fmt(f.ratios.ingestionMixedOverSolo, 2)}×** its solo rate, mixed search p99 = **${fmt(f.ratios.searchP99MixedOverSolo, 2)}×** its solo p99. ` +
      `Mixed window ${fmt(mix.windowSeconds, 1)} s; worker peak RSS ${fmt(f.worker.peakRssMiB, 0)} MiB.`,
    '',
    ...(f.cpuCores ? cpuTable(f.cpuCores, r.machine.cpus) : []),
    ...goalsTable(r.goals),
    '',
  ];
}

/** Cores used per role in the mixed scenario's two phases: what the window's loads share. */
function cpuTable(cpu: Record<'soloIngestion' | 'mixedWindow', CpuCores>, cpus: number) {
  const row = (label: string, c: CpuCores) =>
    `| ${label} | ${[c.worker, c.database, c.broker, c.load, c.replay, c.all].map((x) => fmt(x, 2)).join(' | ')} |`;
  return [
    `CPU cores per role (of ${cpus}), from /proc: the live worker's processes, PostgreSQL, the broker, the load generator (the harness and the requester) and the replay. ` +
      'Ingestion in the mixed window gets what the searches, the analytics and the replay leave it (bench/ANALYSIS.md).',
    '',
    '| phase | worker | database | broker | load generator | replay | all |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
    row('solo ingestion', cpu.soloIngestion),
    row('mixed window', cpu.mixedWindow),
    '',
  ];
}

function soakSection(r: StoredResult): string[] {
  const f = r.figures as {
    peakRssMiB: number;
    rssEarlyMiB: number;
    rssLateMiB: number;
    growthPercent: number;
    eventsSent: number;
    cpuCores: number;
    backlogAtEndOfLoad?: number;
  };
  const p = r.params as { minutes: number; rate: number; searchRate: number };
  return [
    '## Soak (`npm run bench -- soak`, not in the default run)',
    '',
    `${machineLine(r.machine)}. ${p.minutes} min at ${p.rate} usage events/s plus ${p.searchRate} searches/s. ` +
      `RSS ${fmt(f.rssEarlyMiB, 0)} MiB in the second minute, ${fmt(f.rssLateMiB, 0)} MiB in the last (${f.growthPercent}%), peak ${fmt(f.peakRssMiB, 0)} MiB; worker CPU ${f.cpuCores} cores; ${f.backlogAtEndOfLoad ?? 0} events still unprocessed when the load stopped.`,
    '',
    ...goalsTable(r.goals),
    '',
  ];
}

/** Regenerates README.md and the SVG charts in `dir` from the latest result of each scenario. */
export async function writeReport(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  const [nodes, ingestion, search, mixed, soak] = await Promise.all(
    ['nodes', 'ingestion', 'search', 'mixed', 'soak'].map((s) => readLatest(dir, s)),
  );
  if (nodes) {
    const ops = (nodes.figures as { ops: Record<string, LatencyJson> }).ops;
    await writeFile(
      join(dir, 'nodes.svg'),
      barChart(
        'Effect nodes: p99 latency per operation',
        'ms',
        Object.entries(ops).map(([label, o]) => ({ label, value: o.p99, note: `(p50 ${fmt(o.p50, 2)})` })),
        machineShort(nodes.machine),
      ),
    );
  }
  if (ingestion) {
    const f = ingestion.figures as Record<string, VariantJson | undefined>;
    const bars = [
      ['our worker, tracing off', f.worker_tracing_off],
      ['our worker, capped', f.worker_capped],
      ['our worker, tracing on', f.worker_tracing_on],
      ['naive worker', f.naive],
      ['database floor', f.database_floor],
    ]
      .filter((b): b is [string, VariantJson] => b[1] !== undefined)
      .map(([label, v]) => ({ label, value: v.eventsPerSecond.median }));
    await writeFile(
      join(dir, 'throughput.svg'),
      barChart(
        'Usage ingestion throughput (median of runs)',
        'events/s',
        bars,
        machineShort(ingestion.machine),
      ),
    );
  }
  if (search) {
    const f = search.figures as Record<string, MeasuredJson>;
    const series = [
      ['worker round trip', f.worker],
      ['Kafka floor', f.kafka_floor],
      ['query floor (one at a time)', f.query_floor],
    ]
      .filter((s): s is [string, MeasuredJson] => s[1] !== undefined)
      .map(([label, m]) => ({ label, points: m.curve.map((c) => ({ x: `p${c.p}`, y: c.ms })) }));
    const rate = (search.params as { rate: number }).rate;
    // The goals are ratios to the floors: their lines sit at twice the floors' sum, where measured.
    const sum = (q: 'p50' | 'p99') =>
      2 * ((f.kafka_floor?.[q].median ?? NaN) + (f.query_floor?.[q].median ?? NaN));
    const marks = [
      { y: sum('p50'), label: 'goal p50: 2x floors' },
      { y: sum('p99'), label: 'goal p99: 2x floors' },
    ].filter((m) => Number.isFinite(m.y));
    await writeFile(
      join(dir, 'latency.svg'),
      logLineChart(
        `Search latency distribution at ${rate} requests/s (open loop, all runs pooled)`,
        'ms',
        series,
        machineShort(search.machine),
        marks,
      ),
    );
  }
  let analysis = '';
  try {
    analysis = await readFile(ANALYSIS, 'utf8');
  } catch {
    // no analysis written yet
  }
  const lines = [
    '# Benchmark results',
    '',
    'Generated by `npm run bench` from the `*-latest.json` files in this directory (each run also keeps a',
    'timestamped copy). The machine is shared and noisy: read the ratios against the baselines measured in the',
    'same run rather than the absolute figures. Charts: [latency.svg](latency.svg), [throughput.svg](throughput.svg),',
    '[nodes.svg](nodes.svg).',
    '',
    ...(nodes ? nodesSection(nodes) : []),
    ...(ingestion ? ingestionSection(ingestion) : []),
    ...(search ? searchSection(search) : []),
    ...(mixed ? mixedSection(mixed) : []),
    ...(soak ? soakSection(soak) : []),
    ...(analysis ? [analysis.trim(), ''] : []),
  ];
  await writeFile(join(dir, 'README.md'), `${lines.join('\n')}\n`);
}
