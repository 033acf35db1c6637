// Contract edges through Kafka, from a headerless producer (kcat style: the body's correlation_id) and a
// NestJS-style one (kafka_correlationId header, reply topic and decimal partition): an upper-case
// pattern_id is applied, not answered INTERNAL; a correlation id reused with a different request gets
// CONFLICT and a dead letter, while the same request again is a duplicate.
import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { ModelResult } from '../../src/contracts/results.ts';
import { KafkaClient } from '../../src/messaging/kafka/client.ts';
import { createTopicsAndWait } from '../../src/messaging/kafka/topic-admin.ts';
import { brokers, Collector, type CollectedMessage } from '../support/kafka.ts';
import { createStack, type Stack } from '../support/stack.ts';

vi.setConfig({ testTimeout: 60_000 });

const pattern = (name: string, extra: Record<string, unknown> = {}) => ({
  pattern_name: name,
  pattern_type: 'code',
  language: 'go',
  ...extra,
});
const resultOf = (m: CollectedMessage) => m.json<ModelResult<Record<string, unknown>>>();

describe('contract edges through Kafka', () => {
  let stack: Stack;
  const replyTopic = `replies-${randomBytes(4).toString('hex')}`;
  beforeAll(async () => {
    stack = await createStack({ extraTopics: [replyTopic] });
    // The reply topics of this file are outside the worker's prefix: allowed explicitly.
    await stack.worker({ WORKER_REPLY_TOPICS: 'replies-*' });
  });
  afterAll(async () => stack.close());

  // One key, so the three requests of a client land in one partition and keep their order.
  const insert = (value: unknown, headers?: Record<string, string>) =>
    stack.producer.send({
      topic: stack.names.request('pattern.insert'),
      messages: [{ key: 'edges', value: JSON.stringify(value), ...(headers ? { headers } : {}) }],
    });

  it('applies an upper-case pattern_id from a headerless producer and from NestJS', async () => {
    const [a, b] = [randomUUID(), randomUUID()];
    const cid = randomUUID();
    await insert({ correlation_id: cid, data: pattern('UpperKcat', { pattern_id: a.toUpperCase() }) });
    const nestId = `nest-${randomUUID()}`;
    await insert(
      { data: pattern('UpperNest', { pattern_id: b.toUpperCase() }) },
      { kafka_correlationId: nestId, kafka_replyTopic: replyTopic, kafka_replyPartition: '0' },
    );
    const [kcat] = await stack.results
      .waitFor(
        (all) =>
          all.some(
            (m) => m.topic.endsWith('pattern.insert.result') && resultOf(m).metadata.correlation_id === cid,
          ),
        20_000,
      )
      .then((all) =>
        all.filter(
          (m) => m.topic.endsWith('pattern.insert.result') && resultOf(m).metadata.correlation_id === cid,
        ),
      );
    expect(resultOf(kcat as CollectedMessage)).toMatchObject({ success: true, data: { pattern_id: a } });
    const [nest] = await stack.results.waitForCount(replyTopic, 1);
    expect(nest?.headers.kafka_correlationId?.toString()).toBe(nestId);
    expect(resultOf(nest as CollectedMessage)).toMatchObject({ success: true, data: { pattern_id: b } });
  });

  it('refuses a correlation id reused with a different request, from both kinds of producer', async () => {
    const cid = randomUUID();
    const nestId = `nest-${randomUUID()}`;
    const nest = { kafka_correlationId: nestId, kafka_replyTopic: replyTopic, kafka_replyPartition: '1' };
    await insert({ correlation_id: cid, data: pattern('ReuseKcatA') });
    await insert({ correlation_id: cid, data: pattern('ReuseKcatA') });
    await insert({ correlation_id: cid, data: pattern('ReuseKcatB') });
    await insert({ data: pattern('ReuseNestA') }, nest);
    await insert({ data: pattern('ReuseNestA') }, nest);
    await insert({ data: pattern('ReuseNestB') }, nest);

    const byCid = (all: CollectedMessage[]) =>
      all.filter(
        (m) =>
          m.topic === stack.names.result('pattern.insert') && resultOf(m).metadata.correlation_id === cid,
      );
    const kcat = byCid(
      await stack.results.waitFor((all) => byCid(all).length >= 3, 30_000, 'three kcat results'),
    );
    const replies = (
      await stack.results.waitFor(
        (all) =>
          all.filter((m) => m.topic === replyTopic && m.headers.kafka_correlationId?.toString() === nestId)
            .length >= 3,
        30_000,
        'three NestJS replies',
      )
    ).filter((m) => m.topic === replyTopic && m.headers.kafka_correlationId?.toString() === nestId);
    for (const results of [kcat, replies]) {
      const parsed = results.map(resultOf);
      expect(parsed.map((r) => [r.success, r.metadata.duplicate ?? false, r.error?.code ?? null])).toEqual([
        [true, false, null],
        [true, true, null],
        [false, false, 'CONFLICT'],
      ]);
      expect(parsed[2]?.error?.details).toMatchObject({ reason: 'correlation_id_reused' });
    }
    const dead = await stack.results.waitFor(
      (all) => all.filter((m) => m.topic === stack.names.dlq('pattern.insert')).length >= 2,
      20_000,
      'two dead letters',
    );
    const codes = dead
      .filter((m) => m.topic === stack.names.dlq('pattern.insert'))
      .map((m) => m.headers['kafka_dlt-exception-fqcn']?.toString());
    expect(codes).toEqual(['CONFLICT', 'CONFLICT']);
    const { rows } = await stack.db.pool.query<{ pattern_name: string }>(
      "SELECT pattern_name FROM pattern_templates WHERE pattern_name LIKE 'Reuse%' ORDER BY pattern_name",
    );
    expect(rows.map((r) => r.pattern_name)).toEqual(['ReuseKcatA', 'ReuseNestA']);
  });

  it('answers on a reply topic its client created just before the request', async () => {
    const refusedId = `nest-${randomUUID()}`;
    // A request naming a topic that does not exist: the worker lists the cluster's topics to refuse it.
    await insert(
      { data: pattern('NoReplyTopic') },
      { kafka_correlationId: refusedId, kafka_replyTopic: `replies-${randomBytes(4).toString('hex')}` },
    );
    await stack.results.waitFor(
      (all) =>
        all.some(
          (m) =>
            m.topic === stack.names.result('pattern.insert') &&
            m.headers.kafka_correlationId?.toString() === refusedId,
        ),
      20_000,
      'the refusal',
    );
    // Within the second after that listing, a client creates its reply topic and sends its request.
    const created = `replies-${randomBytes(4).toString('hex')}`;
    const admin = new KafkaClient('contract-edges', { brokers: brokers() }).admin();
    await admin.connect();
    await createTopicsAndWait(admin, [{ topic: created, numPartitions: 1 }]);
    await admin.disconnect();
    const id = `nest-${randomUUID()}`;
    await insert({ data: pattern('NewReplyTopic') }, { kafka_correlationId: id, kafka_replyTopic: created });
    const replies = await new Collector(stack.kafka, [created]).start();
    try {
      const [reply] = await replies.waitForCount(created, 1, 20_000);
      expect(reply?.headers.kafka_correlationId?.toString()).toBe(id);
      expect(resultOf(reply as CollectedMessage)).toMatchObject({ success: true });
    } finally {
      await replies.stop();
    }
  });

  it('answers on a partition just added to a reply topic, not refusing the write', async () => {
    // The partition count was cached for a minute: 6 of 8 writes asking for a new partition within it
    // were refused and dead-lettered in the audit's run.
    const grown = `replies-${randomBytes(4).toString('hex')}`;
    const admin = new KafkaClient('contract-edges', { brokers: brokers() }).admin();
    await admin.connect();
    await createTopicsAndWait(admin, [{ topic: grown, numPartitions: 2 }]);
    await admin.disconnect();
    const replies = await new Collector(stack.kafka, [grown]).start();
    try {
      const first = `nest-${randomUUID()}`;
      await insert(
        { data: pattern('BeforeGrowth') },
        { kafka_correlationId: first, kafka_replyTopic: grown, kafka_replyPartition: '1' },
      );
      await replies.waitForCount(grown, 1, 20_000);
      const kafkajsAdmin = stack.kafka.admin();
      await kafkajsAdmin.connect();
      await kafkajsAdmin.createPartitions({ topicPartitions: [{ topic: grown, count: 6 }] });
      await kafkajsAdmin.disconnect();
      const id = `nest-${randomUUID()}`;
      await insert(
        { data: pattern('AfterGrowth') },
        { kafka_correlationId: id, kafka_replyTopic: grown, kafka_replyPartition: '5' },
      );
      // A collector started now sees the new partitions.
      const after = await new Collector(stack.kafka, [grown]).start();
      try {
        const answered = await after.waitFor(
          (all) => all.some((m) => m.headers.kafka_correlationId?.toString() === id),
          20_000,
          'the reply on the new partition',
        );
        const reply = answered.find((m) => m.headers.kafka_correlationId?.toString() === id);
        expect(reply?.partition).toBe(5);
        expect(resultOf(reply as CollectedMessage)).toMatchObject({ success: true });
      } finally {
        await after.stop();
      }
    } finally {
      await replies.stop();
    }
  });

  it('lets a redrive take only the identity of a message already dead-lettered, not of one to come', async () => {
    const topic = stack.names.request('pattern.insert');
    const source = (m: CollectedMessage) => resultOf(m).metadata.source;
    const resultAt = (partition: number, offset: string) =>
      stack.results
        .waitFor(
          (all) =>
            all.some(
              (m) =>
                m.topic === stack.names.result('pattern.insert') &&
                source(m)?.partition === partition &&
                source(m)?.offset === offset,
            ),
          20_000,
          `the result of ${topic}/${partition}/${offset}`,
        )
        .then((all) =>
          resultOf(
            all.find(
              (m) =>
                m.topic === stack.names.result('pattern.insert') &&
                source(m)?.partition === partition &&
                source(m)?.offset === offset,
            ) as CollectedMessage,
          ),
        );
    const sendAt = async (partition: number, value: unknown, headers?: Record<string, string>) => {
      const [sent] = await stack.producer.send({
        topic,
        acks: -1,
        messages: [{ partition, value: JSON.stringify(value), ...(headers ? { headers } : {}) }],
      });
      return String(sent?.baseOffset);
    };
    // Without correlation ids, identities are coordinates. The forger names the next offset of partition 1.
    const admin = stack.kafka.admin();
    await admin.connect();
    const next = (await admin.fetchTopicOffsets(topic)).find((p) => p.partition === 1)?.high as string;
    await admin.disconnect();
    const forged = await sendAt(
      0,
      { data: pattern('ForgedRedrive') },
      {
        'pattern-redrive-of': `${topic}/1/${next}`,
      },
    );
    const refused = await resultAt(0, forged);
    expect(refused.error).toMatchObject({
      code: 'VALIDATION_ERROR',
      details: { field: 'pattern-redrive-of', original: `${topic}/1/${next}` },
    });
    // The message it named is applied as itself when it comes.
    expect(await sendAt(1, { data: pattern('NamedByForger') })).toBe(next);
    expect(await resultAt(1, next)).toMatchObject({ success: true });

    // A real redrive, sent as soon as its original's dead letter is seen, takes the original's identity:
    // applied once, however often it is redriven. A forger who named the settled original first, with
    // another request, is applied as any request is, and does not take the real redrive's place (before,
    // the real one was a CONFLICT however often it was redriven).
    const reused = pattern('RedrivenFix', { pattern_id: 'not-a-uuid' });
    const original = await sendAt(2, { data: reused });
    expect((await resultAt(2, original)).error?.code).toBe('VALIDATION_ERROR');
    const fixed = { data: pattern('RedrivenFix') };
    const redrive = { 'pattern-redrive-of': `${topic}/2/${original}` };
    const squatter = await resultAt(2, await sendAt(2, { data: pattern('SettledForger') }, redrive));
    expect(squatter).toMatchObject({ success: true });
    const first = await resultAt(0, await sendAt(0, fixed, redrive));
    const second = await resultAt(1, await sendAt(1, fixed, redrive));
    expect(first).toMatchObject({ success: true });
    expect(first.metadata.duplicate).toBeUndefined();
    expect(second).toMatchObject({ success: true, metadata: { duplicate: true } });
    const { rows } = await stack.db.pool.query<{ pattern_name: string }>(
      "SELECT pattern_name FROM pattern_templates WHERE pattern_name IN ('ForgedRedrive', 'NamedByForger', 'RedrivenFix', 'SettledForger') ORDER BY 1",
    );
    expect(rows.map((r) => r.pattern_name)).toEqual(['NamedByForger', 'RedrivenFix', 'SettledForger']);
  });

  it('answers other callers once when a reply topic a request names refuses its record', async () => {
    // A compacted topic refuses records without a key; anyone may name it as a reply topic.
    const compacted = `replies-${randomBytes(4).toString('hex')}`;
    const victims = `replies-${randomBytes(4).toString('hex')}`;
    const admin = new KafkaClient('contract-edges', { brokers: brokers() }).admin();
    await admin.connect();
    await createTopicsAndWait(admin, [
      { topic: compacted, numPartitions: 3, configEntries: [{ name: 'cleanup.policy', value: 'compact' }] },
      { topic: victims, numPartitions: 3 },
    ]);
    await admin.disconnect();
    const replies = await new Collector(stack.kafka, [victims]).start();
    try {
      const ids = Array.from({ length: 400 }, (_, i) => `victim-${i}`);
      const search = { operation: 'search', search_query: 'edges' };
      const messages = ids.flatMap((id, i) => {
        const victim = {
          value: JSON.stringify(search),
          headers: { kafka_correlationId: id, kafka_replyTopic: victims },
        };
        const hostile = { value: JSON.stringify(search), headers: { kafka_replyTopic: compacted } };
        return i % 20 === 0 ? [victim, hostile] : [victim];
      });
      await stack.producer.send({ topic: stack.names.request('pattern.search.request'), messages });
      await replies.waitForCount(victims, ids.length, 60_000);
      // Anything sent twice would have come within this.
      await new Promise((r) => setTimeout(r, 2_000));
      const counts = new Map<string, number>();
      for (const m of replies.on(victims)) {
        const id = m.headers.kafka_correlationId?.toString() ?? '';
        counts.set(id, (counts.get(id) ?? 0) + 1);
      }
      expect(counts.size).toBe(ids.length);
      expect([...counts].filter(([, n]) => n > 1)).toEqual([]);
    } finally {
      await replies.stop();
    }
  });
});
