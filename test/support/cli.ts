// Runs the `patterns` command line as a child process (with coverage), the way an operator would.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { childCoverageEnv } from './child-coverage.ts';

const execFileAsync = promisify(execFile);
const BIN = join(import.meta.dirname, '../../bin/patterns.js');

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

export async function patterns(env: Record<string, string>, ...args: string[]): Promise<Run> {
  try {
    const { stdout, stderr } = await execFileAsync(process.execPath, [BIN, ...args], {
      env: { ...process.env, ...env, ...childCoverageEnv() },
      timeout: 90_000,
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}
