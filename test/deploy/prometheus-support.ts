// Shared by the Prometheus tests: promtool and a real Prometheus server (Debian's `prometheus` package,
// which .ci/run installs), the dashboard's queries, and the metric names a PromQL expression reads.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { freePort } from '../support/worker-process.ts';
import { CHART, ROOT } from './support.ts';

export const PROMETHEUS_DIR = join(ROOT, 'deploy', 'prometheus');
export const RULES_TESTS = join(PROMETHEUS_DIR, 'pattern-worker.rules.test.yml');
export const DASHBOARD_FILE = join(CHART, 'dashboards', 'pattern-worker.json');

const MISSING = 'is not installed: apt-get install prometheus (Debian; .ci/run installs it when missing)';

/** Runs promtool; a missing binary is a failure, not a skip. */
export function promtool(...args: string[]): { status: number | null; output: string } {
  const run = spawnSync('promtool', args, { encoding: 'utf8', timeout: 60_000 });
  if (run.error) throw new Error(`promtool ${MISSING} (${run.error.message})`);
  return { status: run.status, output: `${run.stdout}${run.stderr}` };
}

// PromQL words that are not metric names.
const KEYWORDS = new Set(['and', 'or', 'unless', 'bool', 'offset', 'inf', 'nan', 'atan2']);

/**
 * The metric names an expression selects: identifiers left once strings, label matchers, ranges, grouping
 * clauses, numbers and durations are taken out, except those called as functions or aggregations.
 */
export function metricNames(expr: string): Set<string> {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/\b(?:group_left|group_right)\b/g, ' ')
    .replace(/(?<![\w:])\d+(?:\.\d+)?(?:e[+-]?\d+)?(?:ms|[smhdwy])?(?![\w:])/gi, ' ');
  const names = new Set<string>();
  for (const m of stripped.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    const rest = stripped.slice(m.index + m[0].length);
    if (/^\s*\(/.test(rest) || KEYWORDS.has(m[0].toLowerCase())) continue;
    names.add(m[0]);
  }
  return names;
}

type Datasource = { type: string; uid: string };
export interface Dashboard {
  uid: string;
  panels: {
    id: number;
    title: string;
    type: string;
    datasource?: Datasource;
    gridPos: { x: number; y: number; w: number; h: number };
    targets?: { expr: string; refId: string; datasource: Datasource }[];
  }[];
  templating: { list: { name: string; type: string; query?: string | { query: string } }[] };
}

export function readDashboard(): Dashboard {
  return JSON.parse(readFileSync(DASHBOARD_FILE, 'utf8')) as Dashboard;
}

/** Every PromQL of the dashboard: panel targets, and the selectors of its label_values() variables. */
export function dashboardQueries(dashboard = readDashboard()): { where: string; expr: string }[] {
  const queries = dashboard.panels.flatMap((p) =>
    (p.targets ?? []).map((t) => ({ where: `panel "${p.title}"`, expr: t.expr })),
  );
  for (const v of dashboard.templating.list) {
    if (v.type !== 'query') continue;
    const query = typeof v.query === 'string' ? v.query : (v.query?.query ?? '');
    const selector = /^label_values\((.*),\s*\w+\)$/.exec(query)?.[1];
    if (!selector) throw new Error(`variable ${v.name}: not a label_values(selector, label) query`);
    queries.push({ where: `variable $${v.name}`, expr: selector });
  }
  return queries;
}

/** Grafana's variables replaced by what they stand for with everything selected. */
export function withoutVariables(expr: string, rateInterval = '1m'): string {
  return expr.replaceAll('$__rate_interval', rateInterval).replace(/\$\w+/g, '.*');
}

export interface PrometheusServer {
  url: string;
  /** GET /api/v1/<path>; throws unless the answer is status "success". */
  api<T>(path: string, params?: Record<string, string>): Promise<T>;
  output(): string;
  stop(): Promise<void>;
}

/** A Prometheus server on a free port, scraping `targets` every second and evaluating `ruleFiles`. */
export async function startPrometheus(options: {
  targets: string[];
  ruleFiles: string[];
  interval?: string;
}): Promise<PrometheusServer> {
  const dir = mkdtempSync(join(tmpdir(), 'pattern-worker-prometheus-'));
  const interval = options.interval ?? '1s';
  const config = join(dir, 'prometheus.yml');
  writeFileSync(
    config,
    stringify({
      global: { scrape_interval: interval, evaluation_interval: interval, scrape_timeout: interval },
      rule_files: options.ruleFiles,
      scrape_configs: [{ job_name: 'pattern-worker', static_configs: [{ targets: options.targets }] }],
    }),
  );
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child: ChildProcess = spawn(
    'prometheus',
    [
      `--config.file=${config}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let log = '';
  child.stdout?.on('data', (d: Buffer) => (log += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (log += d.toString()));
  const spawned = new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', (err) => reject(new Error(`prometheus ${MISSING} (${err.message})`)));
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await spawned;
    for (const deadline = Date.now() + 20_000; ;) {
      if (child.exitCode !== null) throw new Error(`prometheus exited with ${child.exitCode}:\n${log}`);
      const ready = await fetch(`${url}/-/ready`).then(
        (r) => r.ok,
        () => false,
      );
      if (ready) break;
      if (Date.now() > deadline) throw new Error(`prometheus not ready in 20 s:\n${log}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    url,
    output: () => log,
    stop,
    async api<T>(path: string, params: Record<string, string> = {}) {
      const res = await fetch(`${url}/api/v1/${path}?${new URLSearchParams(params).toString()}`);
      const body = (await res.json()) as { status: string; data: T; error?: string };
      if (body.status !== 'success') throw new Error(`${path} ${JSON.stringify(params)}: ${body.error}`);
      return body.data;
    },
  };
}
