// Topic layout: what `patterns topics create` asks the broker for, checked on a real broker.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { MultipleErrors, ResponseError } from '@platformatic/kafka';
import { ConfigResourceTypes } from 'kafkajs';
import { TopicNames } from '../../src/contracts/topics.ts';
import { KafkaAdminError, type KafkaAdmin } from '../../src/messaging/kafka/admin.ts';
import { KafkaClient } from '../../src/messaging/kafka/client.ts';
import {
  createTopics,
  DLQ_MAX_MESSAGE_BYTES,
  missingTopics,
  whenServed,
} from '../../src/messaging/kafka/topic-admin.ts';
import { brokers, testKafka, uniquePrefix } from '../support/kafka.ts';

let admin: KafkaAdmin;
/** An independent client, to check what was created. */
const other = testKafka().admin();
const names = new TopicNames(uniquePrefix());
beforeAll(async () => {
  admin = new KafkaClient('pattern-worker-test', { brokers: brokers() }).admin();
  await admin.connect();
  await other.connect();
});
afterAll(async () => {
  await admin.disconnect();
  await other.disconnect();
});

it('creates every topic with its retention, dead letters that fit a request at the size limit, and the reply topic', async () => {
  expect(await missingTopics(admin, names)).toHaveLength(12);
  const created = await createTopics(admin, names, {
    requestPartitions: 2,
    resultPartitions: 2,
    dlqPartitions: 1,
    replicationFactor: 1,
    replyPartitions: 4,
  });
  expect(created).toContain(names.reply());
  expect(await missingTopics(admin, names)).toEqual([]);
  expect(await createTopics(admin, names)).toEqual([]); // idempotent
  const configOf = async (topic: string) => {
    const { resources } = await other.describeConfigs({
      includeSynonyms: false,
      resources: [{ type: ConfigResourceTypes.TOPIC, name: topic }],
    });
    return Object.fromEntries(resources[0]!.configEntries.map((e) => [e.configName, e.configValue]));
  };
  expect((await configOf(names.request('pattern.usage')))['retention.ms']).toBe('-1');
  expect((await configOf(names.result('pattern.usage')))['retention.ms']).toBe(String(7 * 86_400_000));
  const dlq = await configOf(names.dlq('pattern.usage'));
  expect(dlq['retention.ms']).toBe(String(30 * 86_400_000));
  expect(dlq['max.message.bytes']).toBe(String(DLQ_MAX_MESSAGE_BYTES));
  expect((await configOf(names.reply()))['retention.ms']).toBe('3600000');
  const metadata = await admin.fetchTopicMetadata({ topics: [names.reply()] });
  expect(metadata.topics[0]?.partitions).toHaveLength(4);
  expect(
    Object.fromEntries(
      (await other.fetchTopicMetadata({ topics: names.requests() })).topics.map((t) => [
        t.name,
        t.partitions.length,
      ]),
    ),
  ).toEqual(Object.fromEntries(names.requests().map((t) => [t, 2])));
  expect((await configOf(names.request('pattern.usage')))['message.timestamp.type']).toBe('LogAppendTime');
  await other.deleteTopics({ topics: [...names.all().map((t) => t.name), names.reply()] });
});

// The answers a KRaft broker gives for a moment after it creates a topic (seen in CI on a fresh broker).
const brokerError = (type: string) => new KafkaAdminError(`listing offsets failed: ${type}`, type);

it('waits out the broker catching up with a new topic, and gives up on anything else at once', async () => {
  const answers = ['UNKNOWN_TOPIC_OR_PARTITION', 'NOT_LEADER_OR_FOLLOWER', 'LEADER_NOT_AVAILABLE'];
  let calls = 0;
  const served = await whenServed(() => {
    const next = answers[calls++];
    return next ? Promise.reject(brokerError(next)) : Promise.resolve('offsets');
  }, 'topic t');
  expect([served, calls]).toEqual(['offsets', 4]);

  // As the client library throws them: the broker's error inside the library's chain of errors.
  calls = 0;
  const wrapped = () =>
    new MultipleErrors('listOffsets failed 1 times.', [
      new ResponseError(2, 9, { '/topics/0/partitions/0': [6, null] }, {}),
    ]);
  expect(
    await whenServed(() => (calls++ === 0 ? Promise.reject(wrapped()) : Promise.resolve('ok')), 't'),
  ).toBe('ok');

  calls = 0;
  await expect(
    whenServed(() => {
      calls++;
      return Promise.reject(brokerError('TOPIC_AUTHORIZATION_FAILED'));
    }, 'topic t'),
  ).rejects.toThrow('TOPIC_AUTHORIZATION_FAILED');
  expect(calls).toBe(1);

  await expect(
    whenServed(() => Promise.reject(brokerError('UNKNOWN_TOPIC_OR_PARTITION')), 'topic t', 250),
  ).rejects.toThrow(
    /timed out after 250 ms waiting for the broker to serve topic t \(UNKNOWN_TOPIC_OR_PARTITION\)/,
  );
});
