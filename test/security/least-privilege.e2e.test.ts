// Least privilege: on a PostgreSQL cluster this test owns (roles are cluster-wide, so not on the shared
// server), sql/roles/least-privilege.sql creates a migrator role that owns the schema and a worker role
// with data rights only. Migrations run as the migrator; the worker process runs every operation as the
// worker role; and every kind of DDL fails for the worker role with insufficient_privilege.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { createPool, type Pool } from '../../src/db/pool.ts';
import { migrate } from '../../src/db/migrate.ts';
import { createStackRetrying } from '../support/faults.ts';
import { createPgCluster, type PgCluster } from '../support/pg-cluster.ts';
import type { Stack } from '../support/stack.ts';
import { produce, ResultTracker, Workload } from '../support/workload.ts';

vi.setConfig({ testTimeout: 90_000 });

const ROLES_SQL = join(import.meta.dirname, '../../sql/roles/least-privilege.sql');
let cluster: PgCluster;
let stack: Stack;
let admin: Pool;

beforeAll(async () => {
  [cluster, stack] = await Promise.all([createPgCluster(), createStackRetrying({ partitions: 2 })]);
  await cluster.createDatabase('patterns');
  admin = createPool({ connectionString: cluster.url('patterns'), min: 0, max: 2 });
  await admin.query(await readFile(ROLES_SQL, 'utf8'));
  const migrator = createPool({
    connectionString: cluster.url('patterns', 'pattern_migrator'),
    min: 0,
    max: 1,
  });
  try {
    await migrate(migrator);
  } finally {
    await migrator.end();
  }
}, 90_000);
afterAll(async () => {
  await stack?.close();
  await admin?.end().catch(() => undefined);
  await cluster?.destroy();
});

async function asWorker(sql: string): Promise<string> {
  const client = new pg.Client({ connectionString: cluster.url('patterns', 'pattern_worker') });
  await client.connect();
  try {
    await client.query(sql);
    return 'succeeded';
  } catch (err) {
    return (err as { code?: string }).code ?? 'no code';
  } finally {
    await client.end();
  }
}

it('the migrator owns every object; the worker role owns none and has no CREATE anywhere', async () => {
  const { rows } = await admin.query<{ owner: string; n: number }>(
    `SELECT pg_get_userbyid(c.relowner) AS owner, count(*) AS n FROM pg_class c
      JOIN pg_namespace s ON s.oid = c.relnamespace WHERE s.nspname = 'public' GROUP BY 1`,
  );
  expect(rows.map((r) => r.owner)).toEqual(['pattern_migrator']);
  const rights = await admin.query<Record<string, boolean>>(
    `SELECT has_schema_privilege('pattern_worker', 'public', 'CREATE') AS schema_create,
            has_database_privilege('pattern_worker', current_database(), 'CREATE') AS database_create,
            (SELECT rolsuper OR rolcreaterole OR rolcreatedb FROM pg_roles WHERE rolname = 'pattern_worker') AS elevated`,
  );
  expect(rights.rows[0]).toEqual({ schema_create: false, database_create: false, elevated: false });
});

it('runs every operation through the worker process as the worker role', async () => {
  const workload = new Workload({ patterns: 20, usagePerPattern: 3, relationships: 10, searches: 10 });
  const tracker = new ResultTracker(stack.results);
  const worker = await stack.worker({ DATABASE_URL: cluster.url('patterns', 'pattern_worker') });
  await produce(stack.producer, stack.names, workload.inserts);
  await tracker.waitAnswered(workload.inserts, 30_000);
  await produce(stack.producer, stack.names, workload.followUps);
  await tracker.waitAnswered(workload.all, 60_000);
  const figures = await workload.check(admin, tracker, stack.names);
  expect(figures.problems).toEqual([]);
  const [a, b] = workload.patternIds as [string, string];
  const more = [
    {
      topic: 'pattern.insert',
      body: { operation: 'update', pattern_id: a, data: { description: 'least privilege' } },
    },
    { topic: 'pattern.usage', body: { operation: 'update_stats', pattern_id: a } },
    {
      topic: 'pattern.usage',
      body: {
        operation: 'update_relationship',
        relationship_data: {
          source_pattern_id: a,
          target_pattern_id: b,
          relationship_type: 'similar',
          strength: 0.9,
        },
      },
    },
    { topic: 'pattern.search.request', body: { operation: 'get_related', pattern_id: a } },
    { topic: 'pattern.search.request', body: { operation: 'get_top' } },
    { topic: 'pattern.analytics.compute', body: { operation: 'compute_analytics', pattern_id: a } },
    { topic: 'pattern.analytics.compute', body: { operation: 'get_usage_trends', aggregate_by: 'week' } },
    { topic: 'pattern.analytics.compute', body: { operation: 'get_quality_trends' } },
    { topic: 'pattern.analytics.compute', body: { operation: 'get_effectiveness' } },
    { topic: 'pattern.analytics.compute', body: { operation: 'get_global_stats' } },
  ] as const;
  const cids = more.map(() => randomUUID());
  for (const [i, r] of more.entries()) {
    await stack.send(r.topic, [{ ...r.body, correlation_id: cids[i] }]);
  }
  await stack.results.waitFor(
    () => (tracker.update(), cids.every((c) => tracker.byCid.has(c))),
    30_000,
    'the other operations',
  );
  const outcomes = cids.map((c, i) => {
    const result = tracker.byCid.get(c)?.[0]?.result;
    return [more[i]?.body.operation, result?.success, result?.error?.code ?? null];
  });
  expect(outcomes).toEqual(more.map((r) => [r.body.operation, true, null]));
  expect((await worker.readyz()).status).toBe(200);
});

it('refuses every kind of DDL to the worker role', async () => {
  const statements = [
    'CREATE TABLE evil (id int)',
    'CREATE TEMP TABLE scratch (id int) ; CREATE TABLE public.evil2 (id int)',
    'DROP TABLE pattern_usage_events',
    'ALTER TABLE pattern_templates ADD COLUMN evil int',
    'TRUNCATE processed_messages',
    'CREATE INDEX evil_idx ON pattern_templates (pattern_name)',
    `CREATE FUNCTION evil() RETURNS int LANGUAGE sql AS 'SELECT 1'`,
    'DROP FUNCTION update_pattern_stats() CASCADE',
    'CREATE OR REPLACE VIEW v_top_patterns AS SELECT 1 AS x',
    'CREATE SCHEMA evil',
    'CREATE EXTENSION IF NOT EXISTS hstore',
    `CREATE TRIGGER evil AFTER INSERT ON pattern_templates FOR EACH ROW EXECUTE FUNCTION update_pattern_stats()`,
    'ALTER ROLE pattern_worker SUPERUSER',
    'DELETE FROM schema_migrations; DROP TABLE schema_migrations',
  ];
  const outcomes = [];
  for (const sql of statements) outcomes.push([sql, await asWorker(sql)]);
  expect(outcomes).toEqual(statements.map((sql) => [sql, '42501']));
  // Nothing was dropped along the way.
  const { rows } = await admin.query<{ n: number }>(
    `SELECT count(*) AS n FROM information_schema.tables WHERE table_schema = 'public' AND table_name IN
       ('pattern_templates', 'pattern_usage_events', 'processed_messages', 'schema_migrations')`,
  );
  expect(rows[0]?.n).toBe(4);
});
