// The upgrade from one consumer group for every lane (KAFKA_GROUP_ID) to a group per lane
// (KAFKA_GROUP_ID.<lane>): the offsets the old group committed are carried over once, also when several
// upgraded replicas start at the same moment, so nothing the old version had processed is read again.
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import type { ModelResult } from '../../src/contracts/results.ts';
import { createStack, type Stack } from '../support/stack.ts';

vi.setConfig({ testTimeout: 90_000 });

let stack: Stack;
beforeAll(async () => {
  stack = await createStack({ partitions: 2 });
});
afterAll(async () => stack?.close());

const insert = (name: string) => ({
  operation: 'insert',
  data: { pattern_name: name, pattern_type: 'code', language: 'go' },
});

it('two upgraded replicas started together go on from the offsets of the old single group', async () => {
  const base = stack.env.KAFKA_GROUP_ID as string;
  const inserts = stack.names.request('pattern.insert');
  const searches = stack.names.request('pattern.search.request');
  await stack.send(
    'pattern.insert',
    [0, 1, 2, 3].map((i) => insert(`Old${i}`)),
  );
  await stack.send('pattern.search.request', [{ operation: 'search', query: 'old' }]);

  // What a worker of the earlier version leaves behind: its one group committed at the ends.
  const admin = stack.kafka.admin();
  await admin.connect();
  const ends = async (topic: string) =>
    (await admin.fetchTopicOffsets(topic))
      .map((p) => ({ partition: p.partition, offset: p.high }))
      .sort((a, b) => a.partition - b.partition);
  const oldInserts = await ends(inserts);
  const oldSearches = await ends(searches);
  await admin.setOffsets({ groupId: base, topic: inserts, partitions: oldInserts });
  await admin.setOffsets({ groupId: base, topic: searches, partitions: oldSearches });

  await stack.send('pattern.insert', [insert('New0'), insert('New1')]);
  const workers = await Promise.all([stack.worker(), stack.worker()]);

  await stack.results.waitForCount(stack.names.result('pattern.insert'), 2, 60_000);
  // A moment for anything read again to show up.
  await new Promise((r) => setTimeout(r, 3_000));
  // A result can be published twice when the second replica's join moves a partition before the first
  // committed it (the eager protocol); the effect is applied once either way.
  const names = new Set(
    stack.results
      .on(stack.names.result('pattern.insert'))
      .map((m) => (m.json<ModelResult<{ pattern_name?: string }>>().data ?? {}).pattern_name),
  );
  expect([...names].sort()).toEqual(['New0', 'New1']);
  expect(stack.results.on(stack.names.result('pattern.search.request'))).toEqual([]);
  const { rows } = await stack.db.pool.query<{ pattern_name: string }>(
    'SELECT pattern_name FROM pattern_templates ORDER BY pattern_name',
  );
  expect(rows.map((r) => r.pattern_name)).toEqual(['New0', 'New1']);

  // Each lane's group has its own offsets; the reads lane took over the old group's, untouched since.
  const committed = async (groupId: string, topic: string) =>
    (await admin.fetchOffsets({ groupId, topics: [topic] }))[0]?.partitions
      .map((p) => ({ partition: p.partition, offset: p.offset }))
      .sort((a, b) => a.partition - b.partition);
  expect(await committed(`${base}.reads`, searches)).toEqual(oldSearches);
  const writes = (await committed(`${base}.writes`, inserts)) ?? [];
  const total = (list: { offset: string }[]) => list.reduce((sum, p) => sum + Number(p.offset), 0);
  expect(total(writes)).toBe(total(oldInserts) + 2);
  await admin.disconnect();
  for (const w of workers) expect(w.child.exitCode).toBeNull();
});
