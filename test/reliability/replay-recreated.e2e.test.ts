// A replay over a request topic that was deleted and created again: the result and dead-letter topics still
// hold what the live worker answered for the deleted topic's records, at the same coordinates as the new
// topic's. Before results and dead letters were told apart by their request's timestamp, a replay refused
// valid events of the new topic "as live" because a deleted record at their offset had been refused (38 of
// 100 in the audit's run).
import { randomUUID } from 'node:crypto';
import type { Admin } from 'kafkajs';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import type { ModelResult } from '../../src/contracts/results.ts';
import { patterns } from '../support/cli.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { createStackRetrying, eventually, recreateTopic, sendWhenAccepted } from '../support/faults.ts';
import type { Stack } from '../support/stack.ts';

vi.setConfig({ testTimeout: 180_000 });

let stack: Stack;
let admin: Admin;
let fresh: TestDatabase | undefined;
beforeAll(async () => {
  stack = await createStackRetrying({ partitions: 1 });
  admin = stack.kafka.admin();
  await admin.connect();
});
afterAll(async () => {
  await admin?.disconnect();
  await fresh?.drop();
  await stack?.close();
});

const usageResults = () => stack.results.on(stack.names.result('pattern.usage'));
const deadLetters = () => stack.results.on(stack.names.dlq('pattern.usage'));

async function usageEvents(db: TestDatabase): Promise<number> {
  const { rows } = await db.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM pattern_usage_events');
  return rows[0]?.n ?? -1;
}

it('gives a replayed record only the live outcome of its own request, not of one at its offset in a topic since deleted', async () => {
  const worker = await stack.worker();
  const topic = stack.names.request('pattern.usage');
  // The deleted topic's twenty records: each refused live (dead-lettered, with an error result).
  const refused = Array.from({ length: 20 }, () => randomUUID());
  await stack.send(
    'pattern.usage',
    refused.map((cid) => ({
      key: cid,
      value: JSON.stringify({ correlation_id: cid, pattern_id: 'not a uuid' }),
    })),
  );
  await eventually(() => deadLetters().length >= 20, 30_000, 'the refused events dead-lettered');

  await recreateTopic(admin, topic, 1);

  // The new topic: a pattern, then twenty valid events at the offsets the refused ones had.
  const insert = randomUUID();
  await stack.send('pattern.insert', [
    {
      key: insert,
      value: JSON.stringify({
        correlation_id: insert,
        operation: 'insert',
        data: { pattern_id: insert, pattern_name: `n-${insert}`, pattern_type: 'code', language: 'go' },
      }),
    },
  ]);
  await eventually(
    () =>
      stack.results
        .on(stack.names.result('pattern.insert'))
        .some((m) => m.json<ModelResult>().metadata.correlation_id === insert),
    30_000,
    'the pattern inserted',
  );
  const valid = Array.from({ length: 20 }, () => randomUUID());
  await sendWhenAccepted(
    stack,
    'pattern.usage',
    valid.map((cid) => ({
      key: insert,
      value: JSON.stringify({ correlation_id: cid, pattern_id: insert, usage_data: { success: true } }),
    })),
  );
  const applied = () =>
    new Set(
      usageResults()
        .map((m) => m.json<ModelResult>())
        .filter((r) => r.success)
        .map((r) => String(r.metadata.correlation_id)),
    );
  await eventually(() => valid.every((cid) => applied().has(cid)), 30_000, 'the valid events applied');
  expect(await usageEvents(stack.db)).toBe(20);
  // The results say which request they answer: its coordinates and its timestamp.
  const source = usageResults()
    .find((m) => m.json<ModelResult>().success)
    ?.json<ModelResult>().metadata.source;
  expect(source).toMatchObject({ topic, partition: 0 });
  expect(source?.timestamp).toMatch(/^\d{13}$/);
  expect(await worker.stop('SIGTERM')).toBe(0);

  // The replay sees the refused events' dead letters and results at offsets 0 to 19, and must give them to
  // no record of the new topic.
  fresh = await createTestDatabase();
  const rebuilt = await patterns({ ...stack.env, DATABASE_URL: fresh.url }, 'replay', '--from', 'earliest');
  expect(rebuilt.code, rebuilt.stderr).toBe(0);
  const summary = rebuilt.stdout.split('\n').find((l) => l.startsWith('replay done')) ?? '';
  expect(summary).toMatch(/dead-lettered 0, refused 0,/);
  expect(await usageEvents(fresh)).toBe(20);
});
