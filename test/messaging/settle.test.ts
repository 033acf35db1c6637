// Readiness after a start waits until each lane holds the partitions the broker means it to have
// (src/messaging/kafka/settle.ts); the worker's side of it with fake members and a fake broker describe.
import { describe, expect, it } from 'vitest';
import { laneSettings } from '../../src/app.ts';
import { loadConfig } from '../../src/config.ts';
import { Lifecycle } from '../../src/messaging/engine/lifecycle.ts';
import type { DescribedGroup } from '../../src/messaging/kafka/admin.ts';
import { awaitSettled, missingPartitions, type SettlingLane } from '../../src/messaging/kafka/settle.ts';
import { Worker } from '../../src/messaging/kafka/worker.ts';
import { createLogger } from '../../src/telemetry/logger.ts';
import { Readiness } from '../../src/telemetry/readiness.ts';
import { FakeWork } from '../support/engine-fakes.ts';
import { fakeKafka } from '../support/fake-kafka.ts';

const logger = createLogger('silent');

function lane(held: string[], memberId: string | null = 'm1'): SettlingLane {
  return {
    name: 'writes',
    groupId: 'g.writes',
    memberId: () => memberId ?? undefined,
    isAssigned: (topic, partition) => held.includes(`${topic}/${partition}`),
  };
}

function group(
  target: Record<string, number[]>,
  protocol: 'consumer' | 'classic' = 'consumer',
): DescribedGroup {
  return {
    groupId: 'g.writes',
    state: 'Reconciling',
    protocol,
    members: [{ memberId: 'm1', clientId: 'c', host: 'h', partitions: {}, targetPartitions: target }],
  };
}

describe('missingPartitions', () => {
  it('names the target partitions the lane does not hold yet', () => {
    const missing = missingPartitions(group({ 'pattern.usage': [0, 1, 2] }), lane(['pattern.usage/1']));
    expect(missing).toMatch(
      /waiting for 2 partition\(s\) other members still hold: pattern\.usage\[0\], pattern\.usage\[2\]/,
    );
  });

  it('is satisfied once the lane holds its whole target', () => {
    expect(missingPartitions(group({ t: [0, 1] }), lane(['t/0', 't/1', 't/5']))).toBeUndefined();
    expect(missingPartitions(group({}), lane([]))).toBeUndefined();
  });

  it('waits for a member that has not joined, or that the broker does not describe yet', () => {
    expect(missingPartitions(group({ t: [0] }), lane(['t/0'], null))).toBe('not joined yet');
    expect(missingPartitions(group({ t: [0] }), lane(['t/0'], 'm2'))).toMatch(/not in the group/);
  });

  it('has nothing to wait for in a classic group, which has no target assignment', () => {
    expect(missingPartitions(group({ t: [0] }, 'classic'), lane([]))).toBeUndefined();
  });
});

describe('awaitSettled', () => {
  it('polls until the partitions arrive, reporting what it waits for meanwhile', async () => {
    const held: string[] = [];
    const progress: string[] = [];
    let calls = 0;
    const outcome = await awaitSettled({
      lanes: [lane(held)],
      describe: () => {
        calls += 1;
        if (calls === 3) held.push('t/0', 't/1');
        if (calls === 2) return Promise.reject(new Error('coordinator moved'));
        return Promise.resolve([group({ t: [0, 1] })]);
      },
      timeoutMs: 5_000,
      intervalMs: 1,
      running: () => true,
      onProgress: (d) => progress.push(d),
    });
    expect(outcome.settled).toBe(true);
    expect(calls).toBe(3);
    expect(progress).toEqual([
      'writes: waiting for 2 partition(s) other members still hold: t[0], t[1]',
      'describing the groups failed: coordinator moved',
    ]);
  });

  it('gives up after its timeout, saying what was still missing', async () => {
    const outcome = await awaitSettled({
      lanes: [lane([])],
      describe: () => Promise.resolve([group({ t: [3] })]),
      timeoutMs: 30,
      intervalMs: 5,
      running: () => true,
    });
    expect(outcome).toMatchObject({ settled: false, reason: 'timeout' });
    expect(outcome.settled ? '' : outcome.detail).toMatch(/t\[3\]/);
  });

  it('ends when the worker stops', async () => {
    let running = true;
    const outcome = awaitSettled({
      lanes: [lane([])],
      describe: () => Promise.resolve([group({ t: [3] })]),
      timeoutMs: 60_000,
      intervalMs: 5,
      running: () => running,
    });
    setTimeout(() => (running = false), 20);
    expect(await outcome).toMatchObject({ settled: false, reason: 'stopped' });
  });
});

describe('the worker is ready once its lanes have settled', () => {
  const env = { KAFKA_BROKERS: '127.0.0.1:9092', DATABASE_URL: 'postgres://localhost/x' };

  it('reports not ready while a lane waits for partitions, and ready after they arrive', async () => {
    const fake = fakeKafka();
    const config = loadConfig(env);
    const readiness = new Readiness();
    let handedOver = false;
    const worker = new Worker({
      kafka: fake.kafka,
      ports: fake.ports,
      lanes: laneSettings(config, { config, logger }),
      work: new FakeWork(),
      checkRecord: () => undefined,
      lifecycle: new Lifecycle(),
      logger,
      readiness,
      settle: {
        timeoutMs: 10_000,
        describe: (ids) =>
          Promise.resolve(
            ids.map((groupId) => ({
              groupId,
              state: 'Reconciling',
              protocol: 'consumer' as const,
              // Until the handover, the broker does not list the new member: it is not settled.
              members: handedOver
                ? fake.members.map((m) => ({
                    memberId: m.memberId ?? '',
                    clientId: 'c',
                    host: 'h',
                    partitions: {},
                    targetPartitions: { 'pattern.usage': [0] },
                  }))
                : [],
            })),
          ),
      },
    });
    await worker.start();
    for (const m of fake.members) m.options.hooks.onMembership(true, 'joined');
    await new Promise((r) => setTimeout(r, 150));
    const waiting = readiness.report().checks.consumer;
    expect(waiting?.ok).toBe(false);
    expect(waiting?.detail).toMatch(/assignment: writes: not in the group/);
    handedOver = true;
    for (let i = 0; i < 100 && !readiness.isOk('consumer'); i++) await new Promise((r) => setTimeout(r, 10));
    expect(readiness.isOk('consumer')).toBe(true);
    await worker.stop(100).catch(() => undefined);
  });
});
