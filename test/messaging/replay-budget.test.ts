// The replay's budget beside a live worker (issue 23, point 3), against the real broker: with no explicit
// rate it is WORKER_REPLAY_LIVE_MAX_RATE while one of the live worker's lane groups has members, and no
// limit while none has; it looks again on its interval, so a worker joining or leaving changes it. An
// explicit rate is kept and never looks.
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Admin } from 'kafkajs';
import type { KafkaAdmin } from '../../src/messaging/kafka/admin.ts';
import { KafkaClient } from '../../src/messaging/kafka/client.ts';
import { createGroupMember, type GroupMember } from '../../src/messaging/kafka/group-member.ts';
import { liveGroupIds, liveGroups, ReplayBudget } from '../../src/messaging/operations/replay-budget.ts';
import { brokers, testKafka, uniquePrefix } from '../support/kafka.ts';

const kafka = testKafka('replay-budget-test');
const prefix = uniquePrefix();
const base = `${prefix}worker`;
const topic = `${prefix}pattern.search.request`;
const client = new KafkaClient('replay-budget-test', { brokers: brokers() });
let testAdmin: Admin;
let admin: KafkaAdmin;

beforeAll(async () => {
  testAdmin = kafka.admin();
  await testAdmin.connect();
  await testAdmin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true });
  admin = client.admin();
  await admin.connect();
});
afterAll(async () => {
  await testAdmin.deleteTopics({ topics: [topic] }).catch(() => undefined);
  await testAdmin.disconnect();
  await admin.disconnect();
});

/** A member of the live worker's reads group, as the worker's lanes join (KIP-848), joined before it returns. */
async function liveReadsMember(): Promise<GroupMember> {
  const member = createGroupMember({
    client,
    groupId: `${base}.reads`,
    topics: [topic],
    name: 'reads',
    reset: 'latest',
    maxBytesPerPartition: 1_048_576,
    stallTimeoutMs: 30_000,
    hooks: {
      onRecords: () => undefined,
      onAssignment: () => undefined,
      onMembership: () => undefined,
      onFatal: () => undefined,
      onError: () => undefined,
    },
  });
  await member.start();
  return member;
}

describe('the replay budget beside live lanes', () => {
  it('names the lane groups and the group of earlier versions', () => {
    expect(liveGroupIds('g')).toEqual(['g.writes', 'g.reads', 'g.analytics', 'g']);
  });

  it('is the live rate while a lane group has members, no limit when none has, and follows them', async () => {
    const lines: string[] = [];
    const budget = new ReplayBudget({
      liveRate: 300,
      live: () => liveGroups(admin, base),
      intervalMs: 200,
      onChange: (line) => lines.push(line),
    });
    // Before its first look: the cautious rate.
    expect(budget.rate()).toBe(300);
    await budget.start();
    try {
      expect(budget.rate()).toBe(0);
      expect(budget.describe()).toBe('no rate limit (no live lane has members)');

      const member = await liveReadsMember();
      await vi.waitFor(() => expect(budget.rate()).toBe(300), { timeout: 10_000 });
      expect(budget.describe()).toBe(`at most 300 messages/s while live lanes run (${base}.reads)`);

      await member.close();
      await vi.waitFor(() => expect(budget.rate()).toBe(0), { timeout: 10_000 });
      expect(lines).toEqual([
        `budget now at most 300 messages/s while live lanes run (${base}.reads)`,
        'budget now no rate limit (no live lane has members)',
      ]);
    } finally {
      budget.stop();
    }
  });

  it('keeps an explicit rate, 0 included, without looking', async () => {
    const live = vi.fn(() => liveGroups(admin, base));
    for (const fixedRate of [0, 40]) {
      const budget = new ReplayBudget({ fixedRate, liveRate: 300, live });
      await budget.start();
      await budget.check();
      expect(budget.rate()).toBe(fixedRate);
      expect(budget.describe()).toBe(fixedRate > 0 ? 'at most 40 messages/s' : 'no rate limit');
      budget.stop();
    }
    expect(live).not.toHaveBeenCalled();
  });

  it('keeps its rate when a look fails, and starts cautious if the first one does', async () => {
    const errors: unknown[] = [];
    const budget = new ReplayBudget({
      liveRate: 300,
      live: () => Promise.reject(new Error('broker unreachable')),
      onError: (err) => errors.push(err),
    });
    await budget.start();
    budget.stop();
    expect(budget.rate()).toBe(300);
    expect(errors).toHaveLength(1);
  });
});
