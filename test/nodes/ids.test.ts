// Usage event ids: functions of the message (identity and time), ordered by time so that the events'
// primary key grows at its right edge.
import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NodePatternStorageEffect, NodePatternUpdateEffect } from '../../src/nodes/index.ts';
import { usageEventId } from '../../src/nodes/ids.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const MAX_MS = 2 ** 48 - 1;
const timeOf = (id: string) => parseInt(id.replace(/-/g, '').slice(0, 12), 16);

describe('usageEventId', () => {
  it('is a version 7 UUID whose time is the message time and whose other bits come from the identity', () => {
    const at = new Date('2026-06-15T12:00:00.123Z');
    const id = usageEventId('orders/3/1041', at);
    expect(id).toMatch(UUID_V7);
    expect(timeOf(id)).toBe(at.getTime());
    expect(usageEventId('orders/3/1041', new Date(at))).toBe(id);
    expect(usageEventId('orders/3/1042', at)).not.toBe(id);
    expect(usageEventId('orders/3/1041', new Date(at.getTime() + 1))).not.toBe(id);
  });

  it('sorts by time, whatever the identities', () => {
    fc.assert(
      fc.property(
        fc.string(),
        fc.string(),
        fc.integer({ min: 0, max: MAX_MS }),
        fc.integer({ min: 0, max: MAX_MS }),
        (a, b, ta, tb) => {
          fc.pre(ta !== tb);
          const [ia, ib] = [usageEventId(a, new Date(ta)), usageEventId(b, new Date(tb))];
          expect(ia < ib).toBe(ta < tb);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('stays a valid UUID for times a hostile producer can send (before 1970, past year 10889, invalid)', () => {
    const cases: [Date, number][] = [
      [new Date(-1), 0],
      [new Date(-8.64e15), 0],
      [new Date(8.64e15), MAX_MS],
      [new Date(Number.NaN), 0],
    ];
    for (const [time, expected] of cases) {
      const id = usageEventId('hostile', time);
      expect(id).toMatch(UUID_V7);
      expect(timeOf(id)).toBe(expected);
    }
  });

  it('is random after the time without an identity', () => {
    const at = new Date('2026-06-15T12:00:00Z');
    const [a, b] = [usageEventId(undefined, at), usageEventId(undefined, at)];
    expect(a).toMatch(UUID_V7);
    expect(a).not.toBe(b);
    expect(timeOf(a)).toBe(at.getTime());
  });
});

describe('stored usage events', () => {
  let db: TestDatabase;
  let update: NodePatternUpdateEffect;
  let patternId: string;
  const at = new Date('2026-06-15T12:00:00Z');

  beforeAll(async () => {
    db = await createTestDatabase();
    update = new NodePatternUpdateEffect(db.pool);
    const storage = new NodePatternStorageEffect(db.pool);
    const inserted = await storage.executeEffect(
      {
        operation: 'insert',
        data: { pattern_name: 'IdsPattern', pattern_type: 'code', language: 'ts' },
      } as never,
      { identity: `insert-${randomUUID()}`, eventTime: at },
    );
    patternId = (inserted.data as { pattern_id: string }).pattern_id;
  });
  afterAll(async () => {
    await db.drop();
  });

  it('get the same id from a batch as from a single request with the same identity and time (a replay takes either path)', async () => {
    const usage = { operation: 'record_usage', pattern_id: patternId, usage_data: { success: true } };
    const [single, batched] = [`single-${randomUUID()}`, `batched-${randomUUID()}`];
    const one = await update.executeEffect(usage as never, { identity: single, eventTime: at });
    const [many] = await update.recordUsageBatch([
      { request: usage as never, context: { identity: batched, eventTime: at, validated: true } },
    ]);
    expect((one.data as { event_id: string }).event_id).toBe(usageEventId(single, at));
    expect((many?.data as { event_id: string }).event_id).toBe(usageEventId(batched, at));
    const { rows } = await db.pool.query<{ id: string }>(
      'SELECT id FROM pattern_usage_events WHERE pattern_id = $1 ORDER BY id',
      [patternId],
    );
    expect(rows.map((r) => r.id).sort()).toEqual(
      [usageEventId(single, at), usageEventId(batched, at)].sort(),
    );
  });
});
