// Scenario 5: a slow database. The worker runs with a 400 ms statement timeout while the test holds row
// locks on the patterns its usage events must update, for 1.5 s at a time. Those statements time out
// (57014), the partition is paused and retried, and in the end nothing is lost, doubled or dead-lettered.
import pg from 'pg';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { createStackRetrying, eventually } from '../support/faults.ts';
import type { Stack } from '../support/stack.ts';
import { produce, reportFigures, ResultTracker, Workload } from '../support/workload.ts';

vi.setConfig({ testTimeout: 180_000 });

let stack: Stack;
beforeAll(async () => {
  stack = await createStackRetrying({ partitions: 3 });
});
afterAll(async () => stack?.close());

/** Holds FOR UPDATE locks on the given patterns for `ms`, in a transaction of its own. */
async function holdLocks(url: string, ids: string[], ms: number): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query('BEGIN');
    await client.query('SELECT id FROM pattern_templates WHERE id = ANY($1::uuid[]) FOR UPDATE', [ids]);
    await new Promise((r) => setTimeout(r, ms));
    await client.query('COMMIT');
  } finally {
    await client.end();
  }
}

it('retries statements that hit the statement timeout, and loses nothing', async () => {
  const started = Date.now();
  const workload = new Workload({ patterns: 250, usagePerPattern: 6, relationships: 100, searches: 150 });
  const tracker = new ResultTracker(stack.results);
  const worker = await stack.worker({ DB_STATEMENT_TIMEOUT_MS: '400', WORKER_RETRY_MAX_MS: '800' });
  await produce(stack.producer, stack.names, workload.inserts);
  await tracker.waitAnswered(workload.inserts, 60_000);

  const flowing = produce(stack.producer, stack.names, workload.followUps, { chunk: 50, pauseMs: 250 });
  await eventually(() => tracker.missing(workload.followUps.slice(0, 50)).length === 0, 30_000, 'flow');
  let locks = 0;
  for (let i = 0; i < 5; i++) {
    // Every pattern: whatever partition is busy, its next statement touching a pattern must wait.
    await holdLocks(stack.db.url, workload.patternIds, 1_500);
    locks++;
    await new Promise((r) => setTimeout(r, 300));
  }
  await flowing;
  await tracker.waitAnswered(workload.all, 90_000);

  const timeouts = (worker.output().match(/statement timeout/g) ?? []).length;
  const figures = await workload.check(stack.db.pool, tracker, stack.names);
  await reportFigures('slow-database', {
    faults: timeouts,
    lock_periods: locks,
    statement_timeouts_retried: timeouts,
    ...figures,
    duration_s: Math.round((Date.now() - started) / 1000),
  });
  expect(timeouts).toBeGreaterThan(0);
  expect(worker.child.exitCode).toBeNull();
  expect(figures.problems).toEqual([]);
  expect({ lost: figures.lost, doubled: figures.doubled, answered: figures.answered }).toEqual({
    lost: 0,
    doubled: 0,
    answered: workload.size,
  });
});
