// Every operation of the four nodes against the real PostgreSQL, with their error paths.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RequestInputOf } from '../../src/contracts/requests.ts';
import type { ModelResult } from '../../src/contracts/results.ts';
import {
  NodePatternAnalyticsEffect,
  NodePatternQueryEffect,
  NodePatternStorageEffect,
  NodePatternUpdateEffect,
} from '../../src/nodes/index.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';

let db: TestDatabase;
let storage: NodePatternStorageEffect;
let query: NodePatternQueryEffect;
let update: NodePatternUpdateEffect;
let analytics: NodePatternAnalyticsEffect;

type Data = Record<string, unknown>;
const data = (r: ModelResult) => r.data as Data;
const list = (r: ModelResult) => r.data as Data[];
const NOW = new Date('2026-06-15T12:00:00Z');
const later = { eventTime: new Date(NOW.getTime() + 60_000) };
const ctx = (identity?: string) => (identity ? { identity, eventTime: NOW } : { eventTime: NOW });

// The nodes accept wire-shaped input; defaults (limit, offset) are filled by validation.
const asStorage = (r: RequestInputOf<'insert' | 'update' | 'delete' | 'batch_insert'>) => r as never;

beforeAll(async () => {
  db = await createTestDatabase();
  storage = new NodePatternStorageEffect(db.pool);
  query = new NodePatternQueryEffect(db.pool);
  update = new NodePatternUpdateEffect(db.pool);
  analytics = new NodePatternAnalyticsEffect(db.pool);
});
afterAll(async () => {
  await db.drop();
});

describe("the seed's four README examples", () => {
  let patternId: string;

  it('1. inserts AsyncDatabaseWriterPattern', async () => {
    const result = await storage.executeEffect(
      asStorage({
        operation: 'insert',
        correlation_id: randomUUID(),
        data: {
          pattern_name: 'AsyncDatabaseWriterPattern',
          pattern_type: 'code',
          language: 'python',
          template_code: 'async def execute_effect(self, contract): ...',
          confidence_score: 0.92,
          tags: ['onex', 'effect', 'database'],
          context: { framework: 'onex', version: '1.0' },
        },
      }),
    );
    expect(result.success).toBe(true);
    expect(result.metadata).toMatchObject({ operation: 'insert', node: 'NodePatternStorageEffect' });
    expect(data(result)).toMatchObject({ pattern_name: 'AsyncDatabaseWriterPattern' });
    patternId = data(result).pattern_id as string;
  });

  it('2. finds it searching "async database" in python with confidence >= 0.8', async () => {
    const result = await query.executeEffect({
      operation: 'search',
      search_query: 'async database',
      filters: { language: 'python', min_confidence_score: 0.8 },
      limit: 10,
    } as never);
    expect(result.success).toBe(true);
    expect(list(result).map((p) => [p.pattern_name, p.confidence_score])).toEqual([
      ['AsyncDatabaseWriterPattern', 0.92],
    ]);
    const stricter = await query.executeEffect({
      operation: 'search',
      search_query: 'async database',
      filters: { min_confidence_score: 0.95 },
    } as never);
    expect(list(stricter)).toEqual([]);
  });

  it('3. records usage 0.65 -> 0.88 with improvement 0.23', async () => {
    const result = await update.executeEffect(
      {
        operation: 'record_usage',
        pattern_id: patternId,
        usage_data: {
          file_path: '/project/api/database.py',
          success: true,
          execution_time_ms: 125,
          quality_before: 0.65,
          quality_after: 0.88,
          tags: ['production'],
        },
      } as never,
      ctx(),
    );
    expect(result.success).toBe(true);
    expect(data(result).quality_improvement).toBe(0.23);
    expect(data(result).event_id).toEqual(expect.any(String));
  });

  it('4. computes 30-day analytics: 1 use, success rate 1, average improvement 0.23', async () => {
    const result = await analytics.executeEffect(
      { operation: 'compute_analytics', pattern_id: patternId } as never,
      later,
    );
    expect(result.success).toBe(true);
    expect(data(result)).toMatchObject({
      total_usage_count: 1,
      success_rate: 1,
      average_quality_improvement: 0.23,
    });
  });
});

describe('NodePatternStorageEffect', () => {
  const base = { pattern_type: 'code', language: 'typescript' };

  it('insert takes a caller-given id and event time, and derives ids from the message identity', async () => {
    const given = randomUUID();
    const a = await storage.executeEffect(
      asStorage({
        operation: 'insert',
        data: { ...base, pattern_name: 'Given', pattern_id: given, discovered_at: '2026-01-01T00:00:00Z' },
      }),
    );
    expect(data(a)).toMatchObject({ pattern_id: given });
    expect(new Date(data(a).discovered_at as string).toISOString()).toBe('2026-01-01T00:00:00.000Z');

    const b = await storage.executeEffect(
      asStorage({ operation: 'insert', data: { ...base, pattern_name: 'Derived' } }),
      ctx('cid:x-1'),
    );
    expect(new Date(data(b).discovered_at as string).toISOString()).toBe(NOW.toISOString());
    // Same identity again: no second row, same result, marked duplicate.
    const again = await storage.executeEffect(
      asStorage({ operation: 'insert', data: { ...base, pattern_name: 'Derived' } }),
      ctx('cid:x-1'),
    );
    expect(again.metadata.duplicate).toBe(true);
    expect(JSON.parse(JSON.stringify(again.data))).toEqual(JSON.parse(JSON.stringify(b.data)));
  });

  it('insert of an existing name and language is a CONFLICT; a missing parent is INVALID_REFERENCE', async () => {
    const dup = await storage.executeEffect(
      asStorage({ operation: 'insert', data: { ...base, pattern_name: 'Given' } }),
    );
    expect(dup.error).toMatchObject({ code: 'CONFLICT' });
    const orphan = await storage.executeEffect(
      asStorage({
        operation: 'insert',
        data: { ...base, pattern_name: 'Orphan', parent_pattern_id: randomUUID() },
      }),
    );
    expect(orphan.error).toMatchObject({ code: 'INVALID_REFERENCE' });
    expect(JSON.stringify(orphan)).not.toMatch(/INSERT|SELECT|VALUES|\$1/);
  });

  it('update sets only whitelisted fields and reports them; unknown fields and missing rows are errors', async () => {
    const { rows } = await db.pool.query<{ id: string }>(
      `SELECT id FROM pattern_templates WHERE pattern_name = 'Given'`,
    );
    const id = rows[0]?.id as string;
    const ok = await storage.executeEffect(
      asStorage({ operation: 'update', pattern_id: id, data: { description: 'd', confidence_score: 0 } }),
    );
    expect(data(ok).fields_updated).toEqual(['description', 'confidence_score']);
    const { rows: after } = await db.pool.query(
      `SELECT confidence_score FROM pattern_templates WHERE id = $1`,
      [id],
    );
    expect(after[0]).toEqual({ confidence_score: 0 });

    const bad = await storage.executeEffect(
      asStorage({ operation: 'update', pattern_id: id, data: { usage_count: 5 } as never }),
    );
    expect(bad.error).toMatchObject({
      code: 'VALIDATION_ERROR',
      message: expect.stringContaining('usage_count') as unknown,
    });
    const missing = await storage.executeEffect(
      asStorage({ operation: 'update', pattern_id: randomUUID(), data: { description: 'x' } }),
    );
    expect(missing.error).toMatchObject({ code: 'NOT_FOUND' });
  });

  it('batch_insert is all or nothing', async () => {
    const ok = await storage.executeEffect(
      asStorage({
        operation: 'batch_insert',
        patterns: [1, 2, 3].map((i) => ({ ...base, pattern_name: `Batch${i}` })),
      }),
      ctx('cid:batch-1'),
    );
    expect(data(ok)).toMatchObject({ count: 3 });
    expect(new Set(data(ok).pattern_ids as string[]).size).toBe(3);

    const clash = await storage.executeEffect(
      asStorage({
        operation: 'batch_insert',
        patterns: [
          { ...base, pattern_name: 'Batch4' },
          { ...base, pattern_name: 'Batch1' },
        ],
      }),
    );
    expect(clash.error).toMatchObject({ code: 'CONFLICT' });
    const { rows } = await db.pool.query(`SELECT 1 FROM pattern_templates WHERE pattern_name = 'Batch4'`);
    expect(rows).toHaveLength(0);
  });

  it('delete removes a pattern once, then NOT_FOUND', async () => {
    const { rows } = await db.pool.query<{ id: string }>(
      `SELECT id FROM pattern_templates WHERE pattern_name = 'Batch3'`,
    );
    const id = rows[0]?.id as string;
    expect(
      (await storage.executeEffect(asStorage({ operation: 'delete', pattern_id: id }))).data,
    ).toMatchObject({ deleted: true });
    expect(
      (await storage.executeEffect(asStorage({ operation: 'delete', pattern_id: id }))).error,
    ).toMatchObject({ code: 'NOT_FOUND' });
  });
});

describe('NodePatternQueryEffect', () => {
  let ids: string[];

  beforeAll(async () => {
    const res = await storage.executeEffect(
      asStorage({
        operation: 'batch_insert',
        patterns: [
          {
            pattern_name: 'CircuitBreaker',
            pattern_type: 'resilience',
            language: 'go',
            confidence_score: 0.9,
            tags: ['net', 'retry'],
            description: 'stops calling a failing service',
          },
          {
            pattern_name: 'RetryPolicy',
            pattern_type: 'resilience',
            language: 'go',
            confidence_score: 0.7,
            tags: ['retry'],
          },
          {
            pattern_name: 'OldRetry',
            pattern_type: 'resilience',
            language: 'go',
            confidence_score: 0.95,
            is_deprecated: true,
            tags: ['retry'],
          },
        ],
      }),
    );
    ids = data(res).pattern_ids as string[];
  });

  it('get_by_id returns the pattern, NOT_FOUND otherwise', async () => {
    expect(
      data(await query.executeEffect({ operation: 'get_by_id', pattern_id: ids[0] } as never)),
    ).toMatchObject({ pattern_name: 'CircuitBreaker' });
    expect(
      (await query.executeEffect({ operation: 'get_by_id', pattern_id: randomUUID() } as never)).error,
    ).toMatchObject({ code: 'NOT_FOUND' });
  });

  it('search ranks, honours filters and skips deprecated unless asked', async () => {
    const names = async (filters: Record<string, unknown>) =>
      list(await query.executeEffect({ operation: 'search', search_query: 'retry', filters } as never)).map(
        (p) => p.pattern_name,
      );
    expect(await names({ language: 'go' })).toEqual(
      expect.arrayContaining(['RetryPolicy', 'CircuitBreaker']),
    );
    expect(await names({ language: 'go' })).not.toContain('OldRetry');
    expect(await names({ language: 'go', include_deprecated: true })).toContain('OldRetry');
    expect(await names({ tags: ['net'] })).toEqual(['CircuitBreaker']);
    expect(await names({ min_confidence_score: 0.8 })).toEqual(['CircuitBreaker']);
    // A typo still finds by trigram similarity.
    expect(
      list(await query.executeEffect({ operation: 'search', search_query: 'circut breaker' } as never)).map(
        (p) => p.pattern_name,
      ),
    ).toContain('CircuitBreaker');
  });

  it('filter, get_by_type and pagination', async () => {
    const page = async (offset: number) =>
      list(
        await query.executeEffect({
          operation: 'filter',
          filters: { pattern_type: 'resilience' },
          limit: 1,
          offset,
        } as never),
      ).map((p) => p.pattern_name);
    expect([...(await page(0)), ...(await page(1)), ...(await page(2))]).toEqual([
      'CircuitBreaker',
      'RetryPolicy',
    ]);
    const byType = await query.executeEffect({
      operation: 'get_by_type',
      filters: { pattern_type: 'resilience', include_deprecated: true },
    } as never);
    expect(list(byType)).toHaveLength(3);
    const noType = await query.executeEffect({ operation: 'get_by_type', filters: {} } as never);
    expect(noType.error).toMatchObject({
      code: 'VALIDATION_ERROR',
      message: expect.stringContaining('pattern_type') as unknown,
    });
  });

  it('get_related returns outgoing relationships, incoming or both on request, with type and strength', async () => {
    await update.executeEffect({
      operation: 'create_relationship',
      relationship_data: {
        source_pattern_id: ids[0],
        target_pattern_id: ids[1],
        relationship_type: 'complements',
        strength: 0.8,
      },
    } as never);
    await update.executeEffect({
      operation: 'create_relationship',
      relationship_data: {
        source_pattern_id: ids[1],
        target_pattern_id: ids[0],
        relationship_type: 'uses',
        strength: 0.3,
      },
    } as never);
    const related = async (direction?: string) =>
      list(
        await query.executeEffect({ operation: 'get_related', pattern_id: ids[0], direction } as never),
      ).map((r) => [r.pattern_name, r.relationship_type, r.strength, r.direction]);
    // Outgoing by default, as the seed; incoming or both on request.
    expect(await related()).toEqual([['RetryPolicy', 'complements', 0.8, 'outgoing']]);
    expect(await related('incoming')).toEqual([['RetryPolicy', 'uses', 0.3, 'incoming']]);
    expect(await related('both')).toEqual([
      ['RetryPolicy', 'complements', 0.8, 'outgoing'],
      ['RetryPolicy', 'uses', 0.3, 'incoming'],
    ]);
    // Related each way by the same type and strength: pages of one row still give each once.
    await update.executeEffect({
      operation: 'create_relationship',
      relationship_data: {
        source_pattern_id: ids[1],
        target_pattern_id: ids[0],
        relationship_type: 'complements',
        strength: 0.8,
      },
    } as never);
    const pageOfOne = async (offset: number) =>
      list(
        await query.executeEffect({
          operation: 'get_related',
          pattern_id: ids[0],
          direction: 'both',
          limit: 1,
          offset,
        } as never),
      ).map((r) => `${String(r.relationship_type)} ${String(r.direction)}`);
    const pages = [...(await pageOfOne(0)), ...(await pageOfOne(1)), ...(await pageOfOne(2))];
    expect(pages).toEqual(['complements incoming', 'complements outgoing', 'uses incoming']);
  });

  it('get_top ranks used patterns and honours filters', async () => {
    for (let i = 0; i < 3; i++) {
      await update.executeEffect({
        operation: 'record_usage',
        pattern_id: ids[1],
        usage_data: { success: true },
      } as never);
    }
    await update.executeEffect({
      operation: 'record_usage',
      pattern_id: ids[0],
      usage_data: { success: false },
    } as never);
    const top = list(
      await query.executeEffect({ operation: 'get_top', filters: { language: 'go' } } as never),
    );
    expect(top.map((p) => p.pattern_name)).toEqual(['RetryPolicy', 'CircuitBreaker']);
    expect(
      list(await query.executeEffect({ operation: 'get_top', filters: { language: 'rust' } } as never)),
    ).toEqual([]);
  });
});

describe('NodePatternUpdateEffect', () => {
  let id: string;
  beforeAll(async () => {
    const r = await storage.executeEffect(
      asStorage({
        operation: 'insert',
        data: { pattern_name: 'Usage', pattern_type: 'code', language: 'c' },
      }),
    );
    id = data(r).pattern_id as string;
  });

  it('record_usage of a missing pattern is INVALID_REFERENCE; zero improvement stays 0', async () => {
    const missing = await update.executeEffect({
      operation: 'record_usage',
      pattern_id: randomUUID(),
      usage_data: { success: true },
    } as never);
    expect(missing.error).toMatchObject({ code: 'INVALID_REFERENCE' });
    const zero = await update.executeEffect({
      operation: 'record_usage',
      pattern_id: id,
      usage_data: { success: true, quality_before: 0.5, quality_after: 0.5 },
    } as never);
    expect(data(zero).quality_improvement).toBe(0);
  });

  it('recordUsageBatch applies many events in one transaction, exactly once per identity, in order', async () => {
    const item = (n: number, identity: string, patternId = id) => ({
      request: {
        operation: 'record_usage' as const,
        pattern_id: patternId,
        usage_data: { success: n % 2 === 0, execution_time_ms: n },
      },
      context: { identity, eventTime: NOW, validated: true },
    });
    const first = await update.recordUsageBatch([
      item(1, 'u1'),
      item(2, 'u2'),
      item(3, 'u3', randomUUID()),
      item(4, 'u2'),
    ]);
    expect(first.map((r) => [r.success, r.metadata.duplicate ?? false])).toEqual([
      [true, false],
      [true, false],
      [false, false],
      // u2 again with another request: the correlation id was reused, so it is refused (issue 17).
      [false, false],
    ]);
    expect(first[2]?.error).toMatchObject({ code: 'INVALID_REFERENCE' });
    expect(first[3]?.error).toMatchObject({ code: 'CONFLICT', details: { reason: 'correlation_id_reused' } });
    const again = await update.recordUsageBatch([item(1, 'u1'), item(2, 'u2'), item(5, 'u5')]);
    expect(again.map((r) => r.metadata.duplicate ?? false)).toEqual([true, true, false]);
    expect(again[0]?.data).toEqual(JSON.parse(JSON.stringify(first[0]?.data)));
    const { rows } = await db.pool.query('SELECT usage_count FROM pattern_templates WHERE id = $1', [id]);
    expect(rows[0]).toEqual({ usage_count: 1 + 3 });
  });

  it('update_stats recomputes; create_relationship upserts; update_relationship changes or is NOT_FOUND', async () => {
    const stats = await update.executeEffect({ operation: 'update_stats', pattern_id: id } as never);
    expect(data(stats)).toMatchObject({ usage_count: 4 });
    expect(
      (await update.executeEffect({ operation: 'update_stats', pattern_id: randomUUID() } as never)).error,
    ).toMatchObject({ code: 'NOT_FOUND' });

    const other = data(
      await storage.executeEffect(
        asStorage({
          operation: 'insert',
          data: { pattern_name: 'Other', pattern_type: 'code', language: 'c' },
        }),
      ),
    ).pattern_id;
    const rel = { source_pattern_id: id, target_pattern_id: other, relationship_type: 'similar' };
    const created = await update.executeEffect({
      operation: 'create_relationship',
      relationship_data: { ...rel, strength: 0.4 },
    } as never);
    expect(data(created)).toMatchObject({ created: true, strength: 0.4 });
    const upserted = await update.executeEffect({
      operation: 'create_relationship',
      relationship_data: { ...rel, strength: 0.6 },
    } as never);
    expect(data(upserted)).toMatchObject({
      created: false,
      strength: 0.6,
      relationship_id: data(created).relationship_id,
    });
    const changed = await update.executeEffect({
      operation: 'update_relationship',
      relationship_data: { ...rel, description: 'alike' },
    } as never);
    expect(data(changed)).toMatchObject({ strength: 0.6, description: 'alike' });
    const absent = await update.executeEffect({
      operation: 'update_relationship',
      relationship_data: { ...rel, relationship_type: 'extends', strength: 1 },
    } as never);
    expect(absent.error).toMatchObject({ code: 'NOT_FOUND' });
    const self = await update.executeEffect({
      operation: 'create_relationship',
      relationship_data: { ...rel, target_pattern_id: id },
    } as never);
    expect(self.error).toMatchObject({ code: 'VALIDATION_ERROR' });
    const dangling = await update.executeEffect({
      operation: 'create_relationship',
      relationship_data: { ...rel, target_pattern_id: randomUUID() },
    } as never);
    expect(dangling.error).toMatchObject({ code: 'INVALID_REFERENCE' });
  });
});

describe('NodePatternAnalyticsEffect', () => {
  it('answers every read operation for the default period', async () => {
    const usage = await analytics.executeEffect(
      { operation: 'get_usage_trends', aggregate_by: 'month' } as never,
      later,
    );
    expect(usage.success).toBe(true);
    // The seed's shapes (issue 23): trends are lists of periods; test/nodes/analytics-seed.test.ts checks
    // the values on a fixture computed by hand.
    expect((usage.data as Data[]).reduce((n, b) => n + (b.usage_count as number), 0)).toBeGreaterThan(0);
    const quality = await analytics.executeEffect({ operation: 'get_quality_trends' } as never, later);
    expect(quality.data).toEqual(expect.any(Array));
    const eff = await analytics.executeEffect({ operation: 'get_effectiveness', limit: 3 } as never, later);
    expect((data(eff).patterns as Data[]).length).toBeLessThanOrEqual(3);
    const global = await analytics.executeEffect({ operation: 'get_global_stats' } as never, later);
    expect(data(global)).toMatchObject({
      total_patterns: expect.any(Number) as unknown,
      total_usage_events: expect.any(Number) as unknown,
    });
    const missing = await analytics.executeEffect(
      { operation: 'compute_analytics', pattern_id: randomUUID() } as never,
      ctx(),
    );
    expect(missing.error).toMatchObject({ code: 'NOT_FOUND' });
  });
});
