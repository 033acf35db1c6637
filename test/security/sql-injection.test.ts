// SQL is always parameterised: every query text the four nodes send is recorded (pg.Client's query is
// wrapped) while every operation runs with requests whose every string field, filter value, JSON key,
// identity and id carries a unique marker. A marker may reach the database only as a parameter; if one
// ever appears in a query text, that text was built from request values and the test fails.
import { randomBytes, randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { ModelResult } from '../../src/contracts/results.ts';
import { createNodes } from '../../src/messaging/stages/dispatch.ts';
import type { Nodes } from '../../src/messaging/stages/dispatch.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';

interface Recorded {
  text: string;
  values: unknown[];
}
const recorded: Recorded[] = [];
// Kept to be restored and called with the client as `this`.
// eslint-disable-next-line @typescript-eslint/unbound-method
const originalQuery = pg.Client.prototype.query;
let db: TestDatabase;
let nodes: Nodes;

beforeAll(async () => {
  db = await createTestDatabase();
  // Every query of every client goes through the prototype (pool.query included).
  pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
    const [first, second] = args;
    const text = typeof first === 'string' ? first : ((first as { text?: string }).text ?? '');
    const values = Array.isArray(second) ? second : ((first as { values?: unknown[] }).values ?? []);
    recorded.push({ text, values });
    return (originalQuery as (...a: unknown[]) => unknown).apply(this, args);
  } as typeof pg.Client.prototype.query;
  nodes = createNodes(db.pool);
});
afterAll(async () => {
  pg.Client.prototype.query = originalQuery;
  await db.drop();
});

const run = randomBytes(3).toString('hex');
let counter = 0;
const markers: string[] = [];
/** A unique marker wrapped in injection syntax; the core alone is what the check looks for. */
function m(prefix = ''): string {
  const core = `zq${run}m${counter++}x`;
  markers.push(core);
  return `${prefix}${core}'); DROP TABLE x;--"\\`;
}
/** An id that is a valid UUID and still unique enough to be found in a text. */
function id(): string {
  const u = randomUUID();
  markers.push(u);
  return u;
}

it('never puts a request value into query text, across every operation', async () => {
  const a = id();
  const b = id();
  const ok = (r: ModelResult, what: string) =>
    expect({ what, error: r.error }).toEqual({ what, error: null });
  const context = () => {
    const identity = m('identity:');
    return { identity, eventTime: new Date() };
  };
  const pattern = (patternId?: string) => ({
    ...(patternId ? { pattern_id: patternId } : {}),
    pattern_name: m('Name'),
    pattern_type: m(),
    language: m(),
    category: m(),
    template_code: m(),
    description: m(),
    example_usage: m(),
    source: m(),
    created_by: m(),
    tags: [m(), m()],
    context: { [m('key')]: m(), nested: { [m()]: [m()] } },
    confidence_score: 0.7,
  });
  const filters = () => ({
    language: m(),
    pattern_type: m(),
    category: m(),
    tags: [m()],
    min_confidence_score: 0.1,
  });
  const { storage, query, update, analytics } = nodes;
  const exec = {
    storage: (r: Record<string, unknown>) => storage.executeEffect(r as never, context()),
    query: (r: Record<string, unknown>) => query.executeEffect(r as never, context()),
    update: (r: Record<string, unknown>) => update.executeEffect(r as never, context()),
    analytics: (r: Record<string, unknown>) => analytics.executeEffect(r as never, context()),
  };

  ok(await exec.storage({ operation: 'insert', correlation_id: id(), data: pattern(a) }), 'insert a');
  ok(await exec.storage({ operation: 'insert', correlation_id: id(), data: pattern(b) }), 'insert b');
  ok(
    await exec.storage({
      operation: 'batch_insert',
      correlation_id: id(),
      patterns: [pattern(), pattern(id())],
    }),
    'batch',
  );
  ok(
    await exec.storage({
      operation: 'update',
      pattern_id: a,
      data: { description: m(), tags: [m()], context: { [m()]: m() } },
    }),
    'update',
  );
  const usage = () => ({
    file_path: m('/src/'),
    project_id: m(),
    success: true,
    execution_time_ms: 12,
    error_message: m(),
    quality_before: 0.4,
    quality_after: 0.6,
    tags: [m()],
    context: { [m()]: m() },
  });
  ok(
    await exec.update({
      operation: 'record_usage',
      correlation_id: id(),
      pattern_id: a,
      usage_data: usage(),
    }),
    'usage',
  );
  const batch = await update.recordUsageBatch(
    [1, 2, 3].map(() => ({
      request: {
        operation: 'record_usage',
        correlation_id: id(),
        pattern_id: b,
        usage_data: usage(),
      } as never,
      context: context(),
    })),
  );
  batch.forEach((r, i) => ok(r, `usage batch ${i}`));
  ok(await exec.update({ operation: 'update_stats', pattern_id: a }), 'update_stats');
  const relationship = {
    source_pattern_id: a,
    target_pattern_id: b,
    relationship_type: 'similar',
    strength: 0.4,
    description: m(),
    context: { [m()]: m() },
  };
  ok(
    await exec.update({ operation: 'create_relationship', relationship_data: relationship }),
    'create_relationship',
  );
  ok(
    await exec.update({
      operation: 'update_relationship',
      relationship_data: { ...relationship, description: m() },
    }),
    'update_relationship',
  );

  ok(
    await exec.query({ operation: 'search', search_query: m(), filters: filters(), limit: 7, offset: 3 }),
    'search',
  );
  ok(await exec.query({ operation: 'get_by_id', pattern_id: a }), 'get_by_id');
  ok(await exec.query({ operation: 'filter', filters: filters() }), 'filter');
  ok(await exec.query({ operation: 'get_related', pattern_id: a }), 'get_related');
  ok(await exec.query({ operation: 'get_top', filters: filters() }), 'get_top');
  ok(
    await exec.query({ operation: 'get_by_type', filters: { ...filters(), include_deprecated: true } }),
    'get_by_type',
  );

  const period = { period_start: '2026-01-01T00:00:00Z', period_end: '2026-12-31T00:00:00Z' };
  ok(await exec.analytics({ operation: 'compute_analytics', pattern_id: a, ...period }), 'compute_analytics');
  ok(
    await exec.analytics({ operation: 'get_usage_trends', pattern_id: a, aggregate_by: 'week', ...period }),
    'trends',
  );
  ok(await exec.analytics({ operation: 'get_quality_trends', pattern_id: b }), 'quality');
  ok(await exec.analytics({ operation: 'get_effectiveness' }), 'effectiveness');
  ok(await exec.analytics({ operation: 'get_global_stats', ...period }), 'global');
  ok(await exec.storage({ operation: 'delete', pattern_id: b }), 'delete');

  // The markers did reach the database, as parameters.
  const parameters = JSON.stringify(recorded.map((r) => r.values));
  const asParameters = markers.filter((marker) => parameters.includes(marker));
  expect(asParameters.length).toBeGreaterThan(markers.length * 0.8);
  // And never as SQL text.
  const leaks = recorded.flatMap((r) =>
    markers
      .filter((marker) => r.text.includes(marker))
      .map((marker) => ({ marker, text: r.text.slice(0, 300) })),
  );
  expect(leaks).toEqual([]);
  expect(recorded.length).toBeGreaterThan(40);
  // The hostile text is stored verbatim: the tables are all still there.
  const { rows } = await db.pool.query<{ n: number }>('SELECT count(*) AS n FROM pattern_templates');
  expect(rows[0]?.n).toBe(3);
});
