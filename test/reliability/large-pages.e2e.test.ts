// Pages of large patterns. A pattern may hold 130 KB of text and a context of most of a 1 MiB message, and
// a list may ask for 1,000 of them: the worker used to read the whole page before it found the result too
// large, and four such filters at once took the shipped 128 MB heap down (the process aborted, and again
// after every restart, the request never committed). Reads now stop gathering rows at the result bound
// and say how many would fit; the worker must answer every read and stay up.
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import type { ModelResult } from '../../src/contracts/results.ts';
import { createStack, type Stack } from '../support/stack.ts';
import type { WorkerProcess } from '../support/worker-process.ts';

vi.setConfig({ testTimeout: 120_000, hookTimeout: 120_000 });

let stack: Stack;
let worker: WorkerProcess;

beforeAll(async () => {
  stack = await createStack({ partitions: 1 });
  // What valid inserts could write (each under 1 MiB), written by SQL to save the time.
  await stack.db.pool.query(
    // Big1 (800 KB of context) ranks last in a filter's order, so the small page never holds it (by id
    // alone it was among rows 2-4 in 3 runs of 400).
    `INSERT INTO pattern_templates (pattern_name, pattern_type, language, template_code, description,
                                    example_usage, context, tags, confidence_score)
     SELECT 'Big' || g, 'code', 'python', repeat('abc ', 25000), repeat('d', 10000), repeat('e', 20000),
            CASE WHEN g = 1 THEN jsonb_build_object('k', repeat('x', 800000)) ELSE '{}' END, ARRAY['big'],
            CASE WHEN g = 1 THEN 0.1 ELSE 0.5 END
       FROM generate_series(1, 400) g`,
  );
  const pkg = JSON.parse(await readFile(join(import.meta.dirname, '../../package.json'), 'utf8')) as {
    config: { nodeOptions: string };
  };
  // The heap settings the image and `npm start` use.
  worker = await stack.worker({ NODE_OPTIONS: pkg.config.nodeOptions, DB_POOL_MAX: '10' });
});
afterAll(async () => stack?.close());

it('answers pages of large patterns by saying how many fit, without reading them whole, and stays up', async () => {
  const request = (body: Record<string, unknown>) => ({ ...body, correlation_id: randomUUID() });
  const filters = Array.from({ length: 4 }, () => request({ operation: 'filter', filters: {}, limit: 1000 }));
  const search = request({ operation: 'search', search_query: 'big', limit: 1000 });
  const huge = request({ operation: 'get_by_name', pattern_name: 'Big1', language: 'python' });
  const small = request({ operation: 'filter', filters: {}, limit: 3, offset: 1 });
  await stack.send('pattern.search.request', [...filters, search, huge, small]);

  const results = await stack.results.waitForCount(stack.names.result('pattern.search.request'), 7, 60_000);
  expect(worker.child.exitCode).toBeNull();
  const answer = (r: { correlation_id: string }) =>
    results.map((m) => m.json<ModelResult>()).find((a) => a.metadata.correlation_id === r.correlation_id);
  for (const page of [...filters, search]) {
    const error = answer(page)?.error;
    expect(error?.code).toBe('PAYLOAD_TOO_LARGE');
    expect(error?.message).toMatch(/^the first \d+ of the (400|1000) patterns of this page fit in a result/);
    const fit = (error?.details as { rows_that_fit: number }).rows_that_fit;
    expect(fit).toBeGreaterThan(0);
    expect(fit).toBeLessThan(8);
    expect(error?.message).toContain(`ask for at most ${fit} (limit)`);
  }
  expect(answer(huge)?.error?.message).toMatch(
    /^pattern [0-9a-f-]{36} takes about \d+ bytes, .* cannot be returned$/,
  );
  const page = answer(small);
  expect(page?.success).toBe(true);
  expect((page?.data as { pattern_name: string }[]).map((p) => p.pattern_name)).toHaveLength(3);
  expect(Object.keys((page?.data as Record<string, unknown>[])[0] ?? {})).not.toContain('_bytes_upto');
  expect(worker.child.exitCode).toBeNull();
  expect((await worker.readyz()).status).toBe(200);
});
