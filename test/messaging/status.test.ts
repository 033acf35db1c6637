// `patterns status` gathered from a real broker (operations/status.ts through KafkaAdmin): lane groups whose
// members use the KIP-848 protocol with their client id, host and partitions, committed offsets and lag,
// missing topics, a member still in the group of earlier versions, and the rendered tables.
import { randomUUID } from 'node:crypto';
import { Admin, Consumer } from '@platformatic/kafka';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { renderStatus } from '../../src/cli/commands/status.ts';
import { TopicNames } from '../../src/contracts/topics.ts';
import { KafkaClient } from '../../src/messaging/kafka/client.ts';
import { tagCommits } from '../../src/messaging/kafka/commit-tags.ts';
import { createTopics } from '../../src/messaging/kafka/topic-admin.ts';
import { gatherStatus, type WorkerStatus } from '../../src/messaging/operations/status.ts';
import { brokers, testKafka, uniquePrefix } from '../support/kafka.ts';
import { openTransaction } from '../support/poison/client.ts';

const prefix = uniquePrefix();
const names = new TopicNames(prefix);
const groupId = `${prefix}worker`;
const kafka = new KafkaClient('pattern-worker-test', { brokers: brokers() });
const kafkajs = testKafka();
const insert = names.request('pattern.insert');
const members: Consumer[] = [];

/** A lane member as the worker runs it: KIP-848 protocol, subscribed to the lane's topics. */
async function laneMember(lane: string, topics: string[]): Promise<void> {
  const consumer = new Consumer({
    clientId: `worker-${lane}`,
    bootstrapBrokers: brokers(),
    groupId: `${groupId}.${lane}`,
    groupProtocol: 'consumer',
    // The library checks it against its classic sessionTimeout (default 60 s), unused by this protocol.
    rebalanceTimeout: 60_000,
    autocommit: false,
  });
  consumer.on('error', () => undefined);
  members.push(consumer);
  const stream = await consumer.consume({ topics, autocommit: false, mode: 'latest' });
  stream.on('data', () => undefined);
}

const status = () => gatherStatus({ kafka, names, groupId, clientId: 'status-test' });

async function statusWhen(ok: (s: WorkerStatus) => boolean): Promise<WorkerStatus> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const s = await status();
    if (ok(s) || Date.now() > deadline) return s;
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
}

beforeAll(async () => {
  const admin = kafka.admin();
  await admin.connect();
  await createTopics(admin, names, {
    requestPartitions: 2,
    resultPartitions: 1,
    dlqPartitions: 1,
    replicationFactor: 1,
    replyPartitions: 1,
  });
  const producer = kafkajs.producer();
  await producer.connect();
  await producer.send({
    topic: insert,
    messages: [0, 1, 2, 3].map((i) => ({ partition: i % 2, value: `${i}` })),
  });
  await producer.disconnect();
  // The writes lane committed one record of partition 0.
  await admin.alterGroupOffsets({
    groupId: `${groupId}.writes`,
    topics: [{ topic: insert, partitions: [{ partition: 0, offset: '1' }] }],
  });
  await admin.disconnect();
});

afterAll(async () => {
  await Promise.all(members.map((m) => m.close(true).catch(() => undefined)));
  const admin = kafkajs.admin();
  await admin.connect();
  const mine = (await admin.listTopics()).filter((t) => t.startsWith(prefix));
  await admin.deleteTopics({ topics: mine }).catch(() => undefined);
  await admin.disconnect();
});

it('reports lane groups without members, the lag from committed offsets, and every topic', async () => {
  const s = await status();
  expect(s.groups.map((g) => [g.lane, g.id, g.members.length])).toEqual([
    ['writes', `${groupId}.writes`, 0],
    ['reads', `${groupId}.reads`, 0],
    ['analytics', `${groupId}.analytics`, 0],
  ]);
  expect(s.lag.filter((l) => l.topic === insert)).toEqual([
    { topic: insert, partition: 0, committed: '1', end: '2', lag: 1 },
    { topic: insert, partition: 1, committed: null, end: '2', lag: 2 },
  ]);
  expect(s.totalLag).toBe(3);
  expect(s.topics.every((t) => t.exists)).toBe(true);
  expect(s.deadLettersLastHour).toEqual({ total: 0, byCode: {} });
  expect(s.problems.filter((p) => /has no members/.test(p))).toHaveLength(3);
});

it('shows the members of KIP-848 lane groups with client id, host and partitions, and a member of the earlier group', async () => {
  await laneMember('writes', [insert, names.request('pattern.usage')]);
  await laneMember('reads', [names.request('pattern.search.request')]);
  const earlier = kafkajs.consumer({ groupId, maxWaitTimeInMs: 100 });
  await earlier.connect();
  try {
    await earlier.subscribe({ topics: [insert] });
    await earlier.run({ eachMessage: () => Promise.resolve() });
    const s = await statusWhen(
      (x) =>
        x.groups.find((g) => g.lane === 'writes')?.members[0]?.partitions[insert]?.length === 2 &&
        x.groups.find((g) => g.lane === 'reads')?.members.length === 1 &&
        x.problems.some((p) => p.includes('earlier worker versions')),
    );
    const writes = s.groups.find((g) => g.lane === 'writes');
    expect(writes?.state).toBe('Stable');
    expect(writes?.members).toHaveLength(1);
    expect(writes?.members[0]).toMatchObject({
      lane: 'writes',
      clientId: 'worker-writes',
      partitions: { [insert]: [0, 1], [names.request('pattern.usage')]: [0, 1] },
    });
    expect(writes?.members[0]?.host).toMatch(/127\.0\.0\.1/);
    expect(s.groups.find((g) => g.lane === 'reads')?.members[0]?.clientId).toBe('worker-reads');
    expect(s.problems).toEqual([
      `consumer group ${groupId}.analytics (lane analytics) has no members: no worker is running (is KAFKA_GROUP_ID right?)`,
      expect.stringMatching(
        new RegExp(`consumer group ${groupId} of earlier worker versions still has 1 member`),
      ),
    ]);
    const line = renderStatus(s)
      .split('\n')
      .find((l) => l.includes('worker-writes'));
    expect(line).toMatch(/│ writes +│ worker-writes +│ \S*127\.0\.0\.1 +│/);
    expect(line).toContain(`${insert}[0,1]`);
  } finally {
    await earlier.disconnect();
  }
});

it('notes a partition held by a transaction left open, with its offset and the records behind it', async () => {
  const usage = names.request('pattern.usage');
  const hostile = await openTransaction(brokers().join(','), usage, 'open', 60_000);
  try {
    const producer = kafkajs.producer();
    await producer.connect();
    await producer.send({ topic: usage, messages: [{ partition: 0, value: 'behind' }] });
    await producer.disconnect();
    const s = await status();
    expect(s.lag.find((l) => l.topic === usage && l.partition === 0)?.held).toEqual({ at: '0', records: 2 });
    expect(s.lag.find((l) => l.topic === usage && l.partition === 1)?.held).toBeUndefined();
    expect(renderStatus(s)).toContain(
      `note: ${usage}/0: 2 records are behind a transaction a producer opened at offset 0 and has not ended`,
    );
  } finally {
    hostile.kill('SIGKILL');
  }
});

it('names records deleted before the workers read them, and a committed offset past the end', async () => {
  // Counted as lag with no word before: 80 of 100 behind were gone, and an offset past the end showed 0.
  // The analytics lane's group has no members here: its offsets can be set.
  const search = names.request('pattern.analytics.compute');
  const producer = kafkajs.producer();
  await producer.connect();
  await producer.send({
    topic: search,
    messages: Array.from({ length: 6 }, (_, i) => ({ partition: 0, value: `${i}` })),
  });
  await producer.disconnect();
  const admin = kafka.admin();
  await admin.connect();
  await admin.alterGroupOffsets({
    groupId: `${groupId}.analytics`,
    topics: [
      {
        topic: search,
        partitions: [
          { partition: 0, offset: '1' },
          { partition: 1, offset: '10' },
        ],
      },
    ],
  });
  await admin.disconnect();
  const other = kafkajs.admin();
  await other.connect();
  await other.fetchTopicOffsets(search); // kafkajs deletes records only of topics whose metadata it has
  await other.deleteTopicRecords({ topic: search, partitions: [{ partition: 0, offset: '4' }] });
  await other.disconnect();
  const s = await statusWhen((x) => x.lag.some((l) => l.topic === search && l.deleted !== undefined));
  expect(s.lag.filter((l) => l.topic === search)).toEqual([
    {
      topic: search,
      partition: 0,
      committed: '1',
      end: '6',
      lag: 2,
      deleted: { from: '1', to: '4', records: 3 },
    },
    { topic: search, partition: 1, committed: '10', end: '0', lag: 0 },
  ]);
  expect(s.problems).toContain(
    `${search}/0: offsets 1 to 3 (3 messages) were deleted before the workers read them (retention.ms or ` +
      'retention.bytes shorter than the backlog, or kafka-delete-records): they will get no result and no ' +
      'dead letter',
  );
  expect(s.problems.some((p) => p.startsWith(`${search}/1: the committed offset 10 is past`))).toBe(true);
});

it('names an offset committed by a worker reading a topic of the name since deleted', async () => {
  // The analytics lane's group still has no members; partition 0 holds offsets 4 and 5, partition 1 none.
  const analytics = names.request('pattern.analytics.compute');
  const producer = kafkajs.producer();
  await producer.connect();
  await producer.send({
    topic: analytics,
    messages: Array.from({ length: 3 }, (_, i) => ({ partition: 1, value: `${i}` })),
  });
  await producer.disconnect();
  const metadata = kafka.admin();
  await metadata.connect();
  const [topic] = (await metadata.fetchTopicMetadata({ topics: [analytics] })).topics;
  await metadata.disconnect();
  const current = topic?.id ?? '';
  expect(current).toMatch(/^[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}$/);
  const deleted = randomUUID();
  const admin = new Admin(kafka.options('-tagged'));
  tagCommits(admin, {
    topicIdOf: (_topic, partition) => (partition === 1 ? deleted : current),
    onCommitted: () => undefined,
  });
  await admin.alterConsumerGroupOffsets({
    groupId: `${groupId}.analytics`,
    topics: [
      {
        name: analytics,
        partitionOffsets: [
          { partition: 0, offset: 5n },
          { partition: 1, offset: 2n },
        ],
      },
    ],
  });
  await admin.close();
  const s = await status();
  // Partition 1's offset is the deleted topic's: a worker started now reads all three records.
  expect(s.lag.filter((l) => l.topic === analytics)).toEqual([
    { topic: analytics, partition: 0, committed: '5', end: '6', lag: 1 },
    { topic: analytics, partition: 1, committed: null, end: '3', lag: 3 },
  ]);
  expect(s.problems).toContain(
    `${analytics}/1: the committed offset 2 was committed by a worker reading a topic of this name since ` +
      `deleted (topic id ${deleted}, now ${current}): a worker started now reads the partition from its ` +
      'log start, 0',
  );
});

it('names a missing topic', async () => {
  const admin = kafkajs.admin();
  await admin.connect();
  await admin.deleteTopics({ topics: [names.dlq('pattern.analytics.compute')] });
  await admin.disconnect();
  const s = await statusWhen((x) => x.topics.some((t) => !t.exists));
  expect(s.problems).toContain(
    `topic ${names.dlq('pattern.analytics.compute')} is missing (create it: patterns topics create)`,
  );
});
