// An update appended to one partition before its pattern's insert was appended to another, but applied
// live after it (its partition was held up behind a slow write of the same key). The replay's merged order
// puts the update first and refuses it; the live worker applied it, so the replay defers it until the
// insert is applied and then applies it, instead of dead-lettering it and rebuilding a different database.
// The live order is forced, not raced: a row lock held in PostgreSQL keeps partition 0 waiting.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import type { ModelResult } from '../../src/contracts/results.ts';
import { patterns } from '../support/cli.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { createStack, type Stack } from '../support/stack.ts';

vi.setConfig({ testTimeout: 120_000, hookTimeout: 60_000 });

let stack: Stack;
let fresh: TestDatabase | undefined;
beforeAll(async () => {
  stack = await createStack({ partitions: 2 });
  await stack.worker();
});
afterAll(async () => {
  await fresh?.drop();
  await stack?.close();
});

it('applies an update the live worker applied after an insert appended later to another partition', async () => {
  const topic = stack.names.request('pattern.insert');
  const slow = randomUUID();
  const late = randomUUID();
  const insert = (id: string, name: string) =>
    JSON.stringify({
      operation: 'insert',
      correlation_id: randomUUID(),
      data: { pattern_id: id, pattern_name: name, pattern_type: 'code', language: 'go' },
    });
  const update = (id: string, description: string) =>
    JSON.stringify({
      operation: 'update',
      correlation_id: randomUUID(),
      pattern_id: id,
      data: { description },
    });
  const send = async (partition: number, key: string, value: string) => {
    const [meta] = await stack.producer.send({ topic, acks: -1, messages: [{ partition, key, value }] });
    return { partition, offset: meta?.baseOffset ?? '-1' };
  };
  const resultOf = (at: { partition: number; offset: string }) =>
    stack.results
      .on(stack.names.result('pattern.insert'))
      .map((m) => m.json<ModelResult>())
      .find(
        (r) =>
          r.metadata.source?.topic === topic &&
          r.metadata.source.partition === at.partition &&
          r.metadata.source.offset === at.offset,
      );

  const first = await send(0, 'k', insert(slow, `Slow${slow.slice(0, 8)}`));
  await stack.results.waitFor(() => resultOf(first) !== undefined, 30_000, 'the first insert applied');

  // Partition 0 waits: an update of the slow pattern blocks on its row, and the update of the late one
  // (same key, so live in order behind it) waits with it. The late pattern's insert, appended after both
  // to partition 1, is applied meanwhile.
  const lock = await stack.db.pool.connect();
  let held = false;
  try {
    await lock.query('BEGIN');
    held = true;
    await lock.query('SELECT 1 FROM pattern_templates WHERE id = $1 FOR UPDATE', [slow]);
    const blocked = await send(0, 'k', update(slow, 'after the lock'));
    const early = await send(0, 'k', update(late, 'applied live after its insert'));
    await new Promise((r) => setTimeout(r, 10)); // appended in a later millisecond than the update
    const created = await send(1, 'other', insert(late, `Late${late.slice(0, 8)}`));
    await stack.results.waitFor(() => resultOf(created) !== undefined, 30_000, 'the late insert applied');
    expect(resultOf(early)).toBeUndefined();
    await lock.query('COMMIT');
    held = false;
    await stack.results.waitFor(
      () => resultOf(blocked) !== undefined && resultOf(early) !== undefined,
      30_000,
      'the updates applied',
    );
    expect(resultOf(early)?.success).toBe(true);
  } finally {
    if (held) await lock.query('ROLLBACK');
    lock.release();
  }

  fresh = await createTestDatabase();
  const env = { ...stack.env, DATABASE_URL: fresh.url };
  const replay = await patterns(env, 'replay', '--from', 'earliest');
  expect(replay.code, replay.stderr).toBe(0);
  const summary = replay.stdout.split('\n').find((l) => l.startsWith('replay done')) ?? '';
  expect(summary).toMatch(
    /applied 4, already applied 0, dead-lettered 0, refused 0, reads skipped 0, deferred 1 \(/,
  );
  const row = (pool: typeof stack.db.pool) =>
    pool
      .query<{ description: string | null; updated_at: Date }>(
        'SELECT description, updated_at FROM pattern_templates WHERE id = $1',
        [late],
      )
      .then((r) => r.rows);
  expect(await row(fresh.pool)).toEqual(await row(stack.db.pool));
  expect((await row(fresh.pool))[0]?.description).toBe('applied live after its insert');

  // Again, for a script: one JSON document on stdout, the human lines on stderr. Everything is there now.
  const again = await patterns(env, 'replay', '--from', 'earliest', '--json');
  expect(again.code, again.stderr).toBe(0);
  expect(again.stderr).toMatch(/^replay done in .*already applied 4/m);
  expect(JSON.parse(again.stdout)).toMatchObject({
    messages: 4,
    applied: 0,
    alreadyApplied: 4,
    deadLettered: 0,
    deferred: 0,
    refused: {},
    done: { [topic]: 4 },
    liveOutcomes: { refused: 0, applied: 4, truncated: [] },
    notReplayed: [],
  });
});
