// Scenario 4: scaling under load, 1 -> 3 -> 1 worker processes in one group while messages flow.
// Partitions move between processes twice; nothing may be lost or applied twice.
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { KafkaClient } from '../../src/messaging/kafka/client.ts';
import { createStackRetrying, eventually } from '../support/faults.ts';
import { brokers } from '../support/kafka.ts';
import type { Stack } from '../support/stack.ts';
import type { WorkerProcess } from '../support/worker-process.ts';
import { produce, reportFigures, ResultTracker, Workload } from '../support/workload.ts';

vi.setConfig({ testTimeout: 180_000 });

let stack: Stack;
beforeAll(async () => {
  stack = await createStackRetrying({ partitions: 6 });
});
afterAll(async () => stack?.close());

/** Partitions assigned per member, as the broker describes the lanes' groups (KIP-848); every process has
 * one member in each lane's group (writes, reads, analytics). */
async function groupMembers(): Promise<number[]> {
  const admin = new KafkaClient('scaling-test', { brokers: brokers() }).admin();
  await admin.connect();
  try {
    const base = stack.env.KAFKA_GROUP_ID as string;
    const groups = await admin.describeGroups(['writes', 'reads', 'analytics'].map((l) => `${base}.${l}`));
    return groups.flatMap((g) => g.members.map((m) => Object.values(m.partitions).flat().length));
  } finally {
    await admin.disconnect();
  }
}

const LANES_PER_PROCESS = 3;

it('scales from one to three processes and back while messages flow, without loss or doubling', async () => {
  const started = Date.now();
  const workload = new Workload({ patterns: 250, usagePerPattern: 6, relationships: 100, searches: 150 });
  const tracker = new ResultTracker(stack.results);
  const first = await stack.worker();
  await produce(stack.producer, stack.names, workload.inserts);
  await tracker.waitAnswered(workload.inserts, 60_000);

  const flowing = produce(stack.producer, stack.names, workload.followUps, { chunk: 40, pauseMs: 300 });
  await eventually(() => tracker.missing(workload.followUps.slice(0, 100)).length === 0, 30_000, 'flow');
  const added: WorkerProcess[] = await Promise.all([stack.worker(), stack.worker()]);
  // Ready means settled (WORKER_READY_SETTLE_MS): once both new processes answer /readyz, every member of
  // every lane already holds partitions, without waiting for the handover.
  const peak = await groupMembers();
  expect(peak).toHaveLength(3 * LANES_PER_PROCESS);
  expect(
    peak.every((partitions) => partitions > 0),
    `partitions per member: ${peak.join(', ')}`,
  ).toBe(true);
  await new Promise((r) => setTimeout(r, 3_000));
  const stopped = await Promise.all(added.map((w) => w.stop('SIGTERM')));
  await flowing;
  await tracker.waitAnswered(workload.all, 90_000);
  const after = await groupMembers();

  const figures = await workload.check(stack.db.pool, tracker, stack.names);
  await reportFigures('scaling', {
    faults: 4,
    rebalances: '1 -> 3 -> 1',
    ...figures,
    duration_s: Math.round((Date.now() - started) / 1000),
  });
  expect(stopped).toEqual([0, 0]);
  expect(after).toHaveLength(LANES_PER_PROCESS);
  expect(first.child.exitCode).toBeNull();
  expect(figures.problems).toEqual([]);
  expect({ lost: figures.lost, doubled: figures.doubled, answered: figures.answered }).toEqual({
    lost: 0,
    doubled: 0,
    answered: workload.size,
  });
});
