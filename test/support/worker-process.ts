// Runs the worker as a separate process, as in production, and waits for /readyz.
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { childCoverageEnv } from './child-coverage.ts';

const CLI = join(import.meta.dirname, '../../src/cli/main.ts');

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export interface WorkerProcess {
  child: ChildProcess;
  port: number;
  output(): string;
  readyz(): Promise<{ status: number; body: Record<string, unknown> }>;
  waitReady(timeoutMs?: number): Promise<void>;
  waitUntil(predicate: (status: number) => boolean, timeoutMs?: number): Promise<void>;
  /** Sends a signal and resolves with the exit code (or the signal name). */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<number | string>;
}

export async function startWorker(
  env: Record<string, string>,
  args: string[] = ['worker'],
): Promise<WorkerProcess> {
  const port = await freePort();
  const child = spawn(process.execPath, [CLI, ...args], {
    env: { ...process.env, LOG_LEVEL: 'info', ...env, PORT: String(port), ...childCoverageEnv() },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  child.stdout?.on('data', (d: Buffer) => (log += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (log += d.toString()));
  const exited = new Promise<number | string>((resolve) =>
    child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')),
  );

  const readyz = async () => {
    const res = await fetch(`http://127.0.0.1:${port}/readyz`);
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  const waitUntil = async (predicate: (status: number) => boolean, timeoutMs = 30_000) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`worker exited with ${child.exitCode}:\n${log}`);
      try {
        if (predicate((await readyz()).status)) return;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline)
        throw new Error(`worker readiness condition not met in ${timeoutMs} ms:\n${log}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  return {
    child,
    port,
    output: () => log,
    readyz,
    waitUntil,
    waitReady: (timeoutMs) => waitUntil((s) => s === 200, timeoutMs),
    async stop(signal = 'SIGTERM', timeoutMs = 20_000) {
      if (child.exitCode !== null || child.signalCode !== null)
        return child.exitCode ?? child.signalCode ?? 'unknown';
      child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      const result = await exited;
      clearTimeout(timer);
      return result;
    },
  };
}
