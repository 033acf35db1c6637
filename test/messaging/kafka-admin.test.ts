// The project's admin client (src/messaging/kafka/admin.ts) on a real broker: watermarks and offsets by
// time, committed offsets and their admin commit, groups of both protocols described with their members'
// partitions, topic creation that tolerates a topic created meanwhile, and broker errors named by type.
// kafkajs is the independent client that writes records and runs the classic-protocol member.
import { randomBytes } from 'node:crypto';
import { Consumer } from '@platformatic/kafka';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KafkaAdminError, type KafkaAdmin } from '../../src/messaging/kafka/admin.ts';
import { KafkaClient } from '../../src/messaging/kafka/client.ts';
import { brokers, testKafka, uniquePrefix } from '../support/kafka.ts';

const prefix = uniquePrefix();
const topic = `${prefix}admin`;
const kafka = testKafka();
let admin: KafkaAdmin;

const eventually = async <T>(read: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 30_000) => {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (ok(value) || Date.now() > deadline) return value;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
};

beforeAll(async () => {
  admin = new KafkaClient('pattern-worker-test', { brokers: brokers() }).admin();
  await admin.connect();
  expect(await admin.createTopics({ topics: [{ topic, numPartitions: 2, replicationFactor: 1 }] })).toEqual([
    topic,
  ]);
  const producer = kafka.producer();
  await producer.connect();
  await producer.send({
    topic,
    messages: [0, 1, 2].map((i) => ({
      partition: 0,
      value: `m${i}`,
      timestamp: String(1_000_000 + i * 1000),
    })),
  });
  await producer.disconnect();
});

afterAll(async () => {
  await admin.disconnect();
  const other = kafka.admin();
  await other.connect();
  const mine = (await other.listTopics()).filter((t) => t.startsWith(prefix));
  await other.deleteTopics({ topics: mine }).catch(() => undefined);
  await other.disconnect();
});

describe('KafkaAdmin', () => {
  it('lists topics and their partitions, and names an unknown topic at once', async () => {
    expect(await admin.listTopics()).toContain(topic);
    const { topics } = await admin.fetchTopicMetadata({ topics: [topic] });
    expect(topics.map((t) => [t.name, t.partitions.map((p) => p.partitionId)])).toEqual([[topic, [0, 1]]]);
    expect(topics[0]?.partitions.every((p) => p.leader >= 0 && p.isr.length === 1)).toBe(true);

    const started = Date.now();
    const err = await admin.fetchTopicMetadata({ topics: [`${prefix}missing`] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KafkaAdminError);
    expect((err as KafkaAdminError).type).toBe('UNKNOWN_TOPIC_OR_PARTITION');
    expect(Date.now() - started).toBeLessThan(1_500);
    await expect(admin.fetchTopicOffsets(`${prefix}missing`)).rejects.toMatchObject({
      type: 'UNKNOWN_TOPIC_OR_PARTITION',
    });
  });

  it('reads watermarks and the first offset at or after a time', async () => {
    expect(await admin.fetchTopicOffsets(topic)).toEqual([
      { partition: 0, low: '0', high: '3', stable: '3' },
      { partition: 1, low: '0', high: '0', stable: '0' },
    ]);
    expect(await admin.fetchTopicOffsetsByTimestamp(topic, 1_000_500)).toEqual([
      { partition: 0, offset: '1' },
      { partition: 1, offset: '-1' },
    ]);
    expect(await admin.fetchTopicOffsetsByTimestamp(topic, Date.now())).toEqual([
      { partition: 0, offset: '-1' },
      { partition: 1, offset: '-1' },
    ]);
  });

  it('creates a topic once, with its configuration, however many ask at the same time', async () => {
    const name = `${prefix}created`;
    const spec = {
      topic: name,
      numPartitions: 3,
      configEntries: [{ name: 'retention.ms', value: '3600000' }],
    };
    const second = new KafkaClient('pattern-worker-test-2', { brokers: brokers() }).admin();
    try {
      const [a, b] = await Promise.all([
        admin.createTopics({ topics: [spec] }),
        second.createTopics({ topics: [spec] }),
      ]);
      expect([...a, ...b]).toEqual([name]);
    } finally {
      await second.disconnect();
    }
    expect(await admin.createTopics({ topics: [spec] })).toEqual([]);
    expect((await admin.fetchTopicMetadata({ topics: [name] })).topics[0]?.partitions).toHaveLength(3);
    const other = kafka.admin();
    await other.connect();
    const { resources } = await other.describeConfigs({
      includeSynonyms: false,
      resources: [{ type: 2, name }],
    });
    await other.disconnect();
    expect(resources[0]?.configEntries.find((e) => e.configName === 'retention.ms')?.configValue).toBe(
      '3600000',
    );
  });

  it('commits offsets for an empty group, reads them back, and describes a group that does not exist', async () => {
    const groupId = `${prefix}group-${randomBytes(3).toString('hex')}`;
    expect(await admin.fetchOffsets({ groupId, topics: [topic] })).toEqual([
      {
        topic,
        partitions: [
          { partition: 0, offset: '-1' },
          { partition: 1, offset: '-1' },
        ],
      },
    ]);
    expect(await admin.describeGroups([groupId])).toEqual([
      { groupId, state: 'Dead', protocol: 'classic', members: [] },
    ]);
    await admin.alterGroupOffsets({
      groupId,
      topics: [{ topic, partitions: [{ partition: 0, offset: '2' }] }],
    });
    expect(await admin.fetchOffsets({ groupId, topics: [topic] })).toEqual([
      {
        topic,
        partitions: [
          { partition: 0, offset: '2' },
          { partition: 1, offset: '-1' },
        ],
      },
    ]);
    const [described] = await admin.describeGroups([groupId]);
    expect([described?.state, described?.members]).toEqual(['Empty', []]);
  });

  it('describes a classic group with its members and their partitions, and refuses to alter its offsets', async () => {
    const groupId = `${prefix}classic-${randomBytes(3).toString('hex')}`;
    const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 100 });
    await consumer.connect();
    try {
      await consumer.subscribe({ topics: [topic], fromBeginning: true });
      await consumer.run({ eachMessage: () => Promise.resolve() });
      const [group] = await eventually(
        () => admin.describeGroups([groupId]),
        ([g]) => g?.state === 'Stable',
      );
      expect(group).toMatchObject({ groupId, state: 'Stable', protocol: 'classic' });
      expect(group?.members).toHaveLength(1);
      expect(group?.members[0]).toMatchObject({
        clientId: 'pattern-worker-test',
        partitions: { [topic]: [0, 1] },
      });
      expect(group?.members[0]?.host).toMatch(/127\.0\.0\.1/);
      await expect(
        admin.alterGroupOffsets({
          groupId,
          topics: [{ topic, partitions: [{ partition: 0, offset: '0' }] }],
        }),
      ).rejects.toMatchObject({ type: 'NON_EMPTY_GROUP' });
    } finally {
      await consumer.disconnect();
    }
  });

  it('describes a KIP-848 consumer group with its members and their assigned partitions', async () => {
    const groupId = `${prefix}kip848-${randomBytes(3).toString('hex')}`;
    const consumer = new Consumer({
      clientId: 'kip848-member',
      bootstrapBrokers: brokers(),
      groupId,
      groupProtocol: 'consumer',
      // The library checks it against its classic sessionTimeout (default 60 s), unused by this protocol.
      rebalanceTimeout: 60_000,
      autocommit: false,
    });
    consumer.on('error', () => undefined);
    try {
      const stream = await consumer.consume({ topics: [topic], autocommit: false, mode: 'earliest' });
      stream.on('data', () => undefined);
      const [group] = await eventually(
        () => admin.describeGroups([groupId]),
        ([g]) => (g?.members[0]?.partitions[topic]?.length ?? 0) === 2,
      );
      expect(group).toMatchObject({ groupId, state: 'Stable', protocol: 'consumer' });
      expect(group?.members).toHaveLength(1);
      expect(group?.members[0]).toMatchObject({ clientId: 'kip848-member', partitions: { [topic]: [0, 1] } });
      expect(group?.members[0]?.host).toMatch(/127\.0\.0\.1/);
      expect(group?.members[0]?.memberId).not.toBe('');
      await expect(
        admin.alterGroupOffsets({
          groupId,
          topics: [{ topic, partitions: [{ partition: 0, offset: '0' }] }],
        }),
      ).rejects.toMatchObject({ type: 'NON_EMPTY_GROUP' });
    } finally {
      await consumer.close(true);
    }
    const [left] = await eventually(
      () => admin.describeGroups([groupId]),
      ([g]) => g?.members.length === 0,
    );
    expect(left?.members).toEqual([]);
  });

  it('can be used again after disconnect', async () => {
    const again = new KafkaClient('pattern-worker-test', { brokers: brokers() }).admin();
    await again.connect();
    await again.disconnect();
    expect(await again.listTopics()).toContain(topic);
    await again.disconnect();
  });

  it('fails to connect when no broker answers', async () => {
    const nowhere = new KafkaClient('pattern-worker-test', { brokers: ['127.0.0.1:1'] }).admin();
    await expect(nowhere.connect()).rejects.toBeInstanceOf(KafkaAdminError);
    await nowhere.disconnect();
  });
});
