// A replacement worker warms its connections before it joins its groups (src/app.ts): the pool must hold
// that many open connections afterwards, and a database it cannot warm must not stop the worker.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { warmUpPool } from '../../src/db/pool.ts';
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
