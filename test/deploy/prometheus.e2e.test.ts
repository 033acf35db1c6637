// A real Prometheus scrapes a real worker (real Kafka and PostgreSQL) every second and evaluates the
// shipped rules, plus the same rules rendered from the chart with the dead-letter alert lowered to fire on
// any dead letter at once. Every metric the rules and the dashboard read must be on the worker's /metrics,
// so a renamed metric fails here, and every dashboard query must return series.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { parse } from 'yaml';
import {
  renderRuleGroups,
  RULES_FILE,
  rulesFileText,
  type RuleGroups,
} from '../../scripts/prometheus-rules.ts';
import { createStack, type Stack } from '../support/stack.ts';
import type { WorkerProcess } from '../support/worker-process.ts';
import {
  dashboardQueries,
  metricNames,
  startPrometheus,
  withoutVariables,
  type PrometheusServer,
} from './prometheus-support.ts';

vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

// Made by Prometheus itself, not exported by the worker.
const SYNTHETIC = new Set(['up']);
const MARKER = 'prometheus-e2e-fault';

interface Rule {
  name: string;
  type: string;
  health: string;
  state?: string;
  lastError?: string;
}
interface Group {
  name: string;
  file: string;
  rules: Rule[];
}
interface Alert {
  labels: Record<string, string>;
  state: string;
}
interface Sample {
  metric: Record<string, string>;
  value: [number, string];
}

let stack: Stack;
let worker: WorkerProcess;
let prometheus: PrometheusServer;
let dir: string;
let lowered: string;

const shipped = parse(readFileSync(RULES_FILE, 'utf8')) as RuleGroups;
const query = (q: string) => prometheus.api<{ result: Sample[] }>('query', { query: q });

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'pattern-worker-rules-e2e-'));
  lowered = join(dir, 'lowered.rules.yml');
  const groups = renderRuleGroups({ deadLetters: { perMinute: 0, for: '0s' } });
  for (const g of groups.groups) g.name = `${g.name}-lowered`;
  writeFileSync(lowered, await rulesFileText(groups, '# Rendered by the test: dead letters alert at once.'));
  stack = await createStack({ partitions: 1 });
  worker = await stack.worker({ WORKER_MAX_ATTEMPTS: '2', WORKER_FAULT_THROW_ON: MARKER });
  prometheus = await startPrometheus({
    targets: [`127.0.0.1:${worker.port}`],
    ruleFiles: [RULES_FILE, lowered],
  });
});

afterAll(async () => {
  await prometheus?.stop();
  await stack?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('a real Prometheus with the shipped rules, scraping a real worker', () => {
  it('scrapes the worker: the target is up and its readiness gauge is 1', async () => {
    await vi.waitFor(
      async () => {
        const targets = await prometheus.api<{ activeTargets: { health: string; lastError: string }[] }>(
          'targets',
        );
        expect(targets.activeTargets).toHaveLength(1);
        expect(targets.activeTargets[0]?.health, targets.activeTargets[0]?.lastError).toBe('up');
        const [ready] = (await query('pattern_worker_ready')).result;
        expect(ready?.value[1]).toBe('1');
      },
      { timeout: 15_000, interval: 250 },
    );
  });

  it('loads the shipped rules and evaluates every one with health ok', async () => {
    await vi.waitFor(
      async () => {
        const { groups } = await prometheus.api<{ groups: Group[] }>('rules');
        const mine = groups.filter((g) => g.file === RULES_FILE);
        const rules = mine.flatMap((g) => g.rules);
        expect(rules.map((r) => r.name)).toEqual(shipped.groups.flatMap((g) => g.rules.map((r) => r.alert)));
        for (const r of rules) expect(r.health, `${r.name}: ${r.lastError}`).toBe('ok');
        expect(groups.filter((g) => g.file === lowered).flatMap((g) => g.rules)).toHaveLength(rules.length);
      },
      { timeout: 15_000, interval: 250 },
    );
  });

  it('after dead letters, the lowered dead-letter alert fires and the shipped one does not', async () => {
    const topic = stack.names.request('pattern.insert');
    // A good request first: its topic's dead-letter counter starts at 0, so rate() sees the next ones.
    await stack.send('pattern.insert', [
      { data: { pattern_name: 'Scraped', pattern_type: 'code', language: 'go', pattern_id: randomUUID() } },
    ]);
    await stack.results.waitForCount(stack.names.result('pattern.insert'), 1);
    await vi.waitFor(
      async () => {
        const { result } = await query(
          `pattern_worker_dead_letters_total{messaging_destination_name="${topic}"}`,
        );
        expect(result[0]?.value[1]).toBe('0');
      },
      { timeout: 10_000, interval: 250 },
    );
    // Not JSON (VALIDATION_ERROR at once), and one that throws until WORKER_MAX_ATTEMPTS (INTERNAL).
    await stack.send('pattern.insert', [
      { value: '{"not json' },
      { data: { pattern_name: MARKER, pattern_type: 'code', language: 'go', pattern_id: randomUUID() } },
    ]);
    await stack.results.waitForCount(stack.names.dlq('pattern.insert'), 2);
    const started = Date.now();
    await vi.waitFor(
      async () => {
        const { alerts } = await prometheus.api<{ alerts: Alert[] }>('alerts');
        const dead = alerts.filter((a) => a.labels.alertname === 'PatternWorkerDeadLetters');
        expect(dead).toHaveLength(1);
        expect(dead[0]).toMatchObject({
          state: 'firing',
          labels: { messaging_destination_name: topic, severity: 'warning', job: 'pattern-worker' },
        });
      },
      { timeout: 15_000, interval: 250 },
    );
    process.stdout.write(`dead-letter alert firing ${Date.now() - started} ms after the dead letters\n`);
    const { groups } = await prometheus.api<{ groups: Group[] }>('rules');
    const state = (file: string) =>
      groups
        .filter((g) => g.file === file)
        .flatMap((g) => g.rules)
        .find((r) => r.name === 'PatternWorkerDeadLetters')?.state;
    expect(state(lowered)).toBe('firing');
    expect(state(RULES_FILE)).toBe('inactive');
    const codes = await query(
      `sum by (error_type) (messaging_client_consumed_messages_total{pattern_outcome="dead_letter"})`,
    );
    expect(codes.result.map((s) => s.metric.error_type).sort()).toEqual(['INTERNAL', 'VALIDATION_ERROR']);
    const retries = await query('sum(pattern_worker_retries_total{pattern_retry_kind="permanent"})');
    expect(Number(retries.result[0]?.value[1])).toBeGreaterThanOrEqual(1);
  });

  it("every metric the rules and the dashboard read is on the worker's /metrics", async () => {
    const text = await (await fetch(`http://127.0.0.1:${worker.port}/metrics`)).text();
    const exported = new Set(
      text
        .split('\n')
        .filter((l) => l && !l.startsWith('#'))
        .map((l) => /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(l)?.[0]),
    );
    const used = new Map<string, string>();
    for (const g of shipped.groups)
      for (const r of g.rules)
        for (const name of metricNames(String(r.expr))) used.set(name, `rule ${String(r.alert)}`);
    for (const q of dashboardQueries()) for (const name of metricNames(q.expr)) used.set(name, q.where);
    expect(used.size).toBeGreaterThan(10);
    const missing = [...used].filter(([name]) => !SYNTHETIC.has(name) && !exported.has(name));
    expect(missing.map(([name, where]) => `${name} (${where})`)).toEqual([]);
  });

  it('every dashboard query runs on Prometheus and returns series', async () => {
    // rate() of a series that has just appeared (the first dead letter of a code) needs a second scrape.
    await vi.waitFor(
      async () => {
        const empty: string[] = [];
        for (const q of dashboardQueries()) {
          const { result } = await query(withoutVariables(q.expr));
          if (result.length === 0) empty.push(`${q.where}: ${q.expr}`);
        }
        expect(empty).toEqual([]);
      },
      { timeout: 10_000, interval: 500 },
    );
  });
});
