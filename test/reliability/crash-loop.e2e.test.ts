// Scenario 1 of the fault-injection suite: the worker is SIGKILLed at random moments, at least ten
// times, while a workload of a few thousand messages flows. Half of the kills come from outside at a
// random time; the other half from the WORKER_FAULT_KILL_AFTER_UNITS hook, right after a unit's effects
// commit and before its results are published (the worst moment).
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { createStackRetrying, waitReadyOrExit } from '../support/faults.ts';
import type { Stack } from '../support/stack.ts';
import { startWorker, type WorkerProcess } from '../support/worker-process.ts';
import { produce, reportFigures, ResultTracker, Workload } from '../support/workload.ts';

// Each kill costs a session timeout (6 s) before the group rebalances to the next process.
vi.setConfig({ testTimeout: 240_000 });

let stack: Stack;
const processes: WorkerProcess[] = [];
beforeAll(async () => {
  stack = await createStackRetrying({ partitions: 3 });
});
afterAll(async () => {
  await Promise.all(processes.map((w) => w.stop('SIGKILL')));
  await stack?.close();
});

const random = (min: number, max: number) => min + Math.floor(Math.random() * (max - min + 1));

it('loses nothing and doubles nothing across at least ten SIGKILLs', async () => {
  const started = Date.now();
  const workload = new Workload({ patterns: 300, usagePerPattern: 6, relationships: 150, searches: 200 });
  const tracker = new ResultTracker(stack.results);
  let kills = 0;
  let hookKills = 0;

  /** One life of a worker: start, let it work on `before()`'s messages for a moment, kill it. */
  const life = async (hooked: boolean, before: () => Promise<void>) => {
    const env: Record<string, string> = hooked
      ? { WORKER_FAULT_KILL_AFTER_UNITS: String(random(2, 25)) }
      : {};
    const worker = await startWorker({ ...stack.env, ...env });
    processes.push(worker);
    await before();
    await waitReadyOrExit(worker, 45_000);
    if (worker.child.exitCode === null && worker.child.signalCode === null) {
      await new Promise((r) => setTimeout(r, random(300, 2500)));
    }
    // Dead already: the hook killed it between a commit and the publish of its results.
    if (worker.child.signalCode === 'SIGKILL') hookKills++;
    expect(await worker.stop('SIGKILL')).toBe('SIGKILL');
    kills++;
  };

  // Phase 1: the inserts, through two lives, then a worker that lives until they are all answered.
  await life(false, () => produce(stack.producer, stack.names, workload.inserts));
  await life(true, () => Promise.resolve());
  const settle = await startWorker(stack.env);
  processes.push(settle);
  await tracker.waitAnswered(workload.inserts, 60_000);
  expect(await settle.stop('SIGKILL')).toBe('SIGKILL');
  kills++;

  // Phase 2: the rest in ten slices, each produced as a new worker starts, each worker killed.
  const slices = 10;
  const size = Math.ceil(workload.followUps.length / slices);
  for (let s = 0; s < slices; s++) {
    const slice = workload.followUps.slice(s * size, (s + 1) * size);
    await life(s % 2 === 1, () => produce(stack.producer, stack.names, slice, { chunk: 50 }));
  }

  // A last worker that is left alone answers whatever is still pending.
  const last = await startWorker(stack.env);
  processes.push(last);
  await tracker.waitAnswered(workload.all, 120_000);
  const figures = await workload.check(stack.db.pool, tracker, stack.names);
  await reportFigures('crash-loop', {
    faults: kills,
    faults_from_hook: hookKills,
    ...figures,
    duration_s: Math.round((Date.now() - started) / 1000),
  });
  expect(kills).toBeGreaterThanOrEqual(10);
  expect(figures.problems).toEqual([]);
  expect({ lost: figures.lost, doubled: figures.doubled, answered: figures.answered }).toEqual({
    lost: 0,
    doubled: 0,
    answered: workload.size,
  });
});
