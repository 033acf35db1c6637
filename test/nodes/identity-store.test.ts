// The identity store (src/nodes/identity-store.ts) over the real database: concurrent claims of one
// identity, the single and batch paths mixed on the same identities, and a replay of a batch.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RetryableError } from '../../src/contracts/errors.ts';
import { claimIdentity, storeOutcome } from '../../src/nodes/identity-store.ts';
import { NodePatternStorageEffect, NodePatternUpdateEffect } from '../../src/nodes/index.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';

let db: TestDatabase;
let update: NodePatternUpdateEffect;
let patternId: string;

beforeAll(async () => {
  db = await createTestDatabase();
  update = new NodePatternUpdateEffect(db.pool);
  patternId = randomUUID();
  const inserted = await new NodePatternStorageEffect(db.pool).executeEffect({
    operation: 'insert',
    data: { pattern_id: patternId, pattern_name: 'Identity', pattern_type: 'code', language: 'go' },
  } as never);
  expect(inserted.success).toBe(true);
});
afterAll(async () => {
  await db.drop();
});

const usage = (success: boolean) =>
  ({ operation: 'record_usage', pattern_id: patternId, usage_data: { success } }) as never;
const events = async () =>
  Number((await db.pool.query<{ n: string }>('SELECT count(*) AS n FROM pattern_usage_events')).rows[0]?.n);

describe('the identity store', () => {
  it('lets one of two concurrent claims win; the other waits and sees its outcome', async () => {
    const identity = `cid:${randomUUID()}`;
    const claim = { identity, topic: 'pattern.usage', operation: 'record_usage', fingerprint: 'f1' };
    const first = await db.pool.connect();
    const second = await db.pool.connect();
    try {
      await first.query('BEGIN');
      await second.query('BEGIN');
      expect(await claimIdentity(first, claim)).toBeUndefined();
      const waiting = claimIdentity(second, claim);
      await new Promise((r) => setTimeout(r, 200));
      await storeOutcome(first, identity, { success: true, data: { n: 1 }, error: null });
      await first.query('COMMIT');
      expect(await waiting).toEqual({ success: true, data: { n: 1 }, error: null });
      await second.query('ROLLBACK');

      // The same identity with another request is refused, naming why.
      await second.query('BEGIN');
      await expect(claimIdentity(second, { ...claim, fingerprint: 'f2' })).rejects.toMatchObject({
        code: 'CONFLICT',
        details: { reason: 'correlation_id_reused' },
      });
      await second.query('ROLLBACK');
    } finally {
      first.release();
      second.release();
    }
  });

  it('answers the batch and single paths from the same records, with duplicates and CONFLICT alike', async () => {
    const [x, y] = [`cid:${randomUUID()}`, `cid:${randomUUID()}`];
    const before = await events();
    const single = await update.executeEffect(usage(true), { identity: x });
    expect(single.success).toBe(true);

    const batch = await update.recordUsageBatch([
      { request: usage(true), context: { identity: x } },
      { request: usage(false), context: { identity: y } },
      { request: usage(false), context: { identity: y } },
      { request: usage(true), context: { identity: y } },
    ]);
    expect(batch.map((r) => [r.success, r.metadata.duplicate ?? false, r.error?.code ?? null])).toEqual([
      [true, true, null],
      [true, false, null],
      [true, true, null],
      [false, false, 'CONFLICT'],
    ]);
    expect(JSON.stringify(batch[0]?.data)).toBe(JSON.stringify(single.data));
    // The single path sees what the batch recorded.
    const again = await update.executeEffect(usage(false), { identity: y });
    expect(again.metadata.duplicate).toBe(true);
    expect(JSON.stringify(again.data)).toBe(JSON.stringify(batch[1]?.data));
    expect(await events()).toBe(before + 2);
  });

  it('rolls a batch back as retryable when a single claim of one of its identities commits first', async () => {
    const z = `cid:${randomUUID()}`;
    const before = await events();
    const holder = await db.pool.connect();
    try {
      await holder.query('BEGIN');
      await claimIdentity(holder, { identity: z, topic: 'pattern.usage', operation: 'record_usage' });
      // Settled into a value at once: it can reject as soon as COMMIT lands, before the test looks at it.
      const batch = update.recordUsageBatch([{ request: usage(true), context: { identity: z } }]).then(
        () => 'applied',
        (err: unknown) => err,
      );
      await new Promise((r) => setTimeout(r, 200));
      await storeOutcome(holder, z, { success: true, data: { from: 'single' }, error: null });
      await holder.query('COMMIT');
      expect(await batch).toBeInstanceOf(RetryableError);
    } finally {
      holder.release();
    }
    expect(await events()).toBe(before);
    const [retried] = await update.recordUsageBatch([{ request: usage(true), context: { identity: z } }]);
    expect(retried).toMatchObject({ success: true, data: { from: 'single' }, metadata: { duplicate: true } });
  });

  it('makes a replayed batch change nothing', async () => {
    const items = Array.from({ length: 50 }, (_, i) => ({
      request: usage(i % 3 === 0),
      context: {
        identity: `off:pattern.usage/0/${randomUUID()}`,
        eventTime: new Date(Date.UTC(2026, 10, 1, 0, i)),
      },
    }));
    const first = await update.recordUsageBatch(items);
    expect(first.every((r) => r.success && !r.metadata.duplicate)).toBe(true);
    const count = await events();
    const replayed = await update.recordUsageBatch(items);
    expect(replayed.every((r) => r.metadata.duplicate === true)).toBe(true);
    expect(replayed.map((r) => JSON.stringify(r.data))).toEqual(first.map((r) => JSON.stringify(r.data)));
    expect(await events()).toBe(count);
  });
});
