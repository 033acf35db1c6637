// Contract edges at the node level, over a fresh migrated database: valid input never ends as INTERNAL,
// ids are normalised, text is clean, NOT NULL columns cannot be nulled, and messages share one style.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ModelResult } from '../../src/contracts/results.ts';
import {
  NodePatternQueryEffect,
  NodePatternStorageEffect,
  NodePatternUpdateEffect,
} from '../../src/nodes/index.ts';
import { cp, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_MIGRATIONS_DIR, migrate } from '../../src/db/migrate.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';

let db: TestDatabase;
let storage: NodePatternStorageEffect;
let query: NodePatternQueryEffect;
let update: NodePatternUpdateEffect;

const base = (name: string) => ({ pattern_name: name, pattern_type: 'code', language: 'go' });
const issues = (r: ModelResult) => (r.error?.details?.issues ?? []) as { path: string; message: string }[];

beforeAll(async () => {
  db = await createTestDatabase();
  storage = new NodePatternStorageEffect(db.pool);
  query = new NodePatternQueryEffect(db.pool);
  update = new NodePatternUpdateEffect(db.pool);
});
afterAll(async () => {
  await db.drop();
});

describe('ids in upper case', () => {
  it('insert and batch_insert accept an upper-case pattern_id and store it in lower case', async () => {
    const id = randomUUID();
    const inserted = await storage.executeEffect({
      operation: 'insert',
      data: { ...base('UpperCaseId'), pattern_id: id.toUpperCase() },
    } as never);
    expect(inserted.error).toBeNull();
    expect((inserted.data as { pattern_id: string }).pattern_id).toBe(id);
    const batchId = randomUUID();
    const batch = await storage.executeEffect({
      operation: 'batch_insert',
      patterns: [{ ...base('UpperCaseBatch'), pattern_id: batchId.toUpperCase() }],
    } as never);
    expect(batch.success).toBe(true);
    const got = await query.executeEffect({
      operation: 'get_by_id',
      pattern_id: batchId.toUpperCase(),
    } as never);
    expect((got.data as { pattern_id: string }).pattern_id).toBe(batchId);
  });

  it('usage and relationships take upper-case ids too', async () => {
    const [a, b] = [randomUUID(), randomUUID()];
    for (const [i, id] of [a, b].entries()) {
      await storage.executeEffect({
        operation: 'insert',
        data: { ...base(`Rel${i}`), pattern_id: id },
      } as never);
    }
    const used = await update.executeEffect({
      operation: 'record_usage',
      pattern_id: a.toUpperCase(),
      usage_data: { success: true },
    } as never);
    expect(used.success).toBe(true);
    const related = await update.executeEffect({
      operation: 'create_relationship',
      relationship_data: {
        source_pattern_id: a.toUpperCase(),
        target_pattern_id: b.toUpperCase(),
        relationship_type: 'similar',
      },
    } as never);
    expect(related.success).toBe(true);
    expect((related.data as { source_pattern_id: string }).source_pattern_id).toBe(a);
  });
});

describe('text', () => {
  it.each([
    ['a NUL character', 'Bad\u0000Name'],
    ['a line break in a name', 'Bad\nName'],
    ['only spaces', '   '],
  ])('refuses a pattern_name with %s, naming the field', async (_what, name) => {
    const r = await storage.executeEffect({ operation: 'insert', data: base(name) } as never);
    expect(r.error?.code).toBe('VALIDATION_ERROR');
    expect(issues(r)[0]?.path).toBe('data.pattern_name');
  });

  it('keeps tabs and line breaks in free text, and refuses NUL in it and in context', async () => {
    const ok = await storage.executeEffect({
      operation: 'insert',
      data: { ...base('FreeText'), template_code: 'def f():\n\treturn 1\r\n' },
    } as never);
    expect(ok.success).toBe(true);
    const nul = await storage.executeEffect({
      operation: 'insert',
      data: { ...base('NulText'), description: 'a\u0000b' },
    } as never);
    expect(issues(nul)[0]?.path).toBe('data.description');
    const ctx = await storage.executeEffect({
      operation: 'insert',
      data: { ...base('NulContext'), context: { note: 'x\u0000y' } },
    } as never);
    expect(issues(ctx)[0]).toEqual({
      path: 'data.context.note',
      message: 'data.context.note: must not contain NUL characters (\\u0000)',
    });
  });

  // Each of these reached the database and came back as "a value has the wrong format or is out of
  // range", naming no field; an update and a relationship stored a lone surrogate as U+FFFD instead.
  it.each([
    ['a lone surrogate in a name', 'insert', { data: { ...base('\ud800x') } }, 'data.pattern_name'],
    [
      'a lone surrogate in a tag',
      'insert',
      { data: { ...base('LoneTag'), tags: ['\udc00'] } },
      'data.tags[0]',
    ],
    ['a lone surrogate in an update', 'update', { data: { description: 'x\ud800' } }, 'data.description'],
    [
      'year 0000',
      'insert',
      { data: { ...base('Year0'), discovered_at: '0000-01-01T00:00:00Z' } },
      'data.discovered_at',
    ],
    [
      'an offset of 23:59',
      'insert',
      { data: { ...base('Far'), discovered_at: '2026-01-01T00:00:00+23:59' } },
      'data.discovered_at',
    ],
    [
      'a lone surrogate in a context key',
      'insert',
      { data: { ...base('LoneKey'), context: { a: [{ ['\udfff']: 1 }] } } },
      'data.context.a[0].\udfff',
    ],
    [
      'a __proto__ key in context',
      'insert',
      { data: { ...base('Proto'), context: JSON.parse('{"__proto__":{"x":1},"a":2}') as unknown } },
      'data.context.__proto__',
    ],
  ])('refuses %s before the database, naming the field', async (_what, operation, body, path) => {
    const id = randomUUID();
    await storage.executeEffect({
      operation: 'insert',
      data: { ...base(`Target-${id}`), pattern_id: id },
    } as never);
    const count = async () =>
      (await db.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM pattern_templates')).rows[0]?.n;
    const before = await count();
    const target = operation === 'update' ? { pattern_id: id } : {};
    const r = await storage.executeEffect({ operation, ...target, ...body } as never);
    expect(r.error?.code).toBe('VALIDATION_ERROR');
    expect(issues(r)[0]?.path).toBe(path);
    expect(await count()).toBe(before);
    const { rows } = await db.pool.query<{ description: string | null }>(
      'SELECT description FROM pattern_templates WHERE id = $1',
      [id],
    );
    expect(rows[0]?.description).toBeNull();
  });

  it('refuses lone surrogates and unstorable times in usage and relationships too, and keeps text that only looks like NUL', async () => {
    const [a, b] = [randomUUID(), randomUUID()];
    for (const id of [a, b])
      await storage.executeEffect({
        operation: 'insert',
        data: { ...base(`Edge${id}`), pattern_id: id },
      } as never);
    const usage = await update.executeEffect({
      operation: 'record_usage',
      pattern_id: a,
      usage_data: { file_path: 'a\ud800b', used_at: '2026-01-01T00:00:00-16:00' },
    } as never);
    expect(issues(usage).map((i) => i.path)).toEqual(['usage_data.file_path', 'usage_data.used_at']);
    const related = await update.executeEffect({
      operation: 'create_relationship',
      relationship_data: {
        source_pattern_id: a,
        target_pattern_id: b,
        relationship_type: 'similar',
        description: '\ud800',
      },
    } as never);
    expect(issues(related)[0]?.path).toBe('relationship_data.description');
    // A backslash before u0000 is text, not NUL; a real zone's offset is a time.
    const kept = await storage.executeEffect({
      operation: 'insert',
      data: {
        ...base('LooksLikeNul'),
        context: { path: 'C:\\u0000dir' },
        discovered_at: '2026-01-01T00:00:00+14:00',
      },
    } as never);
    expect(kept.success).toBe(true);
    const { rows } = await db.pool.query<{ path: string; at: Date }>(
      "SELECT context->>'path' AS path, discovered_at AS at FROM pattern_templates WHERE pattern_name = 'LooksLikeNul'",
    );
    expect(rows[0]).toEqual({ path: 'C:\\u0000dir', at: new Date('2025-12-31T10:00:00Z') });
  });
});

describe('update', () => {
  it.each(['tags', 'context', 'is_deprecated'])(
    'refuses %s: null in the schema, naming data.%s',
    async (field) => {
      const id = randomUUID();
      await storage.executeEffect({
        operation: 'insert',
        data: { ...base(`Null${field}`), pattern_id: id },
      } as never);
      const r = await storage.executeEffect({
        operation: 'update',
        pattern_id: id,
        data: { [field]: null },
      } as never);
      expect(r.error?.code).toBe('VALIDATION_ERROR');
      expect(issues(r)[0]?.path).toBe(`data.${field}`);
    },
  );
});

describe('messages', () => {
  it("use the project's style, not zod's defaults", async () => {
    const r = await update.executeEffect({
      operation: 'record_usage',
      pattern_id: randomUUID(),
      usage_data: { success: 'yes', execution_time_ms: 1e12 },
    } as never);
    const messages = issues(r).map((i) => i.message);
    expect(messages).toContain('usage_data.success: must be true or false (leave it out for true)');
    expect(messages).toContain('usage_data.execution_time_ms: must be at most 86400000 (one day)');
    const typed = await query.executeEffect({ operation: 'search', search_query: 42 } as never);
    expect(issues(typed)[0]?.message).toBe('search_query: must be a string');
    for (const m of [...messages, ...issues(typed).map((i) => i.message)]) expect(m).not.toMatch(/: [A-Z]/);
  });
});

describe('a correlation id reused with a different request', () => {
  const ctx = (identity: string) => ({ identity, eventTime: new Date('2026-06-15T12:00:00Z') });

  it('answers the same request again as a duplicate, and a different one with CONFLICT', async () => {
    const identity = `cid:${randomUUID()}`;
    const id = randomUUID();
    const first = { operation: 'insert', data: { ...base('ReusedFirst'), pattern_id: id } };
    const applied = await storage.executeEffect(first as never, ctx(identity));
    expect(applied.success).toBe(true);
    // The same request, keys in another order and the id in upper case: the same fingerprint.
    const again = await storage.executeEffect(
      {
        data: {
          pattern_id: id.toUpperCase(),
          language: 'go',
          pattern_type: 'code',
          pattern_name: 'ReusedFirst',
        },
        operation: 'insert',
      } as never,
      ctx(identity),
    );
    expect(again.metadata.duplicate).toBe(true);
    // On the wire both are the same JSON (the stored copy has the date as a string).
    expect(JSON.stringify(again.data)).toBe(JSON.stringify(applied.data));
    const other = await storage.executeEffect(
      { operation: 'insert', data: base('ReusedSecond') } as never,
      ctx(identity),
    );
    expect(other.error).toMatchObject({ code: 'CONFLICT', details: { reason: 'correlation_id_reused' } });
    expect(other.metadata.duplicate).toBeUndefined();
    const { rows } = await db.pool.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM pattern_templates WHERE pattern_name = 'ReusedSecond'",
    );
    expect(rows[0]?.n).toBe(0);
  });

  it('is caught in usage batches too, against stored identities and inside the batch', async () => {
    const id = randomUUID();
    await storage.executeEffect({
      operation: 'insert',
      data: { ...base('BatchReuse'), pattern_id: id },
    } as never);
    const usage = (success: boolean) => ({
      operation: 'record_usage',
      pattern_id: id,
      usage_data: { success },
    });
    const stored = `cid:${randomUUID()}`;
    const inBatch = `cid:${randomUUID()}`;
    const first = await update.recordUsageBatch([{ request: usage(true) as never, context: ctx(stored) }]);
    expect(first[0]?.success).toBe(true);
    const results = await update.recordUsageBatch([
      { request: usage(true) as never, context: ctx(stored) },
      { request: usage(false) as never, context: ctx(stored) },
      { request: usage(true) as never, context: ctx(inBatch) },
      { request: usage(false) as never, context: ctx(inBatch) },
    ]);
    expect(results.map((r) => [r.success, r.metadata.duplicate ?? false, r.error?.details?.reason])).toEqual([
      [true, true, undefined],
      [false, false, 'correlation_id_reused'],
      [true, false, undefined],
      [false, false, 'correlation_id_reused'],
    ]);
  });
});

describe('search folds Unicode compatibility forms', () => {
  it('finds with a full-width query what the ASCII query finds, in rows from before migration 013 too', async () => {
    const older = await createTestDatabase({ migrated: false });
    const dir = await mkdtemp(join(tmpdir(), 'migrations-'));
    try {
      for (const f of await readdir(DEFAULT_MIGRATIONS_DIR)) {
        if (/^\d{3}_/.test(f) && f < '013') await cp(join(DEFAULT_MIGRATIONS_DIR, f), join(dir, f));
      }
      await migrate(older.pool, dir);
      const before = new NodePatternStorageEffect(older.pool);
      await before.executeEffect({ operation: 'insert', data: base('AsyncQueueWriter') } as never);
      await before.executeEffect({ operation: 'insert', data: base('ＦｕｌｌｗｉｄｔｈCache') } as never);
      await migrate(older.pool);
      const search = new NodePatternQueryEffect(older.pool);
      const names = async (q: string) =>
        (
          (await search.executeEffect({ operation: 'search', search_query: q } as never)).data as {
            pattern_name: string;
          }[]
        ).map((p) => p.pattern_name);
      expect(await names('ＡＳＹＮＣ')).toEqual(['AsyncQueueWriter']);
      expect(await names('async')).toEqual(['AsyncQueueWriter']);
      expect(await names('fullwidth')).toEqual(['ＦｕｌｌｗｉｄｔｈCache']);
      expect(await names('ｃａｃｈｅ')).toEqual(['ＦｕｌｌｗｉｄｔｈCache']);
    } finally {
      await rm(dir, { recursive: true, force: true });
      await older.drop();
    }
  });
});

describe('a pattern as its own parent or successor', () => {
  it('is refused in validation, naming the field, and by the database with the field if it gets there', async () => {
    const id = randomUUID();
    await storage.executeEffect({
      operation: 'insert',
      data: { ...base('OwnParent'), pattern_id: id },
    } as never);
    const r = await storage.executeEffect({
      operation: 'update',
      pattern_id: id.toUpperCase(),
      data: { parent_pattern_id: id },
    } as never);
    expect(issues(r)[0]).toEqual({
      path: 'data.parent_pattern_id',
      message: 'data.parent_pattern_id: must not be the pattern itself',
    });
    // Past the schema (a caller that validated already), the constraint is named too.
    const unchecked = await storage.executeEffect(
      { operation: 'update', pattern_id: id, data: { deprecated_by_id: id } } as never,
      { validated: true },
    );
    expect(unchecked.error).toMatchObject({
      code: 'VALIDATION_ERROR',
      details: { field: 'deprecated_by_id' },
    });
  });
});

describe('patterns larger than a result may carry', () => {
  const max = 60_000;
  const big = (name: string, id = randomUUID()) => ({
    ...base(name),
    pattern_id: id,
    template_code: 'x'.repeat(20_000),
    tags: ['large'],
  });

  it('are refused when written, by insert, batch_insert and update, and nothing is stored', async () => {
    const small = new NodePatternStorageEffect(db.pool, { maxResultBytes: max });
    const count = async () =>
      (await db.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM pattern_templates')).rows[0]?.n;
    const before = await count();
    const huge = await small.executeEffect({
      operation: 'insert',
      data: { ...big('TooLarge'), context: { blob: 'y'.repeat(50_000) } },
    } as never);
    expect(huge.error, JSON.stringify(huge.error)).toMatchObject({
      code: 'PAYLOAD_TOO_LARGE',
      details: { field: 'data', max_result_bytes: max },
    });
    expect(huge.error?.message).toMatch(
      /^data: the pattern would take about \d+ bytes, more than the 60000 bytes/,
    );
    const batch = await small.executeEffect({
      operation: 'batch_insert',
      patterns: [big('FitsInBatch'), { ...big('TooLargeInBatch'), context: { blob: 'z'.repeat(45_000) } }],
    } as never);
    expect(batch.error).toMatchObject({ code: 'PAYLOAD_TOO_LARGE', details: { field: 'patterns[1]' } });
    expect(await count()).toBe(before);
    const id = randomUUID();
    expect(
      (await small.executeEffect({ operation: 'insert', data: big('Grows', id) } as never)).success,
    ).toBe(true);
    const grown = await small.executeEffect({
      operation: 'update',
      pattern_id: id,
      data: { context: { grown: 'e'.repeat(45_000) } },
    } as never);
    expect(grown.error).toMatchObject({ code: 'PAYLOAD_TOO_LARGE', details: { field: 'data' } });
    const { rows } = await db.pool.query('SELECT context FROM pattern_templates WHERE id = $1', [id]);
    expect(rows[0]).toEqual({ context: {} });
  });

  it('count the JSON escaping a result adds: a pattern of quotes no read could return is not written', async () => {
    const small = new NodePatternStorageEffect(db.pool, { maxResultBytes: max });
    const reads = new NodePatternQueryEffect(db.pool, { maxResultBytes: max });
    // 40,000 bytes stored, about 80,000 in a result (each quote escaped).
    const quotes = { ...big('Quotes'), template_code: '"'.repeat(40_000) };
    const refused = await small.executeEffect({ operation: 'insert', data: quotes } as never);
    expect(refused.error).toMatchObject({ code: 'PAYLOAD_TOO_LARGE', details: { field: 'data' } });
    // Half as many fit, and can be read back.
    const fits = { ...big('HalfQuotes'), template_code: '"\\'.repeat(12_000) };
    expect((await small.executeEffect({ operation: 'insert', data: fits } as never)).success).toBe(true);
    const read = await reads.executeEffect({ operation: 'get_by_id', pattern_id: fits.pattern_id } as never);
    expect(read.success, JSON.stringify(read.error)).toBe(true);
  });

  it('are read a page at a time only as far as a result holds, in every list, saying how many fit', async () => {
    const reads = new NodePatternQueryEffect(db.pool, { maxResultBytes: max });
    const ids = Array.from({ length: 6 }, () => randomUUID());
    const writer = new NodePatternStorageEffect(db.pool);
    for (const [i, id] of ids.entries()) {
      await writer.executeEffect({ operation: 'insert', data: big(`LargePage${i}`, id) } as never);
      // get_top ranks patterns with usage.
      await update.executeEffect({ operation: 'record_usage', pattern_id: id, usage_data: {} } as never);
    }
    await update.executeEffect({
      operation: 'create_relationship',
      relationship_data: {
        source_pattern_id: ids[0],
        target_pattern_id: ids[1],
        relationship_type: 'similar',
      },
    } as never);
    const pages = [
      { operation: 'filter', filters: { tags: ['large'] }, limit: 6 },
      { operation: 'get_by_type', filters: { pattern_type: 'code', tags: ['large'] }, limit: 6 },
      { operation: 'get_top', filters: { tags: ['large'] }, limit: 6 },
      { operation: 'search', search_query: 'LargePage', filters: { tags: ['large'] }, limit: 6 },
    ];
    for (const page of pages) {
      const r = await reads.executeEffect(page as never);
      expect(r.error?.code, `${page.operation}: ${JSON.stringify(r).slice(0, 300)}`).toBe(
        'PAYLOAD_TOO_LARGE',
      );
      expect(r.error?.message, page.operation).toBe(
        'the first 2 of the 6 patterns of this page fit in a result; with the next one it would pass the ' +
          '60000 bytes a result may carry (WORKER_MAX_RESULT_BYTES): ask for at most 2 (limit)',
      );
      const fits = await reads.executeEffect({ ...page, limit: 2 } as never);
      expect(fits.success, page.operation).toBe(true);
      expect(
        (fits.data as Record<string, unknown>[]).map((p) => Object.keys(p).filter((k) => k.startsWith('_'))),
      ).toEqual([[], []]);
    }
    const related = await reads.executeEffect({ operation: 'get_related', pattern_id: ids[0] } as never);
    expect((related.data as { pattern_id: string }[]).map((p) => p.pattern_id)).toEqual([ids[1]]);
    const one = await reads.executeEffect({ operation: 'get_by_id', pattern_id: ids[0] } as never);
    expect(one.success).toBe(true);
    const tiny = new NodePatternQueryEffect(db.pool, { maxResultBytes: 10_000 });
    const whole = await tiny.executeEffect({
      operation: 'get_by_name',
      pattern_name: 'LargePage0',
      language: 'go',
    } as never);
    expect(whole.error?.message).toMatch(
      new RegExp(
        `^pattern ${ids[0]} takes about \\d+ bytes, more than the 10000 bytes a result may carry .*: it cannot be returned$`,
      ),
    );
  });
});
