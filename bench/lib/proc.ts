// Child processes under measurement (the worker, the naive worker, the echo service, a replay): spawn,
// wait for readiness or exit, read CPU time and peak RSS from /proc, stop.
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';

const TICKS_PER_SECOND = 100; // USER_HZ on Linux

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const a = server.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export interface ProcSample {
  /** user + system CPU seconds so far. */
  cpuSeconds: number;
  rssMiB: number;
  /** Peak RSS (VmHWM) since start. */
  peakRssMiB: number;
}

/** user + system CPU seconds from the text of a /proc/<pid>/stat; with `reapedChildren`, also those of its
 * children that have exited (cutime and cstime). */
function cpuSecondsOfStat(stat: string, reapedChildren = false): number {
  // Fields after the parenthesised command name; utime, stime, cutime and cstime are fields 14 to 17.
  const f = stat
    .slice(stat.lastIndexOf(')') + 2)
    .split(' ')
    .map(Number);
  const own = (f[11] ?? 0) + (f[12] ?? 0);
  return (own + (reapedChildren ? (f[13] ?? 0) + (f[14] ?? 0) : 0)) / TICKS_PER_SECOND;
}

export function sampleProc(pid: number): ProcSample {
  const cpuSeconds = cpuSecondsOfStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { cpuSeconds, rssMiB: kib('VmRSS') / 1024, peakRssMiB: kib('VmHWM') / 1024 };
}

/** CPU seconds so far of the database's and the broker's processes on this machine (Linux /proc): where a
 * request's CPU goes besides the worker. A database backend that exits (a pool closing an idle connection)
 * stays counted: its time moves to the postmaster's reaped-children time. */
export function serviceCpuSeconds(): { database: number; broker: number } {
  const sums = { database: 0, broker: 0 };
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const kind =
        name === 'postgres'
          ? 'database'
          : name === 'java' && readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes('kafka.Kafka')
            ? 'broker'
            : undefined;
      if (kind) sums[kind] += cpuSecondsOfStat(stat, kind === 'database');
    } catch {
      // gone meanwhile
    }
  }
  return sums;
}

/** Cores used per role over a window: the processes of `worker`, `replay` and `load` (pids), PostgreSQL and
 * the broker, and their sum. */
export type CpuCores = Record<'worker' | 'replay' | 'load' | 'database' | 'broker' | 'all', number>;
type ProcessRoles = Record<'worker' | 'replay' | 'load', (number | undefined)[]>;

/** Starts a window over the CPU of each role; `roles` is read at both ends, so a process started in
 * between counts from its start, and one gone keeps its last sample. */
export function cpuWindow(roles: () => ProcessRoles): { cores(): CpuCores } {
  const last = new Map<number, number>();
  const seconds = (pid: number | undefined) => {
    if (pid === undefined) return 0;
    try {
      last.set(pid, sampleProc(pid).cpuSeconds);
    } catch {
      // exited: its last sample
    }
    return last.get(pid) ?? 0;
  };
  const sample = () => {
    const r = roles();
    const sum = (pids: (number | undefined)[]) => pids.reduce<number>((n, pid) => n + seconds(pid), 0);
    return { worker: sum(r.worker), replay: sum(r.replay), load: sum(r.load), ...serviceCpuSeconds() };
  };
  const t0 = performance.now();
  const c0 = sample();
  return {
    cores() {
      const c1 = sample();
      const elapsed = (performance.now() - t0) / 1000;
      const round = (x: number) => Math.round(x * 100) / 100;
      const per = (k: keyof typeof c0) => round(Math.max(0, c1[k] - c0[k]) / elapsed);
      const cores = {
        worker: per('worker'),
        replay: per('replay'),
        load: per('load'),
        database: per('database'),
        broker: per('broker'),
      };
      return { ...cores, all: round(Object.values(cores).reduce((a, b) => a + b, 0)) };
    },
  };
}

const running = new Set<ChildProcess>();

/** Kills every child this process started and has not stopped (on Ctrl-C or a fatal error). */
export function killAll(): void {
  for (const child of running) child.kill('SIGKILL');
  running.clear();
}

/** Counts a child started elsewhere (with fork) among those killAll kills. */
export function track(child: ChildProcess): void {
  running.add(child);
  child.once('exit', () => running.delete(child));
}

export interface Child {
  child: ChildProcess;
  pid: number;
  port: number;
  output(): string;
  sample(): ProcSample;
  waitReady(timeoutMs?: number): Promise<void>;
  /** Resolves with the exit code (null when killed by a signal); rejects after the timeout. */
  waitExit(timeoutMs: number): Promise<number | null>;
  stop(): Promise<void>;
}

export interface SpawnOptions {
  script: string;
  args?: string[];
  env: Record<string, string>;
  nodeArgs?: string[];
  /** Ready when GET http://127.0.0.1:<PORT>/readyz answers 200; otherwise when stdout prints this. */
  readyLine?: string;
}

export async function spawnNode(options: SpawnOptions): Promise<Child> {
  const port = await freePort();
  const child = spawn(
    process.execPath,
    [...(options.nodeArgs ?? []), options.script, ...(options.args ?? [])],
    {
      env: { ...process.env, LOG_LEVEL: 'warn', ...options.env, PORT: String(port) },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let log = '';
  const keep = (d: Buffer) => {
    log += d.toString();
    if (log.length > 200_000) log = log.slice(-100_000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  track(child);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const pid = child.pid as number;
  return {
    child,
    pid,
    port,
    output: () => log,
    sample: () => sampleProc(pid),
    async waitReady(timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        if (child.exitCode !== null)
          throw new Error(`${options.script} exited with ${child.exitCode}:\n${log}`);
        if (options.readyLine) {
          if (log.includes(options.readyLine)) return;
        } else {
          try {
            if ((await fetch(`http://127.0.0.1:${port}/readyz`)).status === 200) return;
          } catch {
            // not listening yet
          }
        }
        if (Date.now() > deadline) throw new Error(`${options.script} not ready in ${timeoutMs} ms:\n${log}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    async waitExit(timeoutMs) {
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () =>
            reject(new Error(`${options.script} still running after ${timeoutMs} ms:\n${log.slice(-2000)}`)),
          timeoutMs,
        );
      });
      try {
        await Promise.race([exited, late]);
      } finally {
        clearTimeout(timer);
      }
      return child.exitCode;
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Samples a process every interval; keeps the RSS series (for the soak's trend) and the peak. */
export class ProcMonitor {
  readonly series: { t: number; rssMiB: number; cpuSeconds: number }[] = [];
  #timer: NodeJS.Timeout | undefined;
  readonly #pid: number;

  constructor(pid: number) {
    this.#pid = pid;
  }

  start(intervalMs = 500): this {
    const t0 = Date.now();
    const tick = () => {
      try {
        const s = sampleProc(this.#pid);
        this.series.push({ t: (Date.now() - t0) / 1000, rssMiB: s.rssMiB, cpuSeconds: s.cpuSeconds });
      } catch {
        // process gone
      }
    };
    tick();
    this.#timer = setInterval(tick, intervalMs);
    return this;
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}
