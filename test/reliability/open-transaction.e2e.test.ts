// A producer that opens a transaction and never ends it holds its partition for read_committed readers
// until the broker aborts it. Anyone allowed a transactional id can do that; the worker cannot read past
// it (Kafka lets no reader), but every other partition goes on, the records behind it are applied once
// the broker aborts it, and the aborted record itself never is. A replay does not wait for one: it ends
// that partition at the transaction, and says so. Naming a hold of 30 s is tested in-process
// (test/messaging/engine-hardening.test.ts).
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { ModelResult } from '../../src/contracts/results.ts';
import { patterns } from '../support/cli.ts';
import { createTestDatabase } from '../support/database.ts';
import { brokers } from '../support/kafka.ts';
import { openTransaction } from '../support/poison/client.ts';
import { createStack, type Stack } from '../support/stack.ts';

vi.setConfig({ testTimeout: 120_000 });

describe('a transaction left open on a request partition', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await createStack({ partitions: 2 });
  });
  afterAll(async () => stack.close());

  const id = randomUUID();
  const usage = (ms: number) =>
    JSON.stringify({ pattern_id: id, usage_data: { success: true, execution_time_ms: ms } });

  it('holds only its partition, until the broker aborts it; what is behind it is applied, it is not', async () => {
    await stack.worker();
    await stack.send('pattern.insert', [
      {
        key: id,
        value: JSON.stringify({
          data: { pattern_id: id, pattern_name: 'Held', pattern_type: 'code', language: 'go' },
        }),
      },
    ]);
    await stack.results.waitForCount(stack.names.result('pattern.insert'), 1);

    const hostile = await openTransaction(
      brokers().join(','),
      stack.names.request('pattern.usage'),
      usage(999),
      5000,
    );
    try {
      const sent = Date.now();
      await stack.producer.send({
        topic: stack.names.request('pattern.usage'),
        messages: [
          { partition: 0, value: usage(1) },
          { partition: 1, value: usage(2) },
        ],
      });
      const answeredAt = new Map<number, number>();
      await stack.results.waitFor(
        (all) => {
          for (const m of all.filter((r) => r.topic === stack.names.result('pattern.usage'))) {
            const p = m.json<ModelResult>().metadata.source?.partition;
            if (p !== undefined && !answeredAt.has(p)) answeredAt.set(p, m.receivedAt - sent);
          }
          return answeredAt.size === 2;
        },
        60_000,
        'both partitions answered',
      );
      // The other partition did not wait; the held one waited for the abort: the transaction's 5 s, plus
      // up to the broker's check for timed-out transactions (every 10 s by default).
      expect(answeredAt.get(1)).toBeLessThan(4_000);
      expect(answeredAt.get(0)).toBeGreaterThan(4_000);
    } finally {
      hostile.kill('SIGKILL');
    }
    await new Promise((r) => setTimeout(r, 500));
    expect(stack.results.on(stack.names.result('pattern.usage'))).toHaveLength(2);
    const { rows } = await stack.db.pool.query<{ n: number; ms: number[] }>(
      `SELECT t.usage_count AS n, array_agg(e.execution_time_ms::int ORDER BY e.execution_time_ms) AS ms
         FROM pattern_templates t JOIN pattern_usage_events e ON e.pattern_id = t.id
        WHERE t.id = $1 GROUP BY t.usage_count`,
      [id],
    );
    expect(rows[0]).toEqual({ n: 2, ms: [1, 2] });
  });

  it('is not waited for by a replay: the partition ends at the transaction, and the replay names what it left out', async () => {
    const hostile = await openTransaction(
      brokers().join(','),
      stack.names.request('pattern.usage'),
      usage(998),
      60_000,
    );
    try {
      await stack.producer.send({
        topic: stack.names.request('pattern.usage'),
        messages: [{ partition: 0, value: usage(3) }],
      });
      const fresh = await createTestDatabase();
      try {
        const started = Date.now();
        const run = await patterns({ ...stack.env, DATABASE_URL: fresh.url }, 'replay', '--from', 'earliest');
        expect(run.code, run.stderr).toBe(0);
        expect(Date.now() - started).toBeLessThan(25_000); // it used to wait 30 s, then skip without a word
        expect(run.stdout).toMatch(
          /note: \S+pattern\.usage\/0: 2 records from offset \d+ are behind a transaction a producer opened and has not ended/,
        );
        expect(run.stdout).toMatch(/not replayed: 1 partition\(s\) stopped at a transaction still open/);
        // Everything readable was replayed: the pattern and the usage of the first test, not what is held.
        const { rows } = await fresh.pool.query<{ ms: number[] }>(
          'SELECT array_agg(execution_time_ms::int ORDER BY execution_time_ms) AS ms FROM pattern_usage_events WHERE pattern_id = $1',
          [id],
        );
        expect(rows[0]?.ms).toEqual([1, 2]);
      } finally {
        await fresh.drop();
      }
    } finally {
      hostile.kill('SIGKILL');
    }
  });
});
