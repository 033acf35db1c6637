// A write applied live whose reply topic has since been deleted: a replay applies it as the live worker
// did. The replay checked reply topics against the cluster as it is now, refused the write (deferred it,
// then refused it) and rebuilt a database without it.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { patterns } from '../support/cli.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { uniquePrefix } from '../support/kafka.ts';
import { createStack, type Stack } from '../support/stack.ts';

vi.setConfig({ testTimeout: 120_000, hookTimeout: 60_000 });

let stack: Stack;
let fresh: TestDatabase | undefined;
const replyTopic = `${uniquePrefix()}replies`;
beforeAll(async () => {
  stack = await createStack({ partitions: 1, extraTopics: [replyTopic] });
  await stack.worker({ WORKER_REPLY_TOPICS: replyTopic });
});
afterAll(async () => {
  await fresh?.drop();
  await stack?.close();
});

it('applies a write whose reply topic was deleted after the live worker answered there', async () => {
  const id = randomUUID();
  await stack.producer.send({
    topic: stack.names.request('pattern.insert'),
    acks: -1,
    messages: [
      {
        value: JSON.stringify({
          data: { pattern_id: id, pattern_name: 'RepliedThere', pattern_type: 'code', language: 'go' },
        }),
        headers: { kafka_correlationId: `nest-${id}`, kafka_replyTopic: replyTopic },
      },
    ],
  });
  await stack.results.waitForCount(replyTopic, 1, 30_000);
  const admin = stack.kafka.admin();
  await admin.connect();
  await admin.deleteTopics({ topics: [replyTopic] });
  await admin.disconnect();

  fresh = await createTestDatabase();
  // The replay runs with the live worker's settings.
  const env = { ...stack.env, WORKER_REPLY_TOPICS: replyTopic, DATABASE_URL: fresh.url };
  const replay = await patterns(env, 'replay', '--from', 'earliest');
  expect(replay.code, replay.stderr).toBe(0);
  const summary = replay.stdout.split('\n').find((l) => l.startsWith('replay done')) ?? '';
  expect(summary).toMatch(/applied 1, already applied 0, dead-lettered 0, refused 0/);
  const { rows } = await fresh.pool.query('SELECT pattern_name FROM pattern_templates WHERE id = $1', [id]);
  expect(rows).toEqual([{ pattern_name: 'RepliedThere' }]);
});
