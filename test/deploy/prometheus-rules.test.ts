// The shipped alert rules through Prometheus's own tools (promtool check rules, and promtool test rules
// on deploy/prometheus/pattern-worker.rules.test.yml, which must fire and not fire every alert), and the
// dashboard's shape. test/deploy/prometheus.e2e.test.ts runs them on a real server against a real worker.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { RULES_FILE, type RuleGroups } from '../../scripts/prometheus-rules.ts';
import { dashboardQueries, metricNames, promtool, readDashboard, RULES_TESTS } from './prometheus-support.ts';

const groups = parse(readFileSync(RULES_FILE, 'utf8')) as RuleGroups;
const alerts = groups.groups.flatMap((g) => g.rules.map((r) => String(r.alert)));

describe('promtool', () => {
  it('check rules: the rules file is valid', () => {
    const { status, output } = promtool('check', 'rules', RULES_FILE);
    expect(output).toContain(`SUCCESS: ${alerts.length} rules found`);
    expect(status).toBe(0);
  });

  it('test rules: every unit test passes', () => {
    const { status, output } = promtool('test', 'rules', RULES_TESTS);
    expect(output, output).toContain('SUCCESS');
    expect(status, output).toBe(0);
  });

  it('the unit tests make every alert fire, and also evaluate it where it must not fire', () => {
    const tests = parse(readFileSync(RULES_TESTS, 'utf8')) as {
      tests: { alert_rule_test: { alertname: string; exp_alerts: unknown[] }[] }[];
    };
    const cases = tests.tests.flatMap((t) => t.alert_rule_test);
    for (const alert of alerts) {
      const mine = cases.filter((c) => c.alertname === alert);
      expect(
        mine.some((c) => c.exp_alerts.length > 0),
        `${alert} never fires`,
      ).toBe(true);
      expect(
        mine.some((c) => c.exp_alerts.length === 0),
        `${alert} has no case that must not fire`,
      ).toBe(true);
    }
    expect(alerts).toHaveLength(7);
  });
});

describe('metric names in PromQL', () => {
  it('are the selected series, not functions, labels, keywords, durations or Grafana variables', () => {
    expect([
      ...metricNames(
        'histogram_quantile(0.99, sum by (le, op) (rate(a_bucket{job=~"$job", x="y{z}"}[$__rate_interval])))' +
          ' > on (job) group_left (i) b:recorded offset 5m or vector(1) * 60 unless c_total{d="1"} > bool 1e+06',
      ),
    ]).toEqual(['a_bucket', 'b:recorded', 'c_total']);
    expect([...metricNames('max without (instance, pod) (deriv(lag_p99[10m])) and up == 0')]).toEqual([
      'lag_p99',
      'up',
    ]);
  });
});

describe('the Grafana dashboard', () => {
  const dashboard = readDashboard();

  it('takes its data source from a variable (the sidecar provisions it as is, with no import step)', () => {
    expect(dashboard.templating.list[0]).toMatchObject({ name: 'datasource', type: 'datasource' });
    for (const p of dashboard.panels.filter((p) => p.type !== 'row')) {
      expect(p.datasource?.uid, `panel ${p.id}`).toBe('${datasource}');
      for (const t of p.targets ?? []) expect(t.datasource.uid).toBe('${datasource}');
      expect(new Set(p.targets?.map((t) => t.refId)).size).toBe(p.targets?.length);
    }
    expect(dashboard.uid).toBe('pattern-worker');
  });

  it('has unique panel ids and a layout without overlaps inside 24 columns', () => {
    expect(new Set(dashboard.panels.map((p) => p.id)).size).toBe(dashboard.panels.length);
    const cells = new Set<string>();
    for (const { id, gridPos: g } of dashboard.panels) {
      expect(g.x + g.w, `panel ${id}`).toBeLessThanOrEqual(24);
      for (let x = g.x; x < g.x + g.w; x++)
        for (let y = g.y; y < g.y + g.h; y++) {
          expect(cells.has(`${x},${y}`), `panel ${id} overlaps at ${x},${y}`).toBe(false);
          cells.add(`${x},${y}`);
        }
    }
  });

  it('shows what the issue asks for: throughput, duration percentiles, lag, failures, pool, memory, loop', () => {
    const used = new Set(dashboardQueries().flatMap((q) => [...metricNames(q.expr)]));
    for (const name of [
      'messaging_client_consumed_messages_total',
      'messaging_process_duration_bucket',
      'messaging_kafka_consumer_lag',
      'pattern_worker_retries_total',
      'db_client_connection_count',
      'process_memory_usage',
      'nodejs_eventloop_delay_p99',
    ])
      expect(used).toContain(name);
    const text = JSON.stringify(dashboard);
    expect(text).toContain('sum by (error_type)');
    expect(text).toContain('histogram_quantile(0.99, sum by (le, pattern_operation)');
  });
});
