// Scenario 2: the database goes away mid-stream. The worker's database is a throwaway cluster this test
// owns: it is crashed (pg_ctl stop -m immediate) for about ten seconds, and afterwards the worker's
// connections are terminated repeatedly. The worker must retry, report not ready while the database is
// gone, and recover without a restart: same process, nothing lost, nothing doubled, nothing dead-lettered.
import pg from 'pg';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { createPool, type Pool } from '../../src/db/pool.ts';
import { migrate } from '../../src/db/migrate.ts';
import { createStackRetrying, eventually } from '../support/faults.ts';
import { createPgCluster, type PgCluster } from '../support/pg-cluster.ts';
import type { Stack } from '../support/stack.ts';
import { produce, reportFigures, ResultTracker, Workload } from '../support/workload.ts';

vi.setConfig({ testTimeout: 180_000 });

let stack: Stack;
let cluster: PgCluster;
let pool: Pool;
beforeAll(async () => {
  [stack, cluster] = await Promise.all([createStackRetrying({ partitions: 3 }), createPgCluster()]);
  await cluster.createDatabase('patterns');
  pool = createPool({ connectionString: cluster.url('patterns'), min: 0, max: 2 });
  await migrate(pool);
});
afterAll(async () => {
  await stack?.close();
  await pool?.end().catch(() => undefined);
  await cluster?.destroy();
});

async function terminateWorkerBackends(url: string): Promise<number> {
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  try {
    const { rows } = await admin.query(
      `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
        WHERE datname = 'patterns' AND application_name = $1 AND pid <> pg_backend_pid()`,
      ['pattern-worker'],
    );
    return rows.length;
  } finally {
    await admin.end();
  }
}

it('retries through a 10 s outage and repeated connection kills, not ready meanwhile, no restart', async () => {
  const started = Date.now();
  const workload = new Workload({ patterns: 250, usagePerPattern: 6, relationships: 100, searches: 150 });
  const tracker = new ResultTracker(stack.results);
  const worker = await stack.worker({
    DATABASE_URL: cluster.url('patterns'),
    KAFKA_CLIENT_ID: 'pattern-worker',
    // Short timeouts so a connection attempt to the dead server fails fast and is retried.
    WORKER_RETRY_MAX_MS: '1000',
  });
  const pid = worker.child.pid;
  await produce(stack.producer, stack.names, workload.inserts);
  await tracker.waitAnswered(workload.inserts, 60_000);

  // The follow-ups flow for ~20 s while the faults happen.
  const half = Math.floor(workload.followUps.length / 2);
  const flowing = produce(stack.producer, stack.names, workload.followUps, { chunk: 50, pauseMs: 400 });
  await eventually(() => tracker.missing(workload.followUps.slice(0, 100)).length === 0, 30_000, 'flow');

  const outageStart = Date.now();
  await cluster.stop('immediate');
  let sawNotReady = false;
  await eventually(
    async () => (sawNotReady = (await worker.readyz()).status === 503),
    15_000,
    'readiness 503 while the database is down',
  );
  // Results of units committed just before the crash may still be on their way; then nothing moves.
  await new Promise((r) => setTimeout(r, 1_000));
  const answeredDuringOutage = workload.followUps.length - tracker.missing(workload.followUps).length;
  await new Promise((r) => setTimeout(r, Math.max(0, 10_000 - (Date.now() - outageStart))));
  const noProgress = workload.followUps.length - tracker.missing(workload.followUps).length;
  await cluster.start();
  const outageMs = Date.now() - outageStart;
  await worker.waitReady(30_000);

  // Then the worker's connections are cut every 400 ms for about 5 s.
  let terminated = 0;
  for (let i = 0; i < 12; i++) {
    terminated += await terminateWorkerBackends(cluster.url('postgres'));
    await new Promise((r) => setTimeout(r, 400));
  }
  await flowing;
  await tracker.waitAnswered(workload.all, 90_000);
  await worker.waitReady(30_000);

  const figures = await workload.check(pool, tracker, stack.names);
  await reportFigures('database-outage', {
    faults: 1 + terminated,
    outage_ms: outageMs,
    backends_terminated: terminated,
    half_of_follow_ups: half,
    ...figures,
    duration_s: Math.round((Date.now() - started) / 1000),
  });
  expect(sawNotReady).toBe(true);
  // Nothing is answered while the database is gone (results wait for their transactions).
  expect(noProgress).toBe(answeredDuringOutage);
  expect(terminated).toBeGreaterThan(0);
  expect(worker.child.pid).toBe(pid);
  expect(worker.child.exitCode).toBeNull();
  expect(figures.problems).toEqual([]);
  expect({ lost: figures.lost, doubled: figures.doubled, answered: figures.answered }).toEqual({
    lost: 0,
    doubled: 0,
    answered: workload.size,
  });
});
