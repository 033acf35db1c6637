// CI smoke test of the benchmark harness: runs every default scenario, the deploy and the hotkey, with tiny
// sizes (--smoke) against the real broker and database and checks the JSON it writes, so the harness
// cannot rot unnoticed. Not a timed test: no figure is compared with a goal. Takes about 100 s (one run,
// one build of dist/: the deploy scenario restarts workers from dist/ while it runs).
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const HARNESS = join(import.meta.dirname, '../../bench/run.ts');
const PACKAGE_JSON = join(import.meta.dirname, '../../package.json');
const SCENARIOS = ['nodes', 'ingestion', 'search', 'mixed', 'deploy', 'hotkey'];

type Json = Record<string, unknown>;
let out: string;
let stdout = '';
const latest = async (scenario: string) =>
  JSON.parse(await readFile(join(out, `${scenario}-latest.json`), 'utf8')) as Json;
const goalNames = (r: Json) => (r.goals as { name: string }[]).map((g) => g.name);
const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
/** The harness prints every goal as `goal <name> <target>: <value> <unit> met|MISSED`. */
const printed = (name: string, target: string) =>
  new RegExp(`goal ${escape(name)} ${escape(target)}: -?[\\d.]+ \\S+ (met|MISSED)`);

beforeAll(async () => {
  out = await mkdtemp(join(tmpdir(), 'bench-smoke-'));
  const result = await run(process.execPath, [HARNESS, ...SCENARIOS, '--smoke', '--out', out], {
    timeout: 230_000,
    maxBuffer: 16 * 1024 * 1024,
  });
  stdout = result.stdout;
}, 240_000);

afterAll(async () => {
  await rm(out, { recursive: true, force: true });
});

describe('npm run bench -- --smoke', () => {
  it('prints figures and ratios for every scenario and writes timestamped and latest JSON', async () => {
    expect(stdout).toMatch(/== nodes[\s\S]*== ingestion[\s\S]*== search[\s\S]*== mixed/);
    expect(stdout).toMatch(/ratios: [\d.]+x naive, [\d.]+x database floor/);
    const files = await readdir(out);
    for (const s of SCENARIOS) {
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
    expect((f.ratios as Json).cappedOverUncapped as number).toBeGreaterThan(0);
  });

  it('ingestion: the capped run used package.json config.nodeOptions; idle and peak RSS are measured', async () => {
    const r = await latest('ingestion');
    const f = r.figures as Record<string, Json>;
    const {
      config: { nodeOptions: workerNodeOptions },
    } = JSON.parse(await readFile(PACKAGE_JSON, 'utf8')) as {
      config: { nodeOptions: string };
    };
    expect(f.worker_capped?.rowsChecked).toBe(true);
    expect(f.worker_capped?.failures).toBe(0);
    const memory = f.memory as Record<string, Json>;
    expect(memory.capped?.nodeOptions).toBe(workerNodeOptions);
    for (const v of ['uncapped', 'capped']) {
      expect(memory[v]?.idleRssMiB as number, v).toBeGreaterThan(10);
      expect(memory[v]?.peakRssMiB as number, v).toBeGreaterThanOrEqual(memory[v]?.idleRssMiB as number);
    }
    for (const [name, target] of [
      ['ingestion vs naive worker', '>= 20x'],
      ['ingestion vs database floor', '>= 0.8x'],
      ['worker peak RSS at full ingestion (capped)', '<= 200 MiB'],
      ['worker idle RSS (capped)', '<= 100 MiB'],
      ['capped throughput vs uncapped', '>= 0.9x'],
      ['tracing cost at 100% sampling', '<= 15%'],
    ] as const) {
      expect(goalNames(r)).toContain(name);
      expect(stdout).toMatch(printed(name, target));
    }
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
    const r = await latest('search');
    const rate = (r.params as Json).rate as number;
    for (const [name, target] of [
      [`search round trip p50 at ${rate}/s vs (Kafka floor p50 + query floor p50)`, '<= 2x'],
      [`search round trip p99 at ${rate}/s vs (Kafka floor p99 + query floor p99)`, '<= 2x'],
    ] as const) {
      expect(goalNames(r)).toContain(name);
      expect(stdout).toMatch(printed(name, target));
    }
    expect((f.ratios as Json).p99OverFloors as number).toBeGreaterThan(0);
  });

  it('mixed: solo and mixed ingestion, searches, analytics and the replay all completed', async () => {
    const r = await latest('mixed');
    const f = r.figures as Record<string, Record<string, Json>>;
    const p = r.params as Json;
    for (const phase of ['solo', 'mixed']) {
      expect((f[phase]?.ingestion?.eventsPerSecond as Json).median as number, phase).toBeGreaterThan(0);
      const search = f[phase]?.search as Json;
      expect(search.errors, phase).toBe(0);
      expect((search.pooled as Json).count as number, phase).toBeGreaterThan(0);
      expect(search.p99CountingFailures as number, phase).toBeGreaterThan(0);
    }
    const analytics = f.mixed?.analytics as Json;
    expect(analytics.errors).toBe(0);
    expect((analytics.pooled as Json).count as number).toBeGreaterThan(0);
    const replay = f.mixed?.replay as Json;
    expect(replay).toMatchObject({ messages: p.replayEvents, applied: p.replayEvents, rowsChecked: true });
    expect(replay.seconds as number).toBeGreaterThan(0);
    expect(f.worker).toMatchObject({ failures: 0, rowsChecked: true });
    const ratios = f.ratios as Json;
    expect(ratios.ingestionMixedOverSolo as number).toBeGreaterThan(0);
    expect(ratios.searchP99MixedOverSolo as number).toBeGreaterThan(0);
    for (const [name, target] of [
      ['mixed: ingestion vs its solo rate', '>= 0.8x'],
      ['mixed: search p99 vs its solo p99 at 50/s', '<= 1.5x'],
      ['mixed: global analytics p99 at 2/s, every request answered', '<= 50 ms'],
    ] as const) {
      expect(goalNames(r)).toContain(name);
      expect(stdout).toMatch(printed(name, target));
    }
    expect(goalNames(r)).toContain('mixed: replay throughput');
    // The CPU each role used in both phases, the budget the window's loads share.
    const cpu = f.cpuCores as Record<string, Record<string, number>>;
    for (const phase of ['soloIngestion', 'mixedWindow']) {
      expect(cpu[phase]?.worker, phase).toBeGreaterThan(0);
      expect(cpu[phase]?.database, phase).toBeGreaterThan(0);
      expect(cpu[phase]?.all, phase).toBeGreaterThanOrEqual(cpu[phase]?.worker ?? Infinity);
    }
    expect(cpu.soloIngestion?.replay).toBe(0);
    expect(cpu.mixedWindow?.replay).toBeGreaterThan(0);
    expect(stdout).toMatch(
      /CPU cores +solo ingestion: worker [\d.]+, database [\d.]+.*mixed window: .*replay [\d.]+/,
    );
    // The replay ran beside the live worker at its default budget there, and says so; the goal compares
    // its rate in the window with that budget.
    expect(replay.budgetRate).toBe(500);
    expect(replay.budget as string).toMatch(
      /at most 500 messages\/s while live lanes run \(.*worker\.writes/,
    );
    expect(stdout).toMatch(printed('mixed: replay at its budget beside live lanes', '500 messages/s'));
    // Once the worker stopped, the replay's budget followed (if it looked again before it finished): no limit.
    for (const line of replay.budgetChanges as string[])
      expect(line).toBe('budget now no rate limit (no live lane has members)');
  });

  it('deploy: three workers rolled and one killed under load; every request answered, none applied twice', async () => {
    const r = await latest('deploy');
    const f = r.figures as Record<string, unknown>;
    const phases = f.phases as Record<string, Json>;
    for (const phase of ['before', 'roll', 'after roll', 'after SIGKILL']) {
      const p = phases[phase] as Json;
      expect(p.requests as number, phase).toBeGreaterThan(0);
      expect(p.answered as number, phase).toBeGreaterThan(0);
      expect((p.latencyMs as Json).p99 as number, phase).toBeGreaterThan(0);
      expect(p.longestStallMs as number, phase).toBeGreaterThan(0);
    }
    expect((f.roll as unknown[]).length).toBe(3);
    expect(f.requests).toMatchObject({ drained: true, notAcknowledged: 0 });
    // Exactly-once effects and at-least-once results hold whatever the client does to availability.
    expect(f.lost).toBe(0);
    expect(f.doubled).toBe(0);
    expect(f.database).toMatchObject({ appliedWithoutAck: 0 });
    const db = f.database as Json;
    expect(db.usageRows).toBe(db.usageRequests);
    const kill = f.kill as Json;
    expect(kill.describeError).toBeNull();
    expect((kill.members as unknown[]).length).toBeGreaterThan(0);
    expect((f.windows as unknown[]).length).toBeGreaterThan(3);
    expect(stdout).toMatch(/p99 per 2 s window[\s\S]*after SIGKILL/);
    for (const [name, target] of [
      ['deploy: p99 during the roll vs steady p99', '<= 2x'],
      ["deploy: longest stall of the surviving workers' partitions after SIGKILL", '<= 1000 ms'],
      ['deploy: lost requests', '= 0'],
      ['deploy: doubled effects', '= 0'],
      ['deploy: consumer crashes', '= 0'],
    ] as const) {
      expect(goalNames(r)).toContain(name);
      expect(stdout).toMatch(printed(name, target));
    }
  });

  it('hotkey: every attack and every valid request behind it answered', async () => {
    const r = await latest('hotkey');
    const attacks = (r.figures as { attacks: Json[] }).attacks;
    expect(attacks.map((a) => a.name)).toHaveLength(4);
    for (const a of attacks) {
      expect(a.validAnswered, a.name as string).toBe(a.validSent);
      expect(a.validSent as number, a.name as string).toBeGreaterThan(0);
      if ((a.attackMessages as number) > 0) expect(a.attackAnsweredS, a.name as string).not.toBeNull();
    }
    expect(goalNames(r)).toContain(
      "hotkey: valid p99 behind a run of one pattern's update_stats vs without an attack",
    );
  });

  it('regenerates the README and the SVG charts', async () => {
    const readme = await readFile(join(out, 'README.md'), 'utf8');
    expect(readme).toContain('## Usage ingestion, end to end');
    expect(readme).toContain('## Mixed load');
    expect(readme).toMatch(/capped as shipped .* idle RSS \d+ MiB/);
    expect(readme).toMatch(/\d+ cores \(.+\) · [\d.]+ GiB RAM/);
    for (const chart of ['latency.svg', 'throughput.svg', 'nodes.svg']) {
      const svg = await readFile(join(out, chart), 'utf8');
      expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"'), chart).toBe(true);
      expect(svg).not.toContain('NaN');
    }
  });
});
