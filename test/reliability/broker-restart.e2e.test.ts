// Scenario 3: the broker stops and starts mid-stream. The broker is one this test owns (never the
// shared one). The worker process must reconnect by itself and resume: every request answered, every
// effect exactly once, same process throughout.
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { PatternClient } from '../../src/client/index.ts';
import { createStackRetrying, eventually } from '../support/faults.ts';
import { startOwnKafka, type OwnKafka } from '../support/own-kafka.ts';
import type { Stack } from '../support/stack.ts';
import { produce, reportFigures, ResultTracker, Workload } from '../support/workload.ts';

vi.setConfig({ testTimeout: 180_000 });

let kafka: OwnKafka;
let stack: Stack;
beforeAll(async () => {
  kafka = await startOwnKafka();
  // This file runs in its own process: the stack's clients and the worker use the test's broker.
  process.env.KAFKA_BROKERS = kafka.brokers;
  stack = await createStackRetrying({ partitions: 3 });
}, 150_000);
afterAll(async () => {
  await stack?.close().catch(() => undefined);
  await kafka?.destroy();
}, 60_000);

it('reconnects after the broker restarts and resumes without loss or doubling', async () => {
  const started = Date.now();
  const workload = new Workload({ patterns: 250, usagePerPattern: 6, relationships: 100, searches: 150 });
  const tracker = new ResultTracker(stack.results);
  const worker = await stack.worker();
  const pid = worker.child.pid;
  await produce(stack.producer, stack.names, workload.inserts);
  await tracker.waitAnswered(workload.inserts, 60_000);

  const half = Math.floor(workload.followUps.length / 2);
  await produce(stack.producer, stack.names, workload.followUps.slice(0, half));
  await eventually(() => tracker.missing(workload.followUps.slice(0, 20)).length === 0, 30_000, 'flow');

  // Stopped while the first half is still being worked through (usually: the figure says how many).
  const pendingAtStop = tracker.missing(workload.followUps.slice(0, half)).length;
  const downAt = Date.now();
  await kafka.stop();
  await new Promise((r) => setTimeout(r, 3_000));
  await kafka.start();
  const downMs = Date.now() - downAt;
  // A client connecting to a broker that has just started waits for what it needs: a seek made right
  // after the reply consumer's run() used to fail here with "Consumer group was not initialized".
  const client = await new PatternClient({
    brokers: [kafka.brokers],
    topicPrefix: stack.names.prefix,
    clientId: 'restart-client',
    timeoutMs: 120_000,
  }).connect();
  const answered = client.search({ search_query: 'after the restart' });

  await produce(stack.producer, stack.names, workload.followUps.slice(half));
  await tracker.waitAnswered(workload.all, 120_000).catch((err: unknown) => {
    // A stall here was seen once in CI and not reproduced: keep what the worker said with the failure.
    const tail = worker.output().split('\n').slice(-60).join('\n');
    throw new Error(`${String(err)}\nthe worker's last log lines:\n${tail}`);
  });
  expect((await answered).success).toBe(true);
  await client.close();
  let readiness: unknown;
  await eventually(
    async () => {
      const r = await worker.readyz();
      readiness = r.body;
      return r.status === 200;
    },
    30_000,
    'readiness after the restart',
  ).catch((err: unknown) => {
    throw new Error(`${String(err)}: ${JSON.stringify(readiness)}`);
  });

  const figures = await workload.check(stack.db.pool, tracker, stack.names);
  await reportFigures('broker-restart', {
    faults: 1,
    broker_down_ms: downMs,
    pending_at_stop: pendingAtStop,
    ...figures,
    duration_s: Math.round((Date.now() - started) / 1000),
  });
  expect(worker.child.pid).toBe(pid);
  expect(worker.child.exitCode).toBeNull();
  expect(figures.problems).toEqual([]);
  expect({ lost: figures.lost, doubled: figures.doubled, answered: figures.answered }).toEqual({
    lost: 0,
    doubled: 0,
    answered: workload.size,
  });
});
