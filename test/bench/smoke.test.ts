// CI smoke test of the benchmark harness: runs every default scenario with tiny sizes (--smoke) against
// the real broker and database and checks the JSON it writes, so the harness cannot rot unnoticed.
// Not a timed test: no figure is compared with a goal. Takes about 25 s.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const HARNESS = join(import.meta.dirname, '../../bench/run.ts');

type Json = Record<string, unknown>;
let out: string;
let stdout = '';
const latest = async (scenario: string) =>
  JSON.parse(await readFile(join(out, `${scenario}-latest.json`), 'utf8')) as Json;

beforeAll(async () => {
  out = await mkdtemp(join(tmpdir(), 'bench-smoke-'));
  const result = await run(
    process.execPath,
    [HARNESS, 'nodes', 'ingestion', 'search', '--smoke', '--out', out],
    {
      timeout: 150_000,
      maxBuffer: 16 * 1024 * 1024,
    },
  );
  stdout = result.stdout;
}, 160_000);

afterAll(async () => {
  await rm(out, { recursive: true, force: true });
});

describe('npm run bench -- --smoke', () => {
  it('prints figures and ratios for every scenario and writes timestamped and latest JSON', async () => {
    expect(stdout).toMatch(/== nodes[\s\S]*== ingestion[\s\S]*== search/);
    expect(stdout).toMatch(/ratios: [\d.]+x naive, [\d.]+x database floor/);
    const files = await readdir(out);
    for (const s of ['nodes', 'ingestion', 'search']) {
      expect(files).toContain(`${s}-latest.json`);
      expect(files.some((f) => new RegExp(`^${s}-\\d{4}-\\d\\d-\\d\\dT.*\\.json$`).test(f))).toBe(true);
      const r = await latest(s);
      expect(r).toMatchObject({ scenario: s, smoke: true });
      expect((r.machine as Json).cpus).toBeGreaterThan(0);
      expect((r.goals as unknown[]).length).toBeGreaterThan(0);
    }
  });

  it('nodes: every operation ran through its node without failures and with sane latencies', async () => {
    const ops = ((await latest('nodes')).figures as Json).ops as Record<string, Json>;
    expect(Object.keys(ops)).toEqual(
      expect.arrayContaining([
        'insert',
        'search',
        'record_usage',
        'compute_analytics_hot_30d',
        'compute_analytics_global_all',
      ]),
    );
    for (const [name, o] of Object.entries(ops)) {
      expect(o.failures, name).toBe(0);
      expect(o.count as number, name).toBeGreaterThan(0);
      expect(o.p50 as number, name).toBeGreaterThan(0);
      expect(o.p99 as number, name).toBeGreaterThanOrEqual(o.p50 as number);
    }
  });

  it('ingestion: each variant stored every event and published every result', async () => {
    const f = (await latest('ingestion')).figures as Record<string, Json>;
    for (const v of ['worker_tracing_off', 'worker_tracing_on', 'naive', 'database_floor']) {
      expect(f[v]?.rowsChecked, v).toBe(true);
      expect((f[v]?.eventsPerSecond as Json).median as number, v).toBeGreaterThan(0);
    }
    for (const v of ['worker_tracing_off', 'worker_tracing_on', 'naive']) {
      expect(f[v]?.failures, v).toBe(0);
      expect(f[v]?.peakRssMiB as number, v).toBeGreaterThan(10);
    }
    expect((f.ratios as Json).vsNaive as number).toBeGreaterThan(0);
  });

  it('search: worker, Kafka floor and query floor answered every request', async () => {
    const f = (await latest('search')).figures as Record<string, Json>;
    for (const v of ['worker', 'kafka_floor', 'query_floor']) {
      for (const run of f[v]?.runs as Json[]) {
        expect(run.errors, v).toBe(0);
        expect(run.count as number, v).toBeGreaterThan(0);
      }
      expect(((f[v]?.p50 as Json).median as number) > 0, v).toBe(true);
    }
  });

  it('regenerates the README and the SVG charts', async () => {
    const readme = await readFile(join(out, 'README.md'), 'utf8');
    expect(readme).toContain('## Usage ingestion, end to end');
    expect(readme).toMatch(/\d+ cores \(.+\) · [\d.]+ GiB RAM/);
    for (const chart of ['latency.svg', 'throughput.svg', 'nodes.svg']) {
      const svg = await readFile(join(out, chart), 'utf8');
      expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"'), chart).toBe(true);
      expect(svg).not.toContain('NaN');
    }
  });
});
