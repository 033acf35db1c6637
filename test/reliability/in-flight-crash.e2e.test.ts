// SIGKILL while many messages of one partition are in flight: one request partition, a writes lane of 8
// concurrent units and small usage batches, so that at every kill several units of the same partition
// are running, applied but unpublished, or published but uncommitted. Repeated; nothing may be lost or
// applied twice, and every request is answered.
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { createStackRetrying, waitReadyOrExit } from '../support/faults.ts';
import type { Stack } from '../support/stack.ts';
import { startWorker, type WorkerProcess } from '../support/worker-process.ts';
import { produce, reportFigures, ResultTracker, Workload } from '../support/workload.ts';

vi.setConfig({ testTimeout: 240_000 });

let stack: Stack;
const processes: WorkerProcess[] = [];
const concurrent = { WORKER_WRITES_CONCURRENCY: '8', WORKER_BATCH_SIZE: '10', DB_POOL_MAX: '14' };
beforeAll(async () => {
  stack = await createStackRetrying({ partitions: 1 });
});
afterAll(async () => {
  await Promise.all(processes.map((w) => w.stop('SIGKILL')));
  await stack?.close();
});

const random = (min: number, max: number) => min + Math.floor(Math.random() * (max - min + 1));

it('loses nothing and applies nothing twice when killed with a partition full of work in flight', async () => {
  const started = Date.now();
  const workload = new Workload({ patterns: 200, usagePerPattern: 5, relationships: 100, searches: 50 });
  const tracker = new ResultTracker(stack.results);
  let kills = 0;
  let hookKills = 0;
  const life = async (hooked: boolean) => {
    const env: Record<string, string> = hooked
      ? { WORKER_FAULT_KILL_AFTER_UNITS: String(random(5, 40)) }
      : {};
    const worker = await startWorker({ ...stack.env, ...concurrent, ...env });
    processes.push(worker);
    await waitReadyOrExit(worker, 45_000);
    if (worker.child.exitCode === null && worker.child.signalCode === null) {
      await new Promise((r) => setTimeout(r, random(200, 1200)));
    }
    if (worker.child.signalCode === 'SIGKILL') hookKills++;
    expect(await worker.stop('SIGKILL')).toBe('SIGKILL');
    kills++;
  };

  // Everything is on the topic before the first life, so each life starts with a full partition.
  await produce(stack.producer, stack.names, workload.inserts);
  await life(false);
  const settle = await startWorker({ ...stack.env, ...concurrent });
  processes.push(settle);
  await tracker.waitAnswered(workload.inserts, 60_000);
  expect(await settle.stop('SIGKILL')).toBe('SIGKILL');
  kills++;
  await produce(stack.producer, stack.names, workload.followUps, { chunk: 200 });
  for (let i = 0; i < 4; i++) await life(i % 2 === 0);

  const last = await startWorker({ ...stack.env, ...concurrent });
  processes.push(last);
  await tracker.waitAnswered(workload.all, 120_000);
  const figures = await workload.check(stack.db.pool, tracker, stack.names);
  await reportFigures('in-flight-crash', {
    faults: kills,
    faults_from_hook: hookKills,
    ...figures,
    duration_s: Math.round((Date.now() - started) / 1000),
  });
  expect(kills).toBeGreaterThanOrEqual(6);
  expect(figures.problems).toEqual([]);
  expect({ lost: figures.lost, doubled: figures.doubled, answered: figures.answered }).toEqual({
    lost: 0,
    doubled: 0,
    answered: workload.size,
  });
});
