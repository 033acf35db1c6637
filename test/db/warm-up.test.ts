// A replacement worker warms its connections before it joins its groups (src/app.ts): the pool must hold
// that many open connections afterwards, and a database it cannot warm must not stop the worker.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { warmUpPool } from '../../src/db/pool.ts';
import { NodePatternQueryEffect } from '../../src/nodes/node-pattern-query-effect.ts';
import { NodePatternStorageEffect } from '../../src/nodes/node-pattern-storage-effect.ts';
import { NodePatternUpdateEffect } from '../../src/nodes/node-pattern-update-effect.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';

let migrated: TestDatabase;
let empty: TestDatabase;
beforeAll(async () => {
  [migrated, empty] = await Promise.all([
    createTestDatabase({ poolMax: 6 }),
    createTestDatabase({ poolMax: 3, migrated: false }),
  ]);
});
afterAll(async () => Promise.all([migrated.drop(), empty.drop()]));

it('opens the connections at once, plans over the hot relations on each, and leaves them idle in the pool', async () => {
  const { rows: before } = await migrated.pool.query<{ n: number }>(
    'SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database()',
  );
  const warmed = await warmUpPool(migrated.pool, 4);
  expect(warmed).toEqual({ opened: 4 });
  expect(migrated.pool.totalCount).toBeGreaterThanOrEqual(4);
  expect(migrated.pool.idleCount).toBe(migrated.pool.totalCount);
  const { rows: after } = await migrated.pool.query<{ n: number }>(
    'SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database()',
  );
  expect(after[0]?.n).toBeGreaterThanOrEqual(Math.max(4, before[0]?.n ?? 0));
});

it('reports, without throwing, a database it cannot warm (migrations pending), and returns its connections', async () => {
  const warmed = await warmUpPool(empty.pool, 2);
  expect(warmed.opened).toBe(2);
  expect(warmed.error?.message).toMatch(/relation "pattern_templates" does not exist/);
  expect(empty.pool.idleCount).toBe(empty.pool.totalCount);
  expect(empty.pool.waitingCount).toBe(0);
});

it('does nothing for a lane set without connections (a worker whose lanes use another pool)', async () => {
  expect(await warmUpPool(empty.pool, 0)).toEqual({ opened: 0 });
});

// The rehearsal of the busiest operations (src/app.ts, after the warm-up): a usage batch for a throwaway
// pattern, rolled back, and a search. Concurrent rehearsals, beside real data, must leave every table as it was.
it('rehearses a usage batch and a search on each connection and leaves every table exactly as it was', async () => {
  const update = new NodePatternUpdateEffect(migrated.pool);
  const query = new NodePatternQueryEffect(migrated.pool);
  const inserted = await new NodePatternStorageEffect(migrated.pool).executeEffect(
    { operation: 'insert', data: { pattern_name: 'KeptAsItWas', pattern_type: 'code', language: 'go' } },
    { identity: 'warm-up/insert', eventTime: new Date('2026-12-01T10:00:00Z') },
  );
  const patternId = (inserted.data as { pattern_id: string }).pattern_id;
  await update.executeEffect(
    { operation: 'record_usage', pattern_id: patternId, usage_data: { success: true, execution_time_ms: 5 } },
    { identity: 'warm-up/usage', eventTime: new Date('2026-12-01T10:05:00Z') },
  );
  const tables = async () => {
    const { rows } = await migrated.pool.query<{ table_name: string }>(
      `SELECT table_name FROM information_schema.tables
        WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY table_name`,
    );
    const out: Record<string, string> = {};
    for (const { table_name: t } of rows) {
      // Names from the catalog, not from input.
      const { rows: h } = await migrated.pool.query<{ h: string | null }>(
        `SELECT md5(string_agg(t::text, '|' ORDER BY t::text)) AS h FROM "${t}" t`,
      );
      out[t] = h[0]?.h ?? 'empty';
    }
    return out;
  };
  const before = await tables();
  expect(Object.keys(before)).toEqual(
    expect.arrayContaining(['pattern_templates', 'pattern_usage_events', 'processed_messages']),
  );
  await Promise.all([
    ...Array.from({ length: 4 }, () => update.rehearse()),
    ...Array.from({ length: 2 }, () => query.rehearse()),
  ]);
  expect(await tables()).toEqual(before);
});

it('rejects a rehearsal the database cannot run (migrations pending), so the worker can report it', async () => {
  await expect(new NodePatternUpdateEffect(empty.pool).rehearse()).rejects.toThrow(
    /relation "pattern_templates" does not exist/,
  );
  expect(empty.pool.idleCount).toBe(empty.pool.totalCount);
});
