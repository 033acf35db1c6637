// What the broker and its operators do under a running worker: records deleted below where a lane stands,
// a worker paused for longer than the group's session timeout, an input topic deleted and created again.
// Each must be said (a log line, a metric) or survived without stalling a lane, and nothing may be applied
// twice or lost.
import { randomUUID } from 'node:crypto';
import type { Admin } from 'kafkajs';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import type { ModelResult } from '../../src/contracts/results.ts';
import { createStackRetrying, eventually, recreateTopic, sendWhenAccepted } from '../support/faults.ts';
import type { Stack } from '../support/stack.ts';

vi.setConfig({ testTimeout: 180_000 });

let stack: Stack;
let admin: Admin;
beforeAll(async () => {
  stack = await createStackRetrying({ partitions: 2 });
  admin = stack.kafka.admin();
  await admin.connect();
});
afterAll(async () => {
  await admin?.disconnect();
  await stack?.close();
});

async function newPattern(): Promise<string> {
  const id = randomUUID();
  await stack.db.pool.query(
    `INSERT INTO pattern_templates (id, pattern_name, pattern_type, language) VALUES ($1, $2, 'code', 'go')`,
    [id, `p-${id}`],
  );
  return id;
}

/** A usage event; `anonymous` ones carry no correlation id: they are known by their coordinates. */
function usage(pattern: string, partition?: number, anonymous = false) {
  const cid = randomUUID();
  return {
    cid,
    anonymous,
    message: {
      key: pattern,
      ...(partition === undefined ? {} : { partition }),
      value: JSON.stringify({
        ...(anonymous ? {} : { correlation_id: cid }),
        pattern_id: pattern,
        usage_data: { success: true },
      }),
    },
  };
}

/** Correlation ids answered on the usage result topic so far. */
function answered(): Set<string> {
  return new Set(
    stack.results
      .on(stack.names.result('pattern.usage'))
      .map((m) => String(m.json<ModelResult>().metadata.correlation_id)),
  );
}

async function usageCount(pattern: string): Promise<number> {
  const { rows } = await stack.db.pool.query<{ n: number }>(
    'SELECT usage_count::int AS n FROM pattern_templates WHERE id = $1',
    [pattern],
  );
  return rows[0]?.n ?? -1;
}

it('says so, in its log and a metric, when records it had still to read were deleted', async () => {
  const pattern = await newPattern();
  const topic = stack.names.request('pattern.usage');
  const first = usage(pattern, 0);
  const worker = await stack.worker();
  await stack.send('pattern.usage', [first.message]);
  await eventually(() => answered().has(first.cid), 30_000, 'the first event');
  // Stopped with its offset committed; then a backlog, most of which retention takes before it starts.
  expect(await worker.stop('SIGTERM')).toBe(0);
  const backlog = Array.from({ length: 10 }, () => usage(pattern, 0));
  await stack.send(
    'pattern.usage',
    backlog.map((b) => b.message),
  );
  const high = Number((await admin.fetchTopicOffsets(topic)).find((p) => p.partition === 0)?.high);
  await admin.deleteTopicRecords({ topic, partitions: [{ partition: 0, offset: String(high - 4) }] });

  const next = await stack.worker();
  const kept = backlog.slice(6).map((b) => b.cid);
  await eventually(() => kept.every((c) => answered().has(c)), 30_000, 'the events left in the log');
  expect(backlog.slice(0, 6).filter((b) => answered().has(b.cid))).toEqual([]);
  expect(await usageCount(pattern)).toBe(5);
  expect(next.output()).toContain(
    `${topic}/0: offsets ${high - 10} to ${high - 5} (6 messages) were deleted before this lane read them`,
  );
  const metrics = await (await fetch(`http://127.0.0.1:${next.port}/metrics`)).text();
  expect(metrics).toMatch(
    new RegExp(
      `pattern_worker_skipped_offsets_total\\{[^}]*messaging_destination_name="${topic.replaceAll('.', '\\.')}"[^}]*messaging_destination_partition_id="0"[^}]*\\} 6`,
    ),
  );
  expect(await next.stop('SIGTERM')).toBe(0);
});

it('replaces a member the broker dropped while its process was paused, at once, not after 30 s', async () => {
  const pattern = await newPattern();
  const [paused, peer] = await Promise.all([stack.worker(), stack.worker()]);
  const before = usage(pattern);
  await stack.send('pattern.usage', [before.message]);
  await eventually(() => answered().has(before.cid), 30_000, 'the first event');
  // Longer than the broker's group.consumer.session.timeout.ms (10 s in scripts/kafka.sh).
  paused.child.kill('SIGSTOP');
  const during = Array.from({ length: 6 }, (_, i) => usage(pattern, i % 2));
  await stack.send(
    'pattern.usage',
    during.map((d) => d.message),
  );
  await new Promise((r) => setTimeout(r, 14_000));
  const resumedAt = Date.now();
  paused.child.kill('SIGCONT');
  await eventually(
    () => /UNKNOWN_MEMBER_ID/.test(paused.output()) && /replacing it/.test(paused.output()),
    10_000,
    'the paused worker replacing its dropped members',
  );
  expect(Date.now() - resumedAt).toBeLessThan(10_000);
  const after = Array.from({ length: 6 }, (_, i) => usage(pattern, i % 2));
  await stack.send(
    'pattern.usage',
    after.map((d) => d.message),
  );
  const all = [before, ...during, ...after].map((u) => u.cid);
  await eventually(() => all.every((c) => answered().has(c)), 60_000, 'every event');
  // Each applied once, whichever member answered it (answers again are flagged duplicates).
  expect(await usageCount(pattern)).toBe(all.length);
  expect(await paused.stop('SIGTERM')).toBe(0);
  expect(await peer.stop('SIGTERM')).toBe(0);
});

it('goes on with an input topic deleted and created again under it, and with its other topics', async () => {
  const pattern = await newPattern();
  const worker = await stack.worker();
  // Fifteen per partition: the group commits offset 15 of each, by name. Read from those offsets, the new
  // topic's burst below would lose its first fifteen per partition (the audit's run lost thousands). Every
  // third event has no correlation id: some of the new topic's are at the coordinates of a deleted one's,
  // and were answered as its duplicates, never applied, before identity records kept the timestamp.
  const warm = Array.from({ length: 30 }, (_, i) => usage(pattern, i % 2, i % 3 === 0));
  await stack.send(
    'pattern.usage',
    warm.map((e) => e.message),
  );
  await eventually(
    async () => warm.every((e) => e.anonymous || answered().has(e.cid)) && (await usageCount(pattern)) === 30,
    30_000,
    'the first events',
  );
  const topic = stack.names.request('pattern.usage');
  const recorded = async (which: 'all' | 'second') => {
    const { rows } = await stack.db.pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM processed_messages WHERE identity LIKE $1 || '/%' ${which === 'second' ? "AND identity LIKE '%@%'" : ''}`,
      [`off:${topic}`],
    );
    return rows[0]?.n ?? -1;
  };
  // The deleted topic's anonymous events sit after what earlier tests sent: the new topic starts with
  // anonymous events up to the last of them in each partition, so each coordinate is taken again by a
  // new, different message (after the probe at partition 0, offset 0).
  const { rows: before } = await stack.db.pool.query<{ p: number; last: number; collide: number }>(
    `SELECT source_partition AS p, max(source_offset)::int AS last,
            count(*) FILTER (WHERE NOT (source_partition = 0 AND source_offset = 0))::int AS collide
       FROM processed_messages WHERE identity LIKE $1 || '/%' GROUP BY 1`,
    [`off:${topic}`],
  );
  const recordedBefore = await recorded('all');
  await recreateTopic(admin, topic, 2);
  // The new topic takes writes a moment after it is created: a probe with a correlation id finds when (a
  // send tried again cannot apply it twice).
  const probe = usage(pattern, 0);
  await sendWhenAccepted(stack, 'pattern.usage', [probe.message]);
  const fill = before.flatMap(({ p, last }) =>
    Array.from({ length: p === 0 ? last : last + 1 }, () => usage(pattern, p, true)),
  );
  const events = Array.from({ length: 60 }, (_, i) => usage(pattern, i % 2, i % 3 === 0));
  await stack.send(
    'pattern.usage',
    [...fill, ...events].map((e) => e.message),
  );
  const insert = randomUUID();
  await stack.send('pattern.insert', [
    {
      key: insert,
      value: JSON.stringify({
        correlation_id: insert,
        operation: 'insert',
        data: { pattern_name: `n-${insert}`, pattern_type: 'code', language: 'go' },
      }),
    },
  ]);
  await eventually(
    () =>
      stack.results
        .on(stack.names.result('pattern.insert'))
        .some((m) => m.json<ModelResult>().metadata.correlation_id === insert),
    30_000,
    'the insert on the untouched topic',
  );
  await eventually(
    () => events.every((e) => e.anonymous || answered().has(e.cid)),
    30_000,
    'the events on the new topic',
  );
  const applied = warm.length + 1 + fill.length + events.length;
  await eventually(
    async () => (await usageCount(pattern)) >= applied,
    30_000,
    'the anonymous events on the new topic',
  ).catch(() => undefined);
  expect(await usageCount(pattern)).toBe(applied);
  // One record per anonymous event of the new topic; those at a deleted one's coordinates under a second
  // identity.
  expect(await recorded('all')).toBe(recordedBefore + fill.length + 20);
  expect(await recorded('second')).toBe(before.reduce((n, b) => n + b.collide, 0));
  expect(await recorded('second')).toBeGreaterThan(0);
  expect(await worker.stop('SIGTERM')).toBe(0);
});

it('answers on the result topic, and goes on, when a reply topic is deleted after it was checked', async () => {
  const worker = await stack.worker();
  const replyTopic = `${stack.names.prefix}tmp.replies`;
  await admin.createTopics({ topics: [{ topic: replyTopic, numPartitions: 1 }], waitForLeaders: true });
  const search = (cid: string, reply?: string) => ({
    key: cid,
    value: JSON.stringify({ correlation_id: cid, operation: 'search', search_query: 'anything' }),
    ...(reply ? { headers: { kafka_replyTopic: reply } } : {}),
  });
  // Answered there once: the worker now knows the topic exists.
  await stack.send('pattern.search.request', [search(randomUUID(), replyTopic)]);
  await eventually(
    async () => Number((await admin.fetchTopicOffsets(replyTopic))[0]?.high) === 1,
    30_000,
    'the first reply',
  );
  await admin.deleteTopics({ topics: [replyTopic] });
  await eventually(async () => !(await admin.listTopics()).includes(replyTopic), 30_000, 'the topic gone');
  const stranded = randomUUID();
  const others = [randomUUID(), randomUUID(), randomUUID()];
  await stack.send('pattern.search.request', [search(stranded, replyTopic), ...others.map((c) => search(c))]);
  const resultTopic = stack.names.result('pattern.search.request');
  const results = () => stack.results.on(resultTopic).map((m) => m.json<ModelResult>());
  await eventually(
    () => [stranded, ...others].every((c) => results().some((r) => r.metadata.correlation_id === c)),
    20_000,
    'every search answered on the result topic',
  );
  expect(results().find((r) => r.metadata.correlation_id === stranded)?.error?.message).toContain(
    `the reply topic ${replyTopic} does not exist`,
  );
  await eventually(
    () => stack.results.on(stack.names.dlq('pattern.search.request')).length > 0,
    10_000,
    'the dead letter',
  );
  expect(await worker.stop('SIGTERM')).toBe(0);
});
