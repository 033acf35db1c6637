// A topic deleted and created again under the same name, on the real broker. Offsets are committed by
// name, so a group's committed offset can be the deleted topic's (commits of its last moments land on the
// new one): a lane that read the deleted topic starts the new one's partitions from their log start, and
// a fetcher reading a topic when it is created again stops fetching it and says so. Without that, a lane
// started the new topic at the deleted one's offsets: a burst written into the new topic lost its first
// records without a word (thousands of 18,000 in the audit's run).
import { Admin, Consumer } from '@platformatic/kafka';
import type { Producer } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { KafkaClient } from '../../src/messaging/kafka/client.ts';
import { commitMetadataOf, tagCommits } from '../../src/messaging/kafka/commit-tags.ts';
import { PartitionFetcher, type FetchedRecord } from '../../src/messaging/kafka/fetcher.ts';
import { createGroupMember, type GroupMember } from '../../src/messaging/kafka/group-member.ts';
import { createTopicsAndWait } from '../../src/messaging/kafka/topic-admin.ts';
import { eventually } from '../support/faults.ts';
import { brokers, connectedProducer, testKafka, uniquePrefix } from '../support/kafka.ts';

vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

const client = new KafkaClient('recreated-test', { brokers: brokers() });
const prefix = uniquePrefix();
const committedTopic = `${prefix}committed`;
const recreatedTopic = `${prefix}recreated`;
const restartedTopic = `${prefix}restarted`;

let producer: Producer;
const consumers: Consumer[] = [];
const fetchers: PartitionFetcher[] = [];
const members: GroupMember[] = [];

async function create(topic: string): Promise<void> {
  const admin = client.admin();
  try {
    await createTopicsAndWait(admin, [{ topic, numPartitions: 1 }]);
  } finally {
    await admin.disconnect();
  }
}

async function recreate(topic: string): Promise<void> {
  const admin = testKafka().admin();
  await admin.connect();
  await admin.deleteTopics({ topics: [topic] });
  await admin.disconnect();
  await eventually(
    async () => {
      try {
        await create(topic);
        return true;
      } catch {
        return false;
      }
    },
    30_000,
    'the topic created again',
  );
}

async function send(topic: string, values: string[]): Promise<void> {
  await producer.send({ topic, messages: values.map((value) => ({ partition: 0, value })) });
}

const values = (name: string, n: number): string[] => Array.from({ length: n }, (_, i) => `${name}-${i}`);

/** Commits `offset` for `group` as a worker that read the topic under `id` would. */
async function commitTagged(group: string, topic: string, offset: bigint, id: string): Promise<void> {
  const admin = new Admin(client.options('-tagged'));
  try {
    tagCommits(admin, { topicIdOf: () => id, onCommitted: () => undefined });
    await admin.alterConsumerGroupOffsets({
      groupId: group,
      topics: [{ name: topic, partitionOffsets: [{ partition: 0, offset }] }],
    });
  } finally {
    await admin.close();
  }
}

async function committedOf(group: string, topic: string) {
  const admin = new Admin(client.options('-offsets'));
  try {
    const [answer] = await admin.listConsumerGroupOffsets({
      groups: [{ groupId: group, topics: [{ name: topic, partitionIndexes: [0] }] }],
    });
    const p = answer?.topics.find((t) => t.name === topic)?.partitions[0];
    return { offset: p?.committedOffset, metadata: p?.metadata };
  } finally {
    await admin.close();
  }
}

/** A lane's member of `group`, in a process that has read nothing yet. */
async function memberOf(group: string, topic: string) {
  const got: FetchedRecord[] = [];
  const restarted: [string, number, bigint | undefined, bigint][] = [];
  const member = createGroupMember({
    client,
    groupId: group,
    topics: [topic],
    name: 'recreated',
    reset: 'earliest',
    maxBytesPerPartition: 1 << 20,
    topicIds: new Map(),
    stallTimeoutMs: 30_000,
    hooks: {
      onRecords: (_topic, _partition, records) => got.push(...records),
      onRestarted: (...args) => restarted.push(args),
      onAssignment: () => undefined,
      onMembership: () => undefined,
      onFatal: () => undefined,
      onError: () => undefined,
    },
  });
  members.push(member);
  await member.start();
  return { member, got, restarted };
}

async function topicId(topic: string): Promise<string> {
  const admin = testKafka().admin();
  await admin.connect();
  try {
    const { topics } = await admin.fetchTopicMetadata({ topics: [topic] });
    const consumer = new Consumer({ ...client.options('-ids'), groupId: `${prefix}ids` });
    consumer.on('error', () => undefined);
    consumers.push(consumer);
    expect(topics[0]?.name).toBe(topic);
    const metadata = await consumer.metadata({ topics: [topic], forceUpdate: true });
    return metadata.topics.get(topic)?.id ?? '';
  } finally {
    await admin.disconnect();
  }
}

function fetcherOf(groupId: string, topicIds: Map<string, string>) {
  const consumer = new Consumer({ ...client.options('-recreated'), groupId });
  consumer.on('error', () => undefined);
  consumers.push(consumer);
  const got: FetchedRecord[] = [];
  const restarted: [string, number, bigint | undefined, bigint][] = [];
  const recreated: [string, string, string][] = [];
  const fetcher = new PartitionFetcher({
    consumer,
    connection: client.options('-recreated'),
    startFrom: 'committed',
    reset: 'earliest',
    maxWaitMs: 100,
    topicIds,
    onRecords: (_topic, _partition, records) => got.push(...records),
    onRestarted: (...args) => restarted.push(args),
    onRecreated: (...args) => recreated.push(args),
  });
  fetchers.push(fetcher);
  return { fetcher, got, restarted, recreated };
}

beforeAll(async () => {
  await create(committedTopic);
  await create(recreatedTopic);
  await create(restartedTopic);
  producer = await connectedProducer(testKafka());
  await producer.send({
    topic: committedTopic,
    messages: Array.from({ length: 20 }, (_, i) => ({ partition: 0, value: `c-${i}` })),
  });
  // The group has committed offset 15 of the name.
  const admin = client.admin();
  await admin.connect();
  try {
    await admin.alterGroupOffsets({
      groupId: `${prefix}g`,
      topics: [{ topic: committedTopic, partitions: [{ partition: 0, offset: '15' }] }],
    });
  } finally {
    await admin.disconnect();
  }
});

afterAll(async () => {
  await Promise.all(fetchers.map((f) => f.stop()));
  await Promise.all(members.map((m) => m.close().catch(() => undefined)));
  await Promise.all(consumers.map((c) => c.close(true).catch(() => undefined)));
  await producer?.disconnect();
  const admin = testKafka().admin();
  await admin.connect();
  await admin
    .deleteTopics({ topics: [committedTopic, recreatedTopic, restartedTopic] })
    .catch(() => undefined);
  await admin.disconnect();
});

describe('a topic deleted and created again', () => {
  it('starts from the committed offset a topic its lane has read under the same id, or never read', async () => {
    const id = await topicId(committedTopic);
    for (const known of [new Map<string, string>(), new Map([[committedTopic, id]])]) {
      const { fetcher, got, restarted } = fetcherOf(`${prefix}g`, known);
      fetcher.add([{ topic: committedTopic, partition: 0 }]);
      fetcher.start();
      await eventually(() => got.length >= 5, 10_000, 'the records past the committed offset');
      expect(got.map((r) => r.offset)).toEqual([15n, 16n, 17n, 18n, 19n]);
      expect(restarted).toEqual([]);
      expect(known.get(committedTopic)).toBe(id);
      await fetcher.stop();
    }
  });

  it("starts from the log start a topic its lane read under another id: the committed offset may be the deleted topic's", async () => {
    const known = new Map([[committedTopic, 'the-deleted-topic-id']]);
    const { fetcher, got, restarted } = fetcherOf(`${prefix}g`, known);
    fetcher.add([{ topic: committedTopic, partition: 0 }]);
    fetcher.start();
    await eventually(() => got.length >= 20, 10_000, 'every record of the topic');
    expect(got.map((r) => r.offset)).toEqual(Array.from({ length: 20 }, (_, i) => BigInt(i)));
    expect(restarted).toEqual([[committedTopic, 0, 15n, 0n]]);
    expect(known.get(committedTopic)).toBe(await topicId(committedTopic));
    await fetcher.stop();
  });

  it('stops fetching a topic created again while it reads it, and says so', async () => {
    await producer.send({
      topic: recreatedTopic,
      messages: Array.from({ length: 5 }, (_, i) => ({ partition: 0, value: `old-${i}` })),
    });
    const before = await topicId(recreatedTopic);
    const known = new Map<string, string>();
    const { fetcher, got, recreated } = fetcherOf(`${prefix}r`, known);
    fetcher.add([{ topic: recreatedTopic, partition: 0 }]);
    fetcher.start();
    await eventually(() => got.length >= 5, 10_000, "the first topic's records");

    const admin = testKafka().admin();
    await admin.connect();
    await admin.deleteTopics({ topics: [recreatedTopic] });
    await admin.disconnect();
    await eventually(
      async () => {
        try {
          await create(recreatedTopic);
          return true;
        } catch {
          return false;
        }
      },
      30_000,
      'the topic created again',
    );
    // More records than the deleted topic had: read from the old position, the first five would be lost.
    await producer.send({
      topic: recreatedTopic,
      messages: Array.from({ length: 8 }, (_, i) => ({ partition: 0, value: `new-${i}` })),
    });
    const now = await topicId(recreatedTopic);
    expect(now).not.toBe(before);
    await eventually(() => recreated.length > 0, 20_000, 'the fetcher to notice');
    expect(recreated[0]).toEqual([recreatedTopic, before, now]);
    // None of the new topic's records handed over at the deleted topic's position.
    expect(got.filter((r) => r.value?.toString().startsWith('new-'))).toEqual([]);
    // The lane's next member reads the new topic from its start: its id is not taken as known.
    expect(known.get(recreatedTopic)).toBe(before);
    await fetcher.stop();
  });

  it('commits carry the id of the topic their records were read from', async () => {
    const group = `${prefix}tagged`;
    const { member, got } = await memberOf(group, committedTopic);
    await eventually(() => got.length >= 20, 20_000, "the topic's records");
    await member.commit([{ topic: committedTopic, partition: 0, offset: '17' }]);
    expect(await committedOf(group, committedTopic)).toEqual({
      offset: 17n,
      metadata: commitMetadataOf(await topicId(committedTopic)),
    });
    await member.close();
  });

  it("starts from the log start an offset committed with the deleted topic's id, in a process that has read nothing", async () => {
    const group = `${prefix}after`;
    await send(restartedTopic, values('old', 20));
    const deleted = await topicId(restartedTopic);
    await recreate(restartedTopic);
    await send(restartedTopic, values('new', 30));
    const now = await topicId(restartedTopic);
    expect(now).not.toBe(deleted);
    // A commit of the deleted topic's last moments, landed on the new topic's name (the broker drops a
    // deleted topic's offsets, but not those committed after it was created again).
    await commitTagged(group, restartedTopic, 15n, deleted);

    // Taken as it was, records 0 to 14 of the new topic were never read.
    const second = fetcherOf(group, new Map());
    second.fetcher.add([{ topic: restartedTopic, partition: 0 }]);
    second.fetcher.start();
    await eventually(() => second.got.length >= 30, 10_000, 'every record of the new topic');
    expect(second.got.map((r) => r.value?.toString())).toEqual(values('new', 30));
    expect(second.restarted).toEqual([[restartedTopic, 0, 15n, 0n]]);
    await second.fetcher.stop();

    // An offset tagged with the topic's own id is taken.
    await commitTagged(group, restartedTopic, 25n, now);
    const third = fetcherOf(group, new Map());
    third.fetcher.add([{ topic: restartedTopic, partition: 0 }]);
    third.fetcher.start();
    await eventually(() => third.got.length >= 5, 10_000, 'the records past the committed offset');
    expect(third.got.map((r) => r.offset)).toEqual([25n, 26n, 27n, 28n, 29n]);
    expect(third.restarted).toEqual([]);
    await third.fetcher.stop();
  });
});
