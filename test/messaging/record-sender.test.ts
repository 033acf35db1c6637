// KafkaRecordSender against the real broker, read back with kafkajs as an independent client: records in
// order, on the partitions Java's producer (and kafkajs's default) would pick, bytes and repeated headers
// unchanged; a record too large for its topic refused for good (and, through the publisher, replaced
// while the records around it go on); a missing topic a retriable failure within the send's deadline.
import { createRequire } from 'node:module';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  murmur2 as libraryMurmur2,
  MultipleErrors,
  NetworkError,
  ProtocolError,
  ResponseError,
  UserError,
} from '@platformatic/kafka';
import type { Admin, Kafka } from 'kafkajs';
import { KafkaClient } from '../../src/messaging/kafka/client.ts';
import {
  describeSendError,
  isRefusal,
  javaPartitioner,
  KafkaRecordSender,
  murmur2,
} from '../../src/messaging/kafka/record-sender.ts';
import { SendError } from '../../src/messaging/engine/ports.ts';
import { Lifecycle } from '../../src/messaging/engine/lifecycle.ts';
import { OrderedPublisher } from '../../src/messaging/engine/publisher.ts';
import type { OutboundRecord } from '../../src/messaging/engine/records.ts';
import { createLogger } from '../../src/telemetry/logger.ts';
import { brokers, Collector, testKafka, uniquePrefix } from '../support/kafka.ts';

const require = createRequire(import.meta.url);
/** kafkajs's own murmur2 (its default partitioner, Java's): an implementation independent of the library's. */
const kafkajsMurmur2 = require('kafkajs/src/producer/partitioners/default/murmur2') as (
  key: Buffer,
) => number;
const javaPartition = (key: Buffer, partitions: number) => (kafkajsMurmur2(key) & 0x7fffffff) % partitions;

const logger = createLogger('silent');
const client = new KafkaClient('record-sender-test', { brokers: brokers() });

describe('isRefusal and describeSendError', () => {
  const tooLarge = () =>
    new MultipleErrors('Producing messages failed.', [
      new ResponseError(0, 11, { '/responses/0/partitionResponses/0': [10, null] }, {}),
    ]);

  it('finds a refusal anywhere in the chain, and says what the broker said', () => {
    expect(isRefusal(tooLarge())).toBe(true);
    expect(describeSendError(tooLarge())).toMatch(/^MESSAGE_TOO_LARGE: .*larger than/);
    for (const id of [
      'RECORD_LIST_TOO_LARGE',
      'INVALID_RECORD',
      'TOPIC_AUTHORIZATION_FAILED',
      'POLICY_VIOLATION',
    ]) {
      expect(isRefusal(new MultipleErrors('produce failed 1 times.', [new ProtocolError(id)])), id).toBe(
        true,
      );
    }
    const wrapped = new MultipleErrors('outer', [
      new UserError('x', { cause: new ProtocolError('MESSAGE_TOO_LARGE') }),
    ]);
    expect(isRefusal(wrapped)).toBe(true);
  });

  it('takes retriable answers, network failures, a missing topic and a closed client as transient', () => {
    expect(
      isRefusal(new MultipleErrors('produce failed 9 times.', [new ProtocolError('NOT_LEADER_OR_FOLLOWER')])),
    ).toBe(false);
    const refused = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    expect(isRefusal(new NetworkError('Connection to 127.0.0.1:1 failed.', { cause: refused }))).toBe(false);
    expect(isRefusal(new UserError('Unknown topic t.missing.'))).toBe(false);
    expect(isRefusal(new NetworkError('Client is closed.', { canRetry: false, closed: true }))).toBe(false);
    expect(isRefusal(new MultipleErrors('x', [new UserError('Client closed while retrying produce.')]))).toBe(
      false,
    );
  });

  it('takes an error that is not the library’s own (it failing on a value) and a rejected message as refusals', () => {
    expect(isRefusal(new TypeError('bad value'))).toBe(true);
    expect(isRefusal(new UserError('Failed to serialize a message.', { cause: new TypeError('x') }))).toBe(
      true,
    );
  });
});

describe('javaPartitioner', () => {
  it('puts a key where Java’s producer does (the library’s default differs for negative hashes)', () => {
    const partition = javaPartitioner();
    let differs = 0;
    for (let i = 0; i < 2000; i++) {
      const key = randomBytes(i % 37);
      expect(murmur2(key)).toBe(kafkajsMurmur2(key));
      expect(murmur2(key)).toBe(libraryMurmur2(key));
      const ours = partition({ topic: 't', key }, key, { metadata: undefined }) % 3;
      expect(ours).toBe(javaPartition(key, 3));
      if (ours !== (libraryMurmur2(key) >>> 0) % 3) differs++;
    }
    expect(differs).toBeGreaterThan(0);
  });

  it('gives the hashes of Kafka’s own murmur2 test (UtilsTest)', () => {
    const cases: [string, number][] = [
      ['21', -973932308],
      ['foobar', -790332482],
      ['a-little-bit-long-string', -985981536],
      ['a-little-bit-longer-string', -1486304829],
      ['lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', -58897971],
      ['abc', 479470107],
    ];
    for (const [key, hash] of cases) expect(murmur2(Buffer.from(key)), key).toBe(hash);
  });

  it('hashes a large key in linear time', () => {
    const key = randomBytes(1024 * 1024);
    const started = performance.now();
    murmur2(key);
    expect(performance.now() - started).toBeLessThan(200);
    const medium = randomBytes(4099);
    expect(murmur2(medium)).toBe(kafkajsMurmur2(medium));
  });

  it('spreads records without a key round-robin', () => {
    const partition = javaPartitioner();
    const seen = new Set(
      Array.from({ length: 6 }, () => partition({ topic: 't' }, undefined, { metadata: undefined }) % 3),
    );
    expect(seen.size).toBe(3);
  });
});

describe('KafkaRecordSender against the broker', () => {
  let kafka: Kafka;
  let admin: Admin;
  let collector: Collector;
  const prefix = uniquePrefix();
  const topic = `${prefix}out`;
  const small = `${prefix}small`;

  beforeAll(async () => {
    kafka = testKafka();
    admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({
      waitForLeaders: true,
      topics: [
        { topic, numPartitions: 3 },
        { topic: small, numPartitions: 1, configEntries: [{ name: 'max.message.bytes', value: '2000' }] },
      ],
    });
    collector = await new Collector(kafka, [topic, small]).start();
  }, 60_000);

  afterAll(async () => {
    await collector?.stop();
    await admin?.disconnect();
  });

  it('sends in order, keyed records on Java’s partitions, bytes and repeated headers unchanged', async () => {
    const sender = new KafkaRecordSender(client, logger);
    await sender.connect();
    try {
      const records: OutboundRecord[] = Array.from({ length: 300 }, (_, i) => ({
        topic,
        key: `key-${i % 17}`,
        value: `${i}`,
        headers: {},
      }));
      // In several sends, as the publisher makes them.
      for (let i = 0; i < records.length; i += 100) await sender.send(records.slice(i, i + 100));
      const opaque = Buffer.from([0xff, 0x00, 0xfe, 0x80]);
      await sender.send([
        {
          topic,
          partition: 2,
          key: 'ключ',
          value: opaque,
          headers: {
            kafka_correlationId: [Buffer.from('first'), 'second', Buffer.from('third')],
            'content-type': 'application/json',
            'x-text': 'é€',
            'x-bytes': opaque,
          },
        },
        { topic, partition: 1, key: null, value: null, headers: {} },
      ]);

      const got = await collector.waitForCount(topic, 302);
      for (let k = 0; k < 17; k++) {
        const key = `key-${k}`;
        const mine = got.filter((m) => m.key?.toString() === key);
        expect(mine.map((m) => Number(m.value?.toString()))).toEqual(
          records.map((r, i) => (r.key === key ? i : -1)).filter((i) => i >= 0),
        );
        expect(new Set(mine.map((m) => m.partition))).toEqual(new Set([javaPartition(Buffer.from(key), 3)]));
      }
      const special = got.find((m) => m.key?.equals(Buffer.from('ключ', 'utf8')));
      expect(special?.partition).toBe(2);
      expect(special?.value).toEqual(opaque);
      // kafkajs collects a repeated header into an array, in the order it came; names in order of first sight.
      expect(Object.keys(special?.headers ?? {})).toEqual([
        'kafka_correlationId',
        'content-type',
        'x-text',
        'x-bytes',
      ]);
      expect((special?.headers.kafka_correlationId as Buffer[]).map(String)).toEqual([
        'first',
        'second',
        'third',
      ]);
      expect(special?.headers['x-text']).toEqual(Buffer.from('é€', 'utf8'));
      expect(special?.headers['x-bytes']).toEqual(opaque);
      const tombstone = got.find((m) => m.key === null);
      expect(tombstone?.partition).toBe(1);
      expect(tombstone?.value).toBeNull();
    } finally {
      await sender.disconnect();
    }
  });

  it('refuses a record too large for its topic for good, and sends on afterwards', async () => {
    const sender = new KafkaRecordSender(client, logger);
    await sender.connect();
    try {
      const err = await sender
        .send([{ topic: small, key: 'k', value: Buffer.alloc(5000), headers: {} }])
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      expect(err).toBeInstanceOf(SendError);
      expect((err as SendError).refused).toBe(true);
      expect((err as SendError).message).toMatch(/MESSAGE_TOO_LARGE|RECORD_LIST_TOO_LARGE/);
      await sender.send([{ topic: small, key: 'k', value: 'fits', headers: {} }]);
      await collector.waitFor((all) => all.some((m) => m.topic === small && m.value?.toString() === 'fits'));
    } finally {
      await sender.disconnect();
    }
  });

  it('through the publisher: the refused record alone is replaced, the ones around it arrive in order', async () => {
    const sender = new KafkaRecordSender(client, logger);
    await sender.connect();
    const publisher = new OrderedPublisher({
      sender,
      check: () => undefined,
      lane: 'test',
      lifecycle: new Lifecycle(),
      backoff: { initialMs: 10, maxMs: 50 },
      logger,
    });
    try {
      const rec = (value: string | Buffer): OutboundRecord => ({
        topic: small,
        key: 'split',
        value,
        headers: {},
        ifRefused: (reason) => [
          { topic: small, key: 'split', value: `replaced: ${reason.slice(0, 40)}`, headers: {} },
        ],
      });
      await publisher.publish([rec('a'), rec('b'), rec(Buffer.alloc(5000, 0x41)), rec('c'), rec('d')]);
      const got = await collector.waitFor(
        (all) => all.filter((m) => m.topic === small && m.key?.toString() === 'split').length >= 5,
      );
      const values = got
        .filter((m) => m.topic === small && m.key?.toString() === 'split')
        .map((m) => m.value?.toString() ?? '');
      expect(values.slice(0, 2)).toEqual(['a', 'b']);
      expect(values[2]).toMatch(/^replaced: MESSAGE_TOO_LARGE|^replaced: RECORD_LIST_TOO_LARGE/);
      expect(values.slice(3)).toEqual(['c', 'd']);
    } finally {
      publisher.close();
      await sender.disconnect();
    }
  });

  it('rejects a send to a missing topic within the deadline, retriable and naming the topic', async () => {
    const sender = new KafkaRecordSender(client, logger, { deadlineMs: 1000 });
    await sender.connect();
    try {
      const missing = `${prefix}missing`;
      const started = Date.now();
      const err = await sender.send([{ topic: missing, key: 'k', value: 'v', headers: {} }]).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(Date.now() - started).toBeLessThan(1000 + 500);
      expect(err).toBeInstanceOf(SendError);
      expect((err as SendError).refused).toBe(false);
      expect((err as SendError).message).toContain(missing);
      // The sender goes on (on a new producer) for a topic that exists.
      await sender.send([{ topic, key: 'after', value: 'after-missing', headers: {} }]);
      await collector.waitFor((all) => all.some((m) => m.value?.toString() === 'after-missing'));
    } finally {
      await sender.disconnect();
    }
  });

  it('takes the library’s own answer for a missing topic (before the deadline) as retriable too', async () => {
    const sender = new KafkaRecordSender(client, logger, { deadlineMs: 20_000 });
    try {
      const missing = `${prefix}missing-2`;
      const err = await sender.send([{ topic: missing, key: 'k', value: 'v', headers: {} }]).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(SendError);
      expect((err as SendError).refused).toBe(false);
      expect((err as SendError).message).toContain(missing);
    } finally {
      await sender.disconnect();
    }
  });

  it('refuses a header value that is neither bytes, text nor null, and a negative partition, before sending', async () => {
    const sender = new KafkaRecordSender(client, logger);
    try {
      const err = await sender
        .send([{ topic, key: 'k', value: 'v', headers: { bad: 42 as unknown as string } }])
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      expect(err).toBeInstanceOf(SendError);
      expect((err as SendError).refused).toBe(true);
      expect((err as SendError).message).toContain('"bad"');
      const negative = await sender.send([{ topic, partition: -1, key: 'k', value: 'v', headers: {} }]).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect((negative as SendError).refused).toBe(true);
    } finally {
      await sender.disconnect();
    }
  });
});
