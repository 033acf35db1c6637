// The benchmark harness: `npm run bench` runs every scenario but the soak, the deploy and the hotkey;
// `npm run bench -- <name...>` runs the named ones. Options: --smoke (tiny sizes, for CI), --runs N (repetitions, default 3),
// --out DIR (default bench/results). Each scenario prints its figures and ratios and writes
// <scenario>-<timestamp>.json plus <scenario>-latest.json; then the charts and README are regenerated.
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { dropAll } from './lib/db.ts';
import { killAll } from './lib/proc.ts';
import { describeMachine, machineLine } from './lib/machine.ts';
import { writeReport, writeResult } from './lib/report.ts';
import type { ScenarioOptions, ScenarioResult } from './lib/scenario.ts';
import { deploy } from './scenarios/deploy.ts';
import { hotkey } from './scenarios/hotkey.ts';
import { ingestion } from './scenarios/ingestion.ts';
import { mixed } from './scenarios/mixed.ts';
import { nodes } from './scenarios/nodes.ts';
import { search } from './scenarios/search.ts';
import { soak } from './scenarios/soak.ts';

const SCENARIOS: Record<string, (o: ScenarioOptions) => Promise<ScenarioResult>> = {
  nodes,
  ingestion,
  search,
  mixed,
  soak,
  deploy,
  hotkey,
};
const DEFAULT = ['nodes', 'ingestion', 'search', 'mixed'];

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    smoke: { type: 'boolean', default: false },
    runs: { type: 'string' },
    out: { type: 'string' },
    report: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});

if (values.help) {
  console.log(`usage: npm run bench -- [${Object.keys(SCENARIOS).join('|')} ...] [--smoke] [--runs N] [--out DIR] [--report]
  no scenario: ${DEFAULT.join(', ')} (soak, deploy and hotkey only when named); --report only regenerates README.md and charts

environment (all optional):
  BENCH_COMPARE_WORKER_SCRIPT=PATH  ingestion and search also measure this build of the worker (its CLI
                                    script), up beside ours, runs alternating; BENCH_COMPARE_LABEL names it
  BENCH_WORKER_ENV='{"K":"V"}'      extra worker settings (not deploy); BENCH_WORKER_NODE_OPTIONS: V8 flags
  BENCH_INGEST_EVENTS, BENCH_MIXED_EVENTS   events per ingestion run (default 40000)
  BENCH_MIXED_ANALYTICS=compute_analytics   mixed sends the stored computation instead of get_global_stats
  BENCH_DEPLOY_AFTER_KILL_S=S       deploy: seconds measured after the SIGKILL (default 45)
  BENCH_DEPLOY_ORDER=surge          deploy: each replacement starts before its old worker stops
  BENCH_DEPLOY_MIN_READY_S=S        deploy: wait after each replacement is ready (minReadySeconds)
  BENCH_DEPLOY_WORKER_SCRIPT, BENCH_DEPLOY_WORKER_ENV, BENCH_DEPLOY_LABEL   deploy: another build
  BENCH_SOAK_MINUTES, BENCH_SOAK_RATE, BENCH_SOAK_SEARCH_RATE               soak: length and load
  BENCH_DATABASE_URL                the PostgreSQL server for throwaway databases (default 127.0.0.1:5432)`);
  process.exit(0);
}
if (values.report) {
  // Regenerate README.md and the charts from the latest results, without running anything.
  await writeReport(values.out ?? fileURLToPath(new URL('./results/', import.meta.url)));
  process.exit(0);
}
const unknown = positionals.filter((p) => !(p in SCENARIOS));
if (unknown.length > 0) {
  console.error(`unknown scenario ${unknown.join(', ')}; known: ${Object.keys(SCENARIOS).join(', ')}`);
  process.exit(2);
}
const chosen = positionals.length > 0 ? positionals : DEFAULT;
const smoke = values.smoke ?? false;
// Smoke figures mean nothing; they never overwrite the published results unless asked to.
const outDir =
  values.out ??
  (smoke
    ? join(tmpdir(), 'pattern-worker-bench-smoke')
    : fileURLToPath(new URL('./results/', import.meta.url)));
const options: ScenarioOptions = {
  smoke,
  runs: Number(values.runs ?? (smoke ? 1 : 3)),
  log: (line) => console.log(line),
};

// However the harness ends, no child it started outlives it (kill is synchronous, so it works here).
process.on('exit', () => killAll());
let interrupted = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    interrupted = true;
    console.error(`\n${signal}: stopping child processes, dropping benchmark databases`);
    killAll();
    void dropAll().finally(() => process.exit(130));
  });
}

// The worker is measured as it ships: compiled and bundled (dist/bundle/), as the image and `npm start`
// run it.
{
  const root = fileURLToPath(new URL('..', import.meta.url));
  const steps = [
    ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json'],
    ['node_modules/rolldown/bin/cli.mjs', '-c', 'rolldown.config.js'],
  ];
  for (const [script, ...args] of steps) {
    const built = spawnSync(process.execPath, [script as string, ...args], { cwd: root, encoding: 'utf8' });
    if (built.status !== 0) {
      console.error(`${built.stdout}${built.stderr}`);
      console.error(`building the worker failed (${script} ${args.join(' ')}; try npm run build)`);
      process.exit(1);
    }
  }
}
const machine = await describeMachine();
console.log(`pattern-worker benchmarks: ${chosen.join(', ')}${smoke ? ' (smoke sizes)' : ''}`);
console.log(machineLine(machine));
const started = Date.now();
let failed = false;
for (const name of chosen) {
  if (interrupted) break;
  console.log(`\n== ${name}`);
  try {
    const result = await (SCENARIOS[name] as (o: ScenarioOptions) => Promise<ScenarioResult>)(options);
    const file = await writeResult(outDir, result, machine);
    for (const line of result.summary) console.log(`  ${line}`);
    for (const g of result.goals) {
      const mark = g.met === null ? '?' : g.met ? 'met' : 'MISSED';
      console.log(
        `  goal ${g.name} ${g.target}: ${g.value ?? 'n/a'} ${g.unit} ${mark}${g.note ? ` (${g.note})` : ''}`,
      );
    }
    console.log(`  -> ${file}`);
  } catch (err) {
    failed = true;
    console.error(`  ${name} failed:`, err);
    // Whatever the scenario's own cleanup missed goes now, before the next scenario measures anything.
    killAll();
    await dropAll();
  }
}
await dropAll();
await writeReport(outDir);
console.log(`\ndone in ${((Date.now() - started) / 1000).toFixed(0)} s`);
process.exit(failed ? 1 : 0);
