// The identity store (src/nodes/identity-store.ts) over the real database: concurrent claims of one
// identity, the single and batch paths mixed on the same identities, a replay of a batch, second identities
// (a topic created again, a forged redrive), and any split into batches against one at a time.
import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RetryableError } from '../../src/contracts/errors.ts';
import type { ModelResult } from '../../src/contracts/results.ts';
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
      expect(await claimIdentity(first, claim)).toEqual({ identity, stored: undefined });
      const waiting = claimIdentity(second, claim);
      await new Promise((r) => setTimeout(r, 200));
      await storeOutcome(first, identity, { success: true, data: { n: 1 }, error: null });
      await first.query('COMMIT');
      expect(await waiting).toEqual({ identity, stored: { success: true, data: { n: 1 }, error: null } });
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

  describe('a message at the coordinates of one recorded before, with another timestamp (a topic created again)', () => {
    const topic = `pattern.usage.recreated-${randomUUID()}`;
    const at = (offset: number, timestamp?: string, identityOffset = offset) => ({
      identity: `off:${topic}/0/${identityOffset}`,
      eventTime: new Date(Date.UTC(2026, 11, 1, 0, offset)),
      source: {
        topic,
        partition: 0,
        offset: String(offset),
        ...(timestamp === undefined ? {} : { timestamp }),
      },
    });
    const identities = async (offset: number) =>
      (
        await db.pool.query<{ identity: string; source_timestamp: string | null }>(
          `SELECT identity, source_timestamp::text FROM processed_messages WHERE identity LIKE $1 ORDER BY identity`,
          [`off:${topic}/0/${offset}%`],
        )
      ).rows;

    it('applies it under a second identity, once, on the single path', async () => {
      const before = await events();
      const first = await update.executeEffect(usage(true), at(1, '1764547200000'));
      expect(first).toMatchObject({ success: true, metadata: { source: { timestamp: '1764547200000' } } });
      expect(first.metadata.duplicate).toBeUndefined();
      // The deleted topic's message again: its duplicate.
      expect((await update.executeEffect(usage(true), at(1, '1764547200000'))).metadata.duplicate).toBe(true);

      // The new topic's message at those coordinates, another request: applied, not CONFLICT.
      const later = await update.executeEffect(usage(false), at(1, '1764633600000'));
      expect(later.success).toBe(true);
      expect(later.metadata.duplicate).toBeUndefined();
      expect(later.data).not.toEqual(first.data);
      // Each is a duplicate of itself from now on.
      const laterAgain = await update.executeEffect(usage(false), at(1, '1764633600000'));
      expect(laterAgain.metadata.duplicate).toBe(true);
      expect(JSON.stringify(laterAgain.data)).toBe(JSON.stringify(later.data));
      expect((await update.executeEffect(usage(true), at(1, '1764547200000'))).metadata.duplicate).toBe(true);
      expect(await events()).toBe(before + 2);
      expect(await identities(1)).toEqual([
        { identity: `off:${topic}/0/1`, source_timestamp: '1764547200000' },
        { identity: `off:${topic}/0/1@1764633600000`, source_timestamp: '1764633600000' },
      ]);
    });

    it('applies it under a second identity, once, on the batch path, beside the single path', async () => {
      const before = await events();
      await update.executeEffect(usage(true), at(2, '1000'));
      const batch = await update.recordUsageBatch([
        { request: usage(false), context: at(2, '2000') },
        { request: usage(true), context: at(3, '2000') },
        { request: usage(true), context: at(2, '1000') },
      ]);
      expect(batch.map((r) => [r.success, r.metadata.duplicate ?? false])).toEqual([
        [true, false],
        [true, false],
        [true, true],
      ]);
      // The batch's second identity is the single path's too.
      expect((await update.executeEffect(usage(false), at(2, '2000'))).metadata.duplicate).toBe(true);
      const again = await update.recordUsageBatch([
        { request: usage(false), context: at(2, '2000') },
        { request: usage(true), context: at(3, '2000') },
      ]);
      expect(again.every((r) => r.metadata.duplicate === true)).toBe(true);
      expect(await events()).toBe(before + 3);
      expect((await identities(2)).map((r) => r.identity)).toEqual([
        `off:${topic}/0/2`,
        `off:${topic}/0/2@2000`,
      ]);
    });

    it('matches records without a timestamp (before migration 025) and redrives by coordinates alone', async () => {
      const before = await events();
      // Recorded with no timestamp: any message at the coordinates is its duplicate, as before.
      await update.executeEffect(usage(true), at(4));
      expect((await update.executeEffect(usage(true), at(4, '5000'))).metadata.duplicate).toBe(true);
      // A redrive at offset 6 takes the identity of offset 5 (pattern-redrive-of): its own timestamp is not
      // its original's, so neither it, a second redrive nor the original itself is applied again.
      const redrive = await update.executeEffect(usage(true), at(6, '7000', 5));
      expect(redrive.metadata.duplicate).toBeUndefined();
      expect((await update.executeEffect(usage(true), at(7, '8000', 5))).metadata.duplicate).toBe(true);
      expect((await update.executeEffect(usage(true), at(5, '6000'))).metadata.duplicate).toBe(true);
      const [batched] = await update.recordUsageBatch([{ request: usage(true), context: at(5, '6000') }]);
      expect(batched?.metadata.duplicate).toBe(true);
      expect(await identities(5)).toEqual([{ identity: `off:${topic}/0/5`, source_timestamp: null }]);
      expect(await events()).toBe(before + 2);
    });

    it('applies a redrive whose identity a forged redrive holds with another request, once', async () => {
      const before = await events();
      // A forged pattern-redrive-of naming offset 10 (another request) is applied first, under its name.
      const forged = await update.executeEffect(usage(false), at(11, '1', 10));
      expect(forged.success).toBe(true);
      // The real redrive, another request: applied (before, CONFLICT for good), once, single or batched.
      const real = await update.executeEffect(usage(true), at(12, '2', 10));
      expect(real.success).toBe(true);
      expect(real.metadata.duplicate).toBeUndefined();
      expect((await update.executeEffect(usage(true), at(13, '3', 10))).metadata.duplicate).toBe(true);
      const [batched] = await update.recordUsageBatch([{ request: usage(true), context: at(14, '4', 10) }]);
      expect(batched?.metadata.duplicate).toBe(true);
      // In one batch as one after the other: the forged one first, then the real one twice.
      const inBatch = await update.recordUsageBatch([
        { request: usage(false), context: at(21, '1', 20) },
        { request: usage(true), context: at(22, '2', 20) },
        { request: usage(true), context: at(23, '3', 20) },
      ]);
      expect(inBatch.map((r) => [r.success, r.metadata.duplicate ?? false])).toEqual([
        [true, false],
        [true, false],
        [true, true],
      ]);
      expect((await update.executeEffect(usage(true), at(24, '4', 20))).metadata.duplicate).toBe(true);
      expect(await events()).toBe(before + 4);
      const held = async (offset: number) =>
        (await identities(offset)).map((r) => r.identity.split('#').length);
      expect(await held(10)).toEqual([1, 2]);
      expect(await held(20)).toEqual([1, 2]);
    });

    it("derives the second message's ids from its own identity", async () => {
      const storage = new NodePatternStorageEffect(db.pool);
      const insert = (name: string) =>
        ({
          operation: 'insert',
          data: { pattern_name: name, pattern_type: 'code', language: 'go' },
        }) as never;
      const first = await storage.executeEffect(insert(`first-${topic}`), at(8, '1'));
      const later = await storage.executeEffect(insert(`later-${topic}`), at(8, '2'));
      expect(first.success && later.success).toBe(true);
      const id = (r: typeof first) => (r.data as { pattern_id: string }).pattern_id;
      expect(id(later)).not.toBe(id(first));
      const again = await storage.executeEffect(insert(`later-${topic}`), at(8, '2'));
      expect(again.metadata.duplicate).toBe(true);
      expect(id(again)).toBe(id(later));
    });
  });
});

// Messages without a correlation id share an identity when they share coordinates (a topic created again)
// or name the same original (pattern-redrive-of); messages with one share it when a client reuses it. The
// live worker batches usage events (and one pattern's recomputations) as they come and a replay may batch
// them otherwise, so any split of a sequence into batches must give each message the outcome it gets one at
// a time, and the same records.
/** A message known by coordinates, its own (offset 0-2, one of two timestamps) or those a redrive names, or
 * by one of three correlation ids. */
const message = fc.record({
  coordinates: fc.integer({ min: 0, max: 2 }),
  kind: fc.constantFrom('own', 'redrive', 'correlation id'),
  timestamp: fc.constantFrom('1764547200000', '1764633600000'),
  success: fc.boolean(),
  /** Of a pattern that does not exist: refused (INVALID_REFERENCE, NOT_FOUND), nothing recorded. */
  missing: fc.boolean(),
});
type Message = typeof message extends fc.Arbitrary<infer T> ? T : never;

type Batched = 'record_usage' | 'update_stats';

function item(operation: Batched, topic: string, m: Message, index: number) {
  // A redrive sits at an offset of its own, after the ones it may name.
  const offset = m.kind === 'own' ? m.coordinates : 100 + index;
  const pattern_id = m.missing ? '00000000-0000-4000-8000-00000000dead' : patternId;
  return {
    request: (operation === 'record_usage'
      ? { operation, pattern_id, usage_data: { success: m.success } }
      : { operation, pattern_id }) as never,
    context: {
      identity:
        m.kind === 'correlation id' ? `cid:${topic}-${m.coordinates}` : `off:${topic}/0/${m.coordinates}`,
      eventTime: new Date(Date.UTC(2026, 11, 1, 0, index)),
      source: { topic, partition: 0, offset: String(offset), timestamp: m.timestamp },
    },
  };
}

// A usage result names its event, whose id comes from the identity (which names the run's topic); a
// recomputation's result is the pattern's statistics, the same however it is batched.
const outcome =
  (operation: Batched) =>
  (r: ModelResult): unknown[] => [
    r.success,
    r.metadata.duplicate === true,
    r.error?.code ?? null,
    operation === 'update_stats' ? (JSON.parse(JSON.stringify(r.data)) as unknown) : null, // as on the wire
  ];

async function records(topic: string): Promise<string[]> {
  const { rows } = await db.pool.query<{ identity: string }>(
    'SELECT identity FROM processed_messages WHERE identity LIKE $1 OR identity LIKE $2 ORDER BY identity',
    [`off:${topic}/%`, `cid:${topic}-%`],
  );
  return rows.map((r) => r.identity.replace(topic, ''));
}

describe.each(['record_usage', 'update_stats'] as const)(
  '%s by identities, batched or one at a time',
  (operation) => {
    it('give each message the same outcome and records however the messages are batched', async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.array(message, { minLength: 1, maxLength: 10 }),
          fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 10, maxLength: 10 }),
          async (messages, cuts) => {
            const [single, batched] = [`single-${randomUUID()}`, `batched-${randomUUID()}`];
            const oneByOne: unknown[] = [];
            for (const [i, m] of messages.entries()) {
              const { request, context } = item(operation, single, m, i);
              oneByOne.push(outcome(operation)(await update.executeEffect(request, context)));
            }
            const inBatches: unknown[] = [];
            for (let at = 0, cut = 0; at < messages.length; at += cuts[cut++ % cuts.length] as number) {
              const size = cuts[cut % cuts.length] as number;
              const batch = messages.slice(at, at + size).map((m, j) => item(operation, batched, m, at + j));
              const results =
                operation === 'record_usage'
                  ? await update.recordUsageBatch(batch)
                  : await update.updateStatsBatch(batch);
              inBatches.push(...results.map(outcome(operation)));
            }
            expect(inBatches).toEqual(oneByOne);
            expect(await records(batched)).toEqual(await records(single));
          },
        ),
        {
          numRuns: 60,
          // Found by this test: a batch of two messages given one second identity, with different requests.
          examples: [
            [
              [
                { coordinates: 2, kind: 'own', timestamp: '1764633600000', success: false, missing: false },
                { coordinates: 2, kind: 'own', timestamp: '1764547200000', success: false, missing: false },
                { coordinates: 2, kind: 'own', timestamp: '1764547200000', success: false, missing: true },
              ],
              [1, 2, 1, 1, 1, 1, 1, 1, 1, 1],
            ],
          ],
        },
      );
    });
  },
);
