// `patterns dlq redrive` over a flood of dead letters, against the real broker: 40,000 of them, redriven by
// the command line with half the image's heap (it held every selected dead letter whole, and ran out of
// memory with these at the image's 128 MB), each sent back once, those of one key in the order they were dead-lettered.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { IHeaders } from 'kafkajs';
import { TopicNames } from '../../src/contracts/topics.ts';
import { KafkaClient } from '../../src/messaging/kafka/client.ts';
import { createTopics } from '../../src/messaging/kafka/topic-admin.ts';
import { deadLetterRecord } from '../../src/messaging/stages/encode.ts';
import { headerEntries } from '../../src/messaging/engine/records.ts';
import { patterns } from '../support/cli.ts';
import { eventually } from '../support/faults.ts';
import { brokers, Collector, connectedProducer, testKafka, uniquePrefix } from '../support/kafka.ts';

vi.setConfig({ testTimeout: 120_000 });

const LETTERS = 40_000;
const KEYS = 40;

describe('patterns dlq redrive of a flood', () => {
  const names = new TopicNames(uniquePrefix());
  const kafka = testKafka();
  const usage = names.request('pattern.usage');

  beforeAll(async () => {
    const admin = new KafkaClient('pattern-worker-test', { brokers: brokers() }).admin();
    await admin.connect();
    try {
      await createTopics(admin, names, {
        requestPartitions: 3,
        resultPartitions: 1,
        dlqPartitions: 2,
        replicationFactor: 1,
        replyPartitions: 1,
      });
    } finally {
      await admin.disconnect();
    }
    // Dead letters as the worker writes them (deadLetterRecord): usage events of a pattern that did not
    // exist, KEYS keys taking turns, each letter's place among its key's in its value.
    const producer = await connectedProducer(kafka);
    try {
      for (let from = 0; from < LETTERS; from += 2_000) {
        const messages = Array.from({ length: 2_000 }, (_, j) => {
          const i = from + j;
          const key = `pattern-${i % KEYS}`;
          const record = deadLetterRecord({
            topic: names.dlq('pattern.usage'),
            request: {
              topic: usage,
              partition: i % 3,
              offset: String(i),
              timestamp: String(Date.now()),
              key: Buffer.from(key),
              value: Buffer.from(
                JSON.stringify({
                  operation: 'record_usage',
                  correlation_id: randomUUID(),
                  pattern_id: randomUUID(),
                  usage_data: { success: true, context: { seq: Math.floor(i / KEYS) } },
                }),
              ),
              headers: {},
            },
            error: { code: 'INVALID_REFERENCE', message: 'pattern does not exist' },
            consumerGroup: `${names.prefix}worker.writes`,
          });
          const headers: IHeaders = {};
          for (const [name, value] of headerEntries(record.headers)) {
            if (typeof name === 'string' && (typeof value === 'string' || Buffer.isBuffer(value)))
              headers[name] = value;
          }
          return { key, value: record.value, headers };
        });
        await producer.send({ topic: names.dlq('pattern.usage'), acks: -1, messages });
      }
    } finally {
      await producer.disconnect();
    }
  });

  afterAll(async () => {
    const admin = kafka.admin();
    await admin.connect();
    await admin.deleteTopics({ topics: names.all().map((t) => t.name) }).catch(() => undefined);
    await admin.disconnect();
  });

  it('sends every one back once, in bounded memory, each key in the order its letters were written', async () => {
    const env = {
      KAFKA_BROKERS: brokers().join(','),
      TOPIC_PREFIX: names.prefix,
      KAFKA_GROUP_ID: `${names.prefix}worker`,
      DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/unused',
      // Half the image's heap: the command held every letter and died at 128 MB with these 40,000.
      NODE_OPTIONS: '--max-old-space-size=64',
    };
    const run = await patterns(env, 'dlq', 'redrive', '--topic', 'pattern.usage', '--json');
    expect(run.code, run.stderr.slice(-2_000)).toBe(0);
    expect(JSON.parse(run.stdout)).toEqual({
      dry_run: false,
      redriven: LETTERS,
      selected: LETTERS,
      would_redrive: LETTERS,
      skipped: [],
      skipped_total: 0,
    });

    const collector = await new Collector(kafka, [usage]).start();
    try {
      await eventually(
        () => collector.messages.length >= LETTERS,
        60_000,
        'the redriven messages on the usage topic',
      );
      const next = new Map<string, number>();
      for (const m of collector.messages) {
        const key = m.key?.toString() ?? '';
        const seq = m.json<{ usage_data: { context: { seq: number } } }>().usage_data.context.seq;
        expect(seq, key).toBe(next.get(key) ?? 0);
        next.set(key, seq + 1);
        expect(m.headers['pattern-redrive-count']?.toString()).toBe('1');
      }
      expect(next.size).toBe(KEYS);
      expect([...next.values()].every((n) => n === LETTERS / KEYS)).toBe(true);
    } finally {
      await collector.stop();
    }
  });
});
