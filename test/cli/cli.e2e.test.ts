// The `patterns` command line against a worker process, and replay for backfill (issue "Using it").
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { PatternClient } from '../../src/client/index.ts';
import type { ModelResult } from '../../src/contracts/results.ts';
import type { Pool } from '../../src/db/pool.ts';
import { patterns, type Run } from '../support/cli.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { brokers } from '../support/kafka.ts';
import { createStack, type Stack } from '../support/stack.ts';

vi.setConfig({ testTimeout: 120_000 });
const resultOf = (run: Run) => JSON.parse(run.stdout) as ModelResult<Record<string, unknown>>;

/** Everything a replay must rebuild, in a stable order. */
async function snapshot(pool: Pool) {
  const q = async (sql: string): Promise<unknown[]> => (await pool.query(sql)).rows as unknown[];
  return {
    patterns: await q(`SELECT id, pattern_name, description, confidence_score, usage_count, success_count,
                              success_rate, avg_quality_improvement, is_deprecated, tags, discovered_at, updated_at,
                              last_used_at FROM pattern_templates ORDER BY id`),
    events:
      await q(`SELECT id, pattern_id, success, quality_before, quality_after, quality_improvement, used_at
                       FROM pattern_usage_events ORDER BY id`),
    daily: await q('SELECT * FROM pattern_usage_daily ORDER BY pattern_id, day'),
    relationships: await q(
      'SELECT id, source_pattern_id, target_pattern_id, relationship_type, strength FROM pattern_relationships ORDER BY id',
    ),
    analytics:
      await q(`SELECT pattern_id, total_usage_count, success_rate, average_quality_improvement, computed_at
                          FROM pattern_analytics ORDER BY pattern_id NULLS FIRST, period_start`),
  };
}

describe('patterns CLI and replay', () => {
  let stack: Stack;
  let env: Record<string, string>;
  beforeAll(async () => {
    stack = await createStack({ partitions: 2 });
    await stack.worker();
    env = { ...stack.env, LOG_LEVEL: 'warn' };
  });
  afterAll(async () => stack.close());

  it('runs the seed README examples through Kafka and prints the results as JSON', async () => {
    const inserted = await patterns(
      env,
      'insert',
      '--name',
      'AsyncDatabaseWriterPattern',
      '--language',
      'python',
      '--description',
      'Writes to a database asynchronously',
      '--template',
      'async def write(conn, row): await conn.execute(...)',
      '--confidence',
      '0.92',
      '--tags',
      'async,database',
    );
    expect(inserted.code, inserted.stderr).toBe(0);
    const id = resultOf(inserted).data?.pattern_id as string;
    expect(id).toMatch(/^[0-9a-f-]{36}$/);

    const found = await patterns(
      env,
      'search',
      'async database',
      '--language',
      'python',
      '--min-confidence',
      '0.8',
    );
    expect(found.code).toBe(0);
    expect((resultOf(found).data as unknown as { pattern_id: string }[])[0]?.pattern_id).toBe(id);

    const used = await patterns(
      env,
      'usage',
      id,
      '--success',
      '--quality-before',
      '0.65',
      '--quality-after',
      '0.88',
    );
    expect(used.code).toBe(0);
    expect(resultOf(used).data?.quality_improvement).toBeCloseTo(0.23, 6);

    const analytics = await patterns(env, 'analytics', id);
    expect(analytics.code).toBe(0);
    expect(resultOf(analytics).data).toMatchObject({ total_usage_count: 1, success_rate: 1 });
    expect(resultOf(analytics).data?.average_quality_improvement).toBeCloseTo(0.23, 6);
  });

  it('exits non-zero on failed results, bad input and missing replies', async () => {
    const missing = await patterns(env, 'usage', randomUUID(), '--failure');
    expect(missing.code).toBe(1);
    expect(resultOf(missing).success).toBe(false);
    expect(resultOf(missing).error?.code).toBe('INVALID_REFERENCE');

    const invalid = await patterns(env, 'search', 'x', '--min-confidence', '7');
    expect(invalid.code).toBe(2);
    expect(invalid.stderr).toContain('min_confidence_score');

    const noFlag = await patterns(env, 'usage', randomUUID());
    expect(noFlag.code).toBe(2);
    expect(noFlag.stderr).toContain('--success or --failure');

    const noWorker = await patterns(
      { ...env, TOPIC_PREFIX: `${stack.names.prefix}nobody.` },
      'search',
      'x',
      '--timeout',
      '500',
    );
    expect(noWorker.code).toBe(1);
    expect(noWorker.stderr).toMatch(/pattern\.search\.request.* not exist/);
  });

  it('replays onto the populated database without changing it, then rebuilds a fresh one', async () => {
    const client = await new PatternClient({ brokers: brokers(), topicPrefix: stack.names.prefix }).connect();
    let fresh: TestDatabase | undefined;
    try {
      // A live workload: derived and explicit ids, a batch, usage, relationships, an update, a delete.
      const explicit = randomUUID();
      const a = await client.insert({
        data: { pattern_name: 'ReplayA', pattern_type: 'code', language: 'go' },
      });
      await client.insert({
        data: { pattern_id: explicit, pattern_name: 'ReplayB', pattern_type: 'code', language: 'go' },
      });
      const batch = await client.batchInsert({
        patterns: [1, 2, 3].map((i) => ({
          pattern_name: `ReplayBatch${i}`,
          pattern_type: 'code',
          language: 'rust',
        })),
      });
      const ids = [a.data?.pattern_id, explicit, ...(batch.data?.pattern_ids ?? [])] as string[];
      await Promise.all(
        Array.from({ length: 120 }, (_, i) =>
          client.recordUsage({
            pattern_id: ids[i % ids.length] as string,
            usage_data: { success: i % 3 !== 0, quality_before: 0.5, quality_after: 0.5 + (i % 5) / 10 },
          }),
        ),
      );
      await client.createRelationship({
        relationship_data: {
          source_pattern_id: ids[0]!,
          target_pattern_id: ids[1]!,
          relationship_type: 'extends',
        },
      });
      await client.update({ pattern_id: explicit, data: { description: 'changed later' } });
      await client.delete({ pattern_id: ids[4]! });
      await client.computeAnalytics({});
      const live = await snapshot(stack.db.pool);
      expect(live.events.length).toBeGreaterThan(90);

      // Results go to result topics or, for these client requests, to the reply topic: count both.
      const outputs = [
        ...stack.names
          .all()
          .filter((t) => t.role === 'result')
          .map((t) => t.name),
        stack.names.reply(),
      ];
      const admin = stack.kafka.admin();
      await admin.connect();
      const resultCount = async () => {
        let total = 0;
        for (const topic of outputs) {
          for (const p of await admin.fetchTopicOffsets(topic)) total += Number(p.high);
        }
        return total;
      };
      const before = await resultCount();
      const again = await patterns(env, 'replay', '--from', 'earliest');
      expect(again.code, again.stderr).toBe(0);
      // The stack's worker runs with the same KAFKA_GROUP_ID: with no explicit rate, the replay takes the
      // budget beside live lanes (WORKER_REPLAY_LIVE_MAX_RATE, 500 by default) and names the groups it saw.
      expect(again.stdout).toMatch(
        /budget 1 in flight, at most 500 messages\/s while live lanes run \([^)]*worker\.writes/,
      );
      // The usage of an unknown pattern from the test above was refused live: it is not applied again.
      expect(again.stdout).toMatch(
        /applied 0, already applied \d+, dead-lettered 0, refused 1 \(INVALID_REFERENCE 1; 1 as live\)/,
      );
      expect(await snapshot(stack.db.pool)).toEqual(live);
      // By default a replay publishes no results; --publish-results republishes them (as duplicates here).
      expect(await resultCount()).toBe(before);
      // The rate budget reaches the replay: every message of the history at 20 per second.
      const t0 = Date.now();
      const paced = await patterns(env, 'replay', '--from', 'earliest', '--max-rate', '20');
      const pacedSeconds = (Date.now() - t0) / 1000;
      expect(paced.code, paced.stderr).toBe(0);
      expect(paced.stdout).toContain('at most 20 messages/s');
      const total = Number(/replay done in [\d.]+ s: (\d+) messages/.exec(paced.stdout)?.[1]);
      expect(total).toBeGreaterThan(20);
      // A tenth of a second's worth may start at once; the rest wait for the budget.
      expect(pacedSeconds).toBeGreaterThan((total - 2) / 20);
      const published = await patterns(
        env,
        'replay',
        '--from',
        'earliest',
        '--topics',
        'pattern.analytics.compute',
        '--publish-results',
      );
      expect(published.stdout).toContain('already applied 2');
      await vi.waitFor(async () => expect(await resultCount()).toBe(before + 2), { timeout: 10_000 });
      await admin.disconnect();

      fresh = await createTestDatabase();
      const rebuilt = await patterns({ ...env, DATABASE_URL: fresh.url }, 'replay', '--from', 'earliest');
      expect(rebuilt.code, rebuilt.stderr).toBe(0);
      expect(rebuilt.stdout, rebuilt.stderr).toMatch(/already applied 0, dead-lettered 0, refused 1 /);
      // Without a TTY, progress is logged as lines with counts, rate and ETA.
      expect(rebuilt.stderr).toMatch(/pattern\.usage +\d+\/\d+ 100\.0% \| [\d.k]+ msg\/s \| ETA/);
      expect(await snapshot(fresh.pool)).toEqual(live);
    } finally {
      await client.close();
      await fresh?.drop();
    }
  });

  it('replays a time window with --from/--to and names bad options', async () => {
    const future = new Date(Date.now() + 3_600_000).toISOString();
    const none = await patterns(env, 'replay', '--from', future);
    expect(none.code, none.stderr).toBe(0);
    expect(none.stdout).toContain('replay done');
    expect(none.stdout).toContain(': 0 messages');

    const bad = await patterns(env, 'replay', '--from', 'earliest', '--topics', 'pattern.nope');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('unknown topic pattern.nope');
  });
});
