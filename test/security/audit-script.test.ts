// scripts/audit.sh (the CI step for `npm audit --omit=dev --audit-level=high`) with a stand-in `npm` on
// PATH: a high or critical advisory fails it; a clean report passes; an audit endpoint that answers with
// an error passes loudly as NOT CHECKED (the registry here refuses the audit POST).
import { execFile } from 'node:child_process';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';

const run = promisify(execFile);
const SCRIPT = join(import.meta.dirname, '../../scripts/audit.sh');
let bin: string;

beforeAll(async () => {
  bin = await mkdtemp(join(tmpdir(), 'pw-audit-'));
  // Prints $FAKE_AUDIT and exits 1, as npm audit does when it finds something or fails.
  await writeFile(join(bin, 'npm'), '#!/bin/sh\nprintf "%s" "$FAKE_AUDIT"\nexit 1\n');
  await chmod(join(bin, 'npm'), 0o755);
});
afterAll(async () => rm(bin, { recursive: true, force: true }));

async function audit(report: unknown): Promise<{ code: number; out: string }> {
  const env = {
    ...process.env,
    PATH: `${bin}:${dirname(process.execPath)}:${process.env.PATH ?? ''}`,
    FAKE_AUDIT: JSON.stringify(report),
  };
  try {
    const { stdout } = await run('bash', [SCRIPT], { env });
    return { code: 0, out: stdout };
  } catch (err) {
    const e = err as { code: number; stdout: string };
    return { code: e.code, out: e.stdout };
  }
}

const counts = (high: number, critical: number) => ({
  metadata: { vulnerabilities: { info: 0, low: 2, moderate: 1, high, critical, total: 3 + high + critical } },
  vulnerabilities:
    high + critical > 0 ? { 'bad-lib': { severity: critical ? 'critical' : 'high', range: '<2.0.0' } } : {},
});

it('fails on a high or critical advisory and names it', async () => {
  const high = await audit(counts(1, 0));
  expect(high.code).toBe(1);
  expect(high.out).toContain('high: bad-lib <2.0.0');
  expect((await audit(counts(0, 1))).code).toBe(1);
});

it('passes a report with only low and moderate advisories', async () => {
  const clean = await audit(counts(0, 0));
  expect(clean).toEqual({
    code: 0,
    out: expect.stringContaining('0 critical, 0 high, 1 moderate, 2 low') as string,
  });
});

it('passes, saying NOT CHECKED, when the audit endpoint answers with an error', async () => {
  const refused = await audit({
    message: '405 Method Not Allowed - POST https://registry.npmjs.org/-/npm/v1/security/advisories/bulk',
  });
  expect(refused.code).toBe(0);
  expect(refused.out).toContain('NOT CHECKED');
  expect(refused.out).toContain('405 Method Not Allowed');
});
