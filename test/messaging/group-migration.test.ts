// The once-only offset copy from the single worker group of earlier versions to a lane's own group: its
// decisions on a fake admin, then on a real broker with lanes that join with the KIP-848 protocol.
import { randomBytes } from 'node:crypto';
import { Consumer } from '@platformatic/kafka';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KafkaAdminError, type KafkaAdmin } from '../../src/messaging/kafka/admin.ts';
import { KafkaClient } from '../../src/messaging/kafka/client.ts';
import { describeGroup, migrateGroupOffsets } from '../../src/messaging/kafka/groups.ts';
import { createLogger } from '../../src/telemetry/logger.ts';
import { brokers, testKafka, uniquePrefix } from '../support/kafka.ts';

const logger = createLogger('silent');

/** Committed offsets per group and topic; a group with members refuses alterGroupOffsets as the broker does. */
function fakeAdmin(committed: Record<string, Record<string, number[]>>, busy = new Set<string>()) {
  const sets: { groupId: string; topics: string[] }[] = [];
  const admin = {
    fetchOffsets: ({ groupId, topics }: { groupId: string; topics: string[] }) =>
      Promise.resolve(
        topics.map((topic) => ({
          topic,
          partitions: (committed[groupId]?.[topic] ?? [-1, -1]).map((offset, partition) => ({
            partition,
            offset: String(offset),
          })),
        })),
      ),
    alterGroupOffsets: ({
      groupId,
      topics,
    }: {
      groupId: string;
      topics: { topic: string; partitions: { partition: number; offset: string }[] }[];
    }) => {
      if (busy.has(groupId))
        return Promise.reject(
          new KafkaAdminError(
            `group ${groupId} has 1 member(s): its offsets can be altered only while it is empty`,
            'NON_EMPTY_GROUP',
          ),
        );
      sets.push({ groupId, topics: topics.map((t) => t.topic) });
      for (const { topic, partitions } of topics) {
        const offsets = ((committed[groupId] ??= {})[topic] ??= [-1, -1]);
        for (const p of partitions) offsets[p.partition] = Number(p.offset);
      }
      return Promise.resolve();
    },
  };
  return { admin: admin as unknown as KafkaAdmin, sets, committed };
}

const o = { from: 'w', to: 'w.writes', topics: ['insert', 'usage'], logger };

describe('migrateGroupOffsets', () => {
  it('copies the old group offsets of the lane topics to a new group', async () => {
    const { admin, committed, sets } = fakeAdmin({
      w: { insert: [4, 7], usage: [-1, 2], search: [9, 9] },
    });
    expect(await migrateGroupOffsets(admin, o)).toEqual({ kind: 'copied', partitions: 3 });
    expect(committed['w.writes']).toEqual({ insert: [4, 7], usage: [-1, 2] });
    // One commit for every topic: a replica that sees any of it sees all of it.
    expect(sets).toEqual([{ groupId: 'w.writes', topics: ['insert', 'usage'] }]);
  });

  it('leaves a group that has committed anything alone', async () => {
    const { admin, sets } = fakeAdmin({ w: { insert: [4, 7] }, 'w.writes': { usage: [1, -1] } });
    expect(await migrateGroupOffsets(admin, o)).toEqual({ kind: 'already' });
    expect(sets).toEqual([]);
  });

  it('has nothing to do when the old group committed nothing there', async () => {
    const { admin } = fakeAdmin({ w: { search: [3, 3] } });
    expect(await migrateGroupOffsets(admin, o)).toEqual({ kind: 'nothing' });
  });

  it('gives way to a replica whose lane joined the new group first', async () => {
    const { admin } = fakeAdmin({ w: { insert: [4, 7] } }, new Set(['w.writes']));
    const outcome = await migrateGroupOffsets(admin, o);
    expect(outcome.kind).toBe('raced');
    expect(outcome.kind === 'raced' && outcome.reason).toMatch(/only while it is empty/);
  });
});

describe('migrateGroupOffsets on a real broker', () => {
  const prefix = uniquePrefix();
  const topics = [`${prefix}insert`, `${prefix}usage`];
  const from = `${prefix}worker`;
  const client = new KafkaClient('pattern-worker-test', { brokers: brokers() });
  const admin = client.admin();
  const kafkajs = testKafka();

  beforeAll(async () => {
    await admin.connect();
    await admin.createTopics({ topics: topics.map((topic) => ({ topic, numPartitions: 2 })) });
    const producer = kafkajs.producer();
    await producer.connect();
    for (const topic of topics)
      await producer.send({
        topic,
        messages: [0, 1, 2, 3, 4].map((i) => ({ partition: 0, value: `m${i}` })),
      });
    await producer.disconnect();
    // What the single worker group of earlier versions committed.
    await admin.alterGroupOffsets({
      groupId: from,
      topics: [
        { topic: topics[0]!, partitions: [{ partition: 0, offset: '3' }] },
        { topic: topics[1]!, partitions: [{ partition: 0, offset: '5' }] },
      ],
    });
  });

  afterAll(async () => {
    await admin.disconnect();
    const other = kafkajs.admin();
    await other.connect();
    await other.deleteTopics({ topics }).catch(() => undefined);
    await other.disconnect();
  });

  const member = (groupId: string) => {
    const consumer = new Consumer({
      clientId: 'lane-member',
      bootstrapBrokers: brokers(),
      groupId,
      groupProtocol: 'consumer',
      // The library checks it against its classic sessionTimeout (default 60 s), unused by this protocol.
      rebalanceTimeout: 60_000,
      autocommit: false,
    });
    consumer.on('error', () => undefined);
    return consumer;
  };

  it('copies once when several replicas start at once; a KIP-848 member then starts where the old group stopped', async () => {
    const to = `${prefix}worker.writes`;
    const replicas = [admin, client.admin(), client.admin()];
    const outcomes = await Promise.all(
      replicas.map((a) => migrateGroupOffsets(a, { from, to, topics, logger })),
    );
    await Promise.all(replicas.slice(1).map((a) => a.disconnect()));
    expect(outcomes.filter((x) => x.kind === 'copied').length).toBeGreaterThanOrEqual(1);
    for (const x of outcomes) expect(['copied', 'already']).toContain(x.kind);
    const copied = await admin.fetchOffsets({ groupId: to, topics });
    expect(copied.map((t) => t.partitions.map((p) => p.offset))).toEqual([
      ['3', '-1'],
      ['5', '-1'],
    ]);
    expect(await migrateGroupOffsets(admin, { from, to, topics, logger })).toEqual({ kind: 'already' });

    // The lane joins its group with the KIP-848 protocol and reads on from the copied offsets.
    const consumer = member(to);
    try {
      const stream = await consumer.consume({
        topics,
        autocommit: false,
        mode: 'committed',
        fallbackMode: 'earliest',
      });
      const first = new Map<string, bigint>();
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no records')), 20_000);
        stream.on('data', (m: { topic: string; partition: number; offset: bigint }) => {
          if (m.partition === 0 && !first.has(m.topic)) first.set(m.topic, m.offset);
          // (usage's copied offset is its end: nothing to read there)
          if (first.has(topics[0]!)) {
            clearTimeout(timer);
            resolve();
          }
        });
      });
      expect(first.get(topics[0]!)).toBe(3n);
      const described = await describeGroup(admin, to);
      expect(described.members.map((m) => m.clientId)).toEqual(['lane-member']);
      expect(await admin.fetchOffsets({ groupId: to, topics })).toEqual(copied);
    } finally {
      await consumer.close(true);
    }
  });

  it('gives way once a member has joined the new group, even before it committed anything', async () => {
    const to = `${prefix}worker.reads-${randomBytes(3).toString('hex')}`;
    const consumer = member(to);
    try {
      const stream = await consumer.consume({ topics, autocommit: false, mode: 'latest' });
      stream.on('data', () => undefined);
      const deadline = Date.now() + 20_000;
      while ((await describeGroup(admin, to)).members.length === 0 && Date.now() < deadline)
        await new Promise((resolve) => setTimeout(resolve, 200));
      const outcome = await migrateGroupOffsets(admin, { from, to, topics, logger });
      expect(outcome.kind).toBe('raced');
      expect(outcome.kind === 'raced' && outcome.reason).toMatch(/NON_EMPTY_GROUP|only while it is empty/);
      expect(
        (await admin.fetchOffsets({ groupId: to, topics })).flatMap((t) => t.partitions.map((p) => p.offset)),
      ).toEqual(['-1', '-1', '-1', '-1']);
    } finally {
      await consumer.close(true);
    }
  });
});
