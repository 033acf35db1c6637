// The bounded identity store: result bodies past the retention window are pruned to their ids, identity
// keys and fingerprints stay, so a replay onto the populated database changes nothing and a duplicate
// still answers "already applied"; recent rows are left alone.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.ts';
import { pruneBatch } from '../../src/nodes/identity-pruning.ts';
import { NodePatternStorageEffect, NodePatternUpdateEffect } from '../../src/nodes/index.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';

let db: TestDatabase;
let storage: NodePatternStorageEffect;
let update: NodePatternUpdateEffect;
const DAY = 86_400_000;

beforeAll(async () => {
  db = await createTestDatabase();
  storage = new NodePatternStorageEffect(db.pool);
  update = new NodePatternUpdateEffect(db.pool);
});
afterAll(async () => {
  await db.drop();
});

const count = async (sql: string) => (await db.pool.query<{ n: number }>(sql)).rows[0]?.n ?? 0;

describe('pruning result bodies', () => {
  it('keeps identities, answers duplicates with the ids, leaves recent rows, and replay changes nothing', async () => {
    const patternId = randomUUID();
    const insertIdentity = `cid:${randomUUID()}`;
    const insert = {
      operation: 'insert',
      data: { pattern_id: patternId, pattern_name: 'Pruned', pattern_type: 'code', language: 'go' },
    };
    await storage.executeEffect(insert as never, { identity: insertIdentity });
    const usage = Array.from({ length: 200 }, (_, i) => ({
      request: {
        operation: 'record_usage',
        pattern_id: patternId,
        usage_data: {
          success: i % 2 === 0,
          execution_time_ms: i,
          file_path: `src/file${i}.py`,
          project_id: 'p1',
          tags: ['a', 'b'],
        },
      } as never,
      context: { identity: `cid:${randomUUID()}`, eventTime: new Date() },
    }));
    const applied = await update.recordUsageBatch(usage);
    expect(applied.every((r) => r.success)).toBe(true);
    const bytes = async () =>
      (
        await db.pool.query<{ avg: number }>(
          "SELECT avg(pg_column_size(result))::float8 AS avg FROM processed_messages WHERE operation = 'record_usage'",
        )
      ).rows[0]?.avg ?? 0;
    const rowBytes = async () =>
      (
        await db.pool.query<{ avg: number }>(
          "SELECT avg(pg_column_size(p.*))::float8 AS avg FROM processed_messages p WHERE operation = 'record_usage'",
        )
      ).rows[0]?.avg ?? 0;
    const before = await bytes();
    const rowBefore = await rowBytes();
    // Everything but the last 50 usage events is past a 7-day window.
    const old = usage.slice(0, 150).map((u) => (u.context as { identity: string }).identity);
    await db.pool.query(
      "UPDATE processed_messages SET processed_at = now() - interval '8 days' WHERE identity = ANY($1) OR identity = $2",
      [old, insertIdentity],
    );

    let pruned = 0;
    let freed = 0;
    for (;;) {
      const batch = await pruneBatch(db.pool, 7 * DAY, 40);
      pruned += batch.rows;
      freed += batch.bytes;
      if (batch.rows < 40) break;
    }
    expect(pruned).toBe(151);
    expect(freed).toBeGreaterThan(0);
    expect(await count('SELECT count(*)::int AS n FROM processed_messages WHERE pruned')).toBe(151);
    expect(
      await count(
        "SELECT count(*)::int AS n FROM processed_messages WHERE NOT pruned AND operation = 'record_usage'",
      ),
    ).toBe(50);
    const after = await bytes();
    // The figure for the issue: stored result bytes per usage event, before and after (all 200 events).
    const rowAfter = await rowBytes();
    console.log(
      `[prune] per usage event: result ${before.toFixed(0)} -> ${after.toFixed(0)} bytes, whole row ` +
        `${rowBefore.toFixed(0)} -> ${rowAfter.toFixed(0)} bytes (150 of 200 pruned)`,
    );
    expect(after).toBeLessThan(before);

    // A duplicate of a pruned usage event: already applied, with the ids it still has.
    const [again] = await update.recordUsageBatch([usage[0] as (typeof usage)[number]]);
    expect(again?.metadata).toMatchObject({ duplicate: true, result_pruned: true });
    expect(again?.data).toEqual({ event_id: expect.any(String) as string, pattern_id: patternId });
    const insertAgain = await storage.executeEffect(insert as never, { identity: insertIdentity });
    expect(insertAgain).toMatchObject({
      success: true,
      data: { pattern_id: patternId },
      metadata: { duplicate: true, result_pruned: true },
    });
    // The fingerprint stays: the same identity with another request is still refused.
    const reused = await storage.executeEffect(
      { ...insert, data: { ...insert.data, pattern_name: 'Other' } } as never,
      { identity: insertIdentity },
    );
    expect(reused.error).toMatchObject({ code: 'CONFLICT' });

    // Replaying everything onto the populated database changes nothing.
    const events = await count('SELECT count(*)::int AS n FROM pattern_usage_events');
    const replayed = await update.recordUsageBatch(usage);
    expect(replayed.every((r) => r.metadata.duplicate === true)).toBe(true);
    expect(await count('SELECT count(*)::int AS n FROM pattern_usage_events')).toBe(events);
    // A recent row keeps its whole body.
    const recent = replayed[199];
    expect(recent?.metadata.result_pruned).toBeUndefined();
    expect(recent?.data).toMatchObject({ quality_improvement: null });
  });

  it('reads WORKER_RESULT_RETENTION as a duration, 0 for never, and refuses anything else', () => {
    expect(loadConfig({}).WORKER_RESULT_RETENTION).toBe(7 * DAY);
    expect(loadConfig({ WORKER_RESULT_RETENTION: '12h' }).WORKER_RESULT_RETENTION).toBe(12 * 3_600_000);
    expect(loadConfig({ WORKER_RESULT_RETENTION: '0' }).WORKER_RESULT_RETENTION).toBe(0);
    expect(() => loadConfig({ WORKER_RESULT_RETENTION: 'a week' })).toThrow(
      /WORKER_RESULT_RETENTION: expected a duration/,
    );
  });
});
