// The seed's calls (test/fixtures/compat/seed-calls.json) and the checks of their results, shared by the
// runs through the Python client and through kcat.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';

export const FIXTURE = join(import.meta.dirname, '../fixtures/compat/seed-calls.json');
export const PYTHON = '/usr/bin/python3';

export interface SeedCall {
  name: string;
  source: string;
  node: 'storage' | 'query' | 'update' | 'analytics';
  contract: Record<string, unknown>;
  save?: Record<string, string>;
  keys?: string[];
  values?: Record<string, unknown>;
  metadata?: Record<string, unknown>;
  error?: { code: string; message?: string };
}

export interface WireResult {
  success: boolean;
  data: unknown;
  error: unknown;
  metadata: Record<string, unknown>;
}

export const CALLS = (JSON.parse(readFileSync(FIXTURE, 'utf8')) as { cases: SeedCall[] }).cases;

export const TOPIC_OF_NODE = {
  storage: 'pattern.insert',
  query: 'pattern.search.request',
  update: 'pattern.usage',
  analytics: 'pattern.analytics.compute',
} as const;

export function path(data: unknown, dotted: string): unknown {
  let value = data;
  for (const step of dotted.split('.')) value = (value as Record<string, unknown> | undefined)?.[step];
  return value;
}

/** A fixture value with `$name` placeholders replaced by saved values (`$cid`, `$now...` are per run). */
export function resolve(value: unknown, saved: Record<string, unknown>): unknown {
  if (Array.isArray(value)) return value.map((v) => resolve(v, saved));
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, resolve(v, saved)]));
  }
  if (
    typeof value === 'string' &&
    value.startsWith('$') &&
    !value.startsWith('$cid') &&
    !value.startsWith('$now')
  ) {
    return saved[value.slice(1)];
  }
  return value;
}

/** Checks one result against what the seed returned for the call: keys, values, metadata or the refusal. */
export function checkCall(call: SeedCall, result: WireResult, saved: Record<string, unknown>): void {
  const label = `${call.name} (${call.source})`;
  if (call.error) {
    expect(result.success, label).toBe(false);
    const error = result.error as { code?: string; message?: string } | string;
    // The Python client's ModelResult has the message as `error` and the code beside it.
    const code = typeof error === 'string' ? (result as { error_code?: string }).error_code : error.code;
    const message = typeof error === 'string' ? error : error.message;
    expect(code, label).toBe(call.error.code);
    if (call.error.message) expect(message, label).toBe(call.error.message);
    return;
  }
  expect(result.success, `${label}: ${JSON.stringify(result.error)}`).toBe(true);
  const rows = Array.isArray(result.data) ? (result.data as unknown[]) : [result.data];
  expect(rows.length, `${label}: no rows`).toBeGreaterThan(0);
  for (const row of rows) {
    for (const key of call.keys ?? []) expect(row, `${label}: key ${key}`).toHaveProperty([key]);
  }
  for (const [where, expected] of Object.entries(
    resolve(call.values ?? {}, saved) as Record<string, unknown>,
  )) {
    const actual = path(result.data, where);
    if (typeof expected === 'number' && !Number.isInteger(expected)) {
      expect(actual, `${label}: ${where}`).toBeCloseTo(expected, 9);
    } else {
      expect(actual, `${label}: ${where}`).toEqual(expected);
    }
  }
  for (const [key, expected] of Object.entries(call.metadata ?? {})) {
    expect(result.metadata[key], `${label}: metadata.${key}`).toEqual(expected);
  }
}

export function run(
  command: string,
  args: string[],
  env: Record<string, string>,
  timeoutMs = 120_000,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(
      command,
      args,
      { env: { ...process.env, ...env }, timeout: timeoutMs },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        done({ code, stdout, stderr });
      },
    );
  });
}
