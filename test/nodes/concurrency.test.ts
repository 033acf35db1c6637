// Concurrent usage batches over the same patterns (unkeyed producers, several workers) must not deadlock:
// the event insert's foreign-key checks and the statistics trigger lock pattern rows compatibly.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { NodePatternStorageEffect, NodePatternUpdateEffect } from '../../src/nodes/index.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase({ poolMax: 10 });
});
afterAll(async () => db.drop());

it('applies 16 concurrent batches over the same 40 patterns, in different orders, without a deadlock', async () => {
  const storage = new NodePatternStorageEffect(db.pool);
  const update = new NodePatternUpdateEffect(db.pool);
  const ids = Array.from({ length: 40 }, () => randomUUID());
  await storage.executeEffect({
    operation: 'batch_insert',
    patterns: ids.map((id, i) => ({
      pattern_id: id,
      pattern_name: `Shared${i}`,
      pattern_type: 'code',
      language: 'go',
    })),
  } as never);
  const batches = Array.from({ length: 16 }, (_, b) => {
    // Each batch visits every pattern, starting at a different place and in alternating direction.
    const order = ids.map((_, i) => ids[(i * (b % 2 === 0 ? 1 : -1) + b * 5 + 40 * 40) % 40] as string);
    return order.map((patternId) => ({
      request: { operation: 'record_usage' as const, pattern_id: patternId, usage_data: { success: true } },
      context: { identity: randomUUID(), validated: true },
    }));
  });
  const results = await Promise.all(batches.map((items) => update.recordUsageBatch(items)));
  expect(results.flat().every((r) => r.success)).toBe(true);
  const { rows } = await db.pool.query<{ n: number }>(
    'SELECT sum(usage_count)::int AS n FROM pattern_templates WHERE id = ANY($1)',
    [ids],
  );
  expect(rows[0]?.n).toBe(16 * 40);
});

it('applies a batch delivered twice at once (a rebalance handing a partition over) exactly once', async () => {
  const storage = new NodePatternStorageEffect(db.pool);
  const update = new NodePatternUpdateEffect(db.pool);
  const ids = Array.from({ length: 20 }, () => randomUUID());
  await storage.executeEffect({
    operation: 'batch_insert',
    patterns: ids.map((id, i) => ({
      pattern_id: id,
      pattern_name: `Twice${i}`,
      pattern_type: 'code',
      language: 'go',
    })),
  } as never);
  // Both deliveries carry the same Kafka timestamp, as two deliveries of one record do.
  const eventTime = new Date();
  const items = ids.map((patternId, i) => ({
    request: {
      operation: 'record_usage' as const,
      pattern_id: patternId,
      usage_data: { success: i % 2 === 0 },
    },
    context: { identity: `twice-${patternId}`, eventTime, validated: true },
  }));
  const [first, second] = await Promise.all([update.recordUsageBatch(items), update.recordUsageBatch(items)]);
  const all = [...(first ?? []), ...(second ?? [])];
  expect(all.filter((r) => !r.success).map((r) => r.error)).toEqual([]);
  // Each event is applied by one of the two and reported as a duplicate, with the same data, by the other.
  items.forEach((_, i) => {
    const pair = [first?.[i], second?.[i]];
    expect(pair.filter((r) => r?.metadata.duplicate === true)).toHaveLength(1);
    expect(JSON.stringify(pair[0]?.data)).toBe(JSON.stringify(pair[1]?.data)); // as on the wire
  });
  const { rows } = await db.pool.query<{ events: number; uses: number }>(
    `SELECT (SELECT count(*)::int FROM pattern_usage_events WHERE pattern_id = ANY($1)) AS events,
            (SELECT sum(usage_count)::int FROM pattern_templates WHERE id = ANY($1)) AS uses`,
    [ids],
  );
  expect(rows[0]).toEqual({ events: 20, uses: 20 });
});
