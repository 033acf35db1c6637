// Search stages: name and tag matches first, other full-text matches when those do not fill the page,
// typos only when full text finds nothing.
import fc from 'fast-check';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { ModelResult } from '../../src/contracts/results.ts';
import { NodePatternQueryEffect, NodePatternStorageEffect } from '../../src/nodes/index.ts';
import {
  correctedSearchStatement,
  searchPatterns,
  searchStatement,
  typoSearchStatement,
} from '../../src/nodes/node-pattern-query-effect.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';

let db: TestDatabase;
let query: NodePatternQueryEffect;
const searchResult = (search_query: string, limit = 10, offset = 0, filters?: Record<string, string>) =>
  query.executeEffect({ operation: 'search', search_query, limit, offset, filters } as never);
const names = (r: ModelResult) => (r.data as { pattern_name: string }[]).map((p) => p.pattern_name);
const search = async (search_query: string, limit = 10, offset = 0, filters?: Record<string, string>) =>
  names(await searchResult(search_query, limit, offset, filters));

beforeAll(async () => {
  db = await createTestDatabase();
  query = new NodePatternQueryEffect(db.pool);
  const p = (pattern_name: string, extra: Record<string, unknown> = {}) => ({
    pattern_name,
    pattern_type: 'code',
    language: 'go',
    ...extra,
  });
  await new NodePatternStorageEffect(db.pool).executeEffect({
    operation: 'batch_insert',
    patterns: [
      p('ZebraStripeRenderer'),
      p('StripeTagged', { tags: ['zebra'] }),
      p('PlainRenderer', { description: 'draws a zebra crossing' }),
      p('TemplateOnly', { template_code: 'func zebra() {}' }),
      p('Unrelated', { description: 'nothing to see' }),
    ],
  } as never);
});
afterAll(async () => db.drop());

it('takes name and tag matches first and reaches description and template matches when the page has room', async () => {
  const all = await search('zebra');
  expect(all.sort()).toEqual(['PlainRenderer', 'StripeTagged', 'TemplateOnly', 'ZebraStripeRenderer']);
  // Two name/tag matches fill a page of two: nothing else is ranked.
  expect((await search('zebra', 2)).sort()).toEqual(['StripeTagged', 'ZebraStripeRenderer']);
});

it('finds names despite a typo, and only when full text finds nothing', async () => {
  expect(await search('zebar stripe renderer')).toContain('ZebraStripeRenderer');
  expect(await search('renderer')).toEqual(expect.arrayContaining(['ZebraStripeRenderer', 'PlainRenderer']));
});

it('answers a page past the full-text matches with nothing, not with typo matches', async () => {
  expect(await search('zebra', 10, 10)).toEqual([]);
  expect((await search('renderer -crossing')).sort()).toEqual(['PlainRenderer', 'ZebraStripeRenderer']);
  // The stages after full text answer only when nothing matches in full text: not for a word that does,
  // nor for a name match whose description holds an excluded word, on any page.
  expect(await search('zebar stripe renderer')).toContain('ZebraStripeRenderer');
  expect(await search('zebra stripe renderer', 10, 1)).toEqual([]);
  expect(await search('plian renderer')).toContain('PlainRenderer');
  expect(await search('plain renderer -crossing', 10, 1)).toEqual([]);
  // The corrected query, likewise: a page past its matches is empty.
  expect(await search('zebar stripe renderer', 10, 1)).toEqual([]);
  expect(await search('plian renderer -crossing', 10, 1)).toEqual([]);
  const corrected = async (search_query: string, offset = 0) => {
    const { rows } = await db.pool.query<{ q: string | null }>(
      'SELECT pattern_typo_tsquery($1, 31)::text AS q',
      [search_query],
    );
    const q = rows[0]?.q;
    if (!q) return null;
    const { text, values } = correctedSearchStatement({ search_query, filters: null, limit: 10, offset }, q);
    return (await db.pool.query<{ pattern_name: string }>(text, values)).rows.map((r) => r.pattern_name);
  };
  expect(await corrected('zebar stripe renderer')).toEqual(['ZebraStripeRenderer']);
  expect(await corrected('zebra')).toBeNull();
});

it('falls back to names like the query when every word is known but no pattern holds them together', async () => {
  const { rows } = await db.pool.query<{ q: string | null }>(
    "SELECT pattern_typo_tsquery('plain stripe renderer', 31)::text AS q",
  );
  expect(rows[0]?.q).toBeNull();
  expect(await search('plain stripe renderer')).toContain('ZebraStripeRenderer');
});

it('answers a typo with the names it meant, not with the first similar names a trigram scan meets', async () => {
  // Forty names share the query's second word and pass the trigram threshold; the three written last are
  // the ones meant. The trigram scan alone took the first 20 candidates it met and left all three out.
  const storage = new NodePatternStorageEffect(db.pool);
  const qualifiers = [
    'Debounced',
    'Versioned',
    'Guarded',
    'Layered',
    'Batched',
    'Reactive',
    'Throttled',
    'Cached',
  ];
  const roles = ['Reader', 'Loader', 'Producer', 'Consumer', 'Adapter'];
  const weak = qualifiers.flatMap((q) => roles.map((r) => `${q}Config${r}`));
  const meant = ['PooledConfigReader', 'PooledConfigLoader', 'PooledConfigWriter'];
  const stored = await storage.executeEffect({
    operation: 'batch_insert',
    patterns: [...weak, ...meant].map((pattern_name) => ({
      pattern_name,
      pattern_type: 'code',
      language: 'elixir',
    })),
  } as never);
  expect(stored.success).toBe(true);
  const found = await search('poled config', 5, 0, { language: 'elixir' });
  expect(found.slice(0, 3).sort()).toEqual([...meant].sort());
  // A page past the corrected matches is empty; it does not go on with names like the query.
  const later = await search('poled config', 5, 5, { language: 'elixir' });
  expect(later).toEqual([]);
});

it("answers any query, however hostile its bytes or the names' punctuation, with a result or a refusal naming it", async () => {
  await new NodePatternStorageEffect(db.pool).executeEffect({
    operation: 'batch_insert',
    patterns: ["Poled(Confgi)|it's&!x:*", 'Zebar<->Stripe', '"Quoted" -Renderer', 'ÄrgerlicheZebraÜbung'].map(
      (pattern_name) => ({ pattern_name, pattern_type: 'code', language: 'go' }),
    ),
  } as never);
  const syntax = fc.constantFrom(
    ...'&|!()<>:*\'" -_.,;/\\'.split(''),
    ' or ',
    ' and ',
    ' not ',
    '<->',
    'zebar',
    'poled',
  );
  const queries = fc
    .array(fc.oneof(syntax, fc.string({ unit: 'grapheme', maxLength: 6 }), fc.string({ maxLength: 8 })), {
      minLength: 1,
      maxLength: 12,
    })
    .map((parts) => parts.join(''))
    .filter((q) => q.trim().length > 0 && q.length <= 500);
  await fc.assert(
    fc.asyncProperty(queries, async (search_query) => {
      const result = await searchResult(search_query);
      if (!result.success) expect(result.error?.code).toBe('VALIDATION_ERROR');
    }),
    { numRuns: 150 },
  );
});

it('refuses a query too broad to rank at a bounded cost, and names the field and the bound', async () => {
  const words = ['zebra', 'stripe', 'renderer', 'crossing', 'plain', 'tagged', 'template', 'only'];
  const ored = Array.from({ length: 20 }, (_, i) => `${words[i % 8]}${i}`).join(' or ');
  const refused = await query.executeEffect({
    operation: 'search',
    search_query: ored,
    limit: 10,
    offset: 0,
  } as never);
  expect(refused.success).toBe(false);
  expect(refused.error).toMatchObject({
    code: 'VALIDATION_ERROR',
    details: { field: 'search_query', query_nodes: 39, max_query_nodes: 31 },
  });
  expect(refused.error?.message).toContain('at most 31 are searched');
  const excluded = Array.from({ length: 16 }, (_, i) => `-${words[i % 8]}${i}`).join(' ');
  expect(
    (
      await query.executeEffect({
        operation: 'search',
        search_query: excluded,
        limit: 10,
        offset: 0,
      } as never)
    ).error?.code,
  ).toBe('VALIDATION_ERROR');
  // Sixteen words, and a long query of few words, are searched.
  const sixteen = Array.from({ length: 16 }, (_, i) => (i === 0 ? 'zebra' : `${words[i % 8]}`)).join(' or ');
  expect(await search(sixteen)).toContain('ZebraStripeRenderer');
  const long = 'zebra stripe renderer, the one that draws stripes';
  expect(
    (await query.executeEffect({ operation: 'search', search_query: long, limit: 10, offset: 0 } as never))
      .success,
  ).toBe(true);
});

it('narrows a search filtered by language inside the text indexes (migration 019), not with a bitmap of the language', async () => {
  // Enough rows, in ten languages, for the planner to choose between indexes as it would on a real table.
  const languages = [
    'python',
    'typescript',
    'java',
    'go',
    'javascript',
    'rust',
    'csharp',
    'kotlin',
    'ruby',
    'cpp',
  ];
  await db.pool.query(
    `INSERT INTO pattern_templates (id, pattern_name, pattern_type, language, description)
     SELECT gen_random_uuid(), 'Bulk' || i || CASE WHEN i % 7 = 0 THEN 'ZebraRenderer' ELSE 'Writer' END, 'code',
            ($1::text[])[1 + i % 10], 'a zebra of ' || i
       FROM generate_series(1, 6000) AS i`,
    [languages],
  );
  await db.pool.query('ANALYZE pattern_templates');
  const request = { search_query: 'zebra renderer', filters: { language: 'rust' }, limit: 10, offset: 0 };
  const found = names(await query.executeEffect({ operation: 'search', ...request } as never));
  expect(found).toHaveLength(10);
  expect(found.every((n) => /^Bulk\d*5ZebraRenderer$/.test(n))).toBe(true);

  const plan = async ({ text, values }: { text: string; values: unknown[] }) =>
    (await db.pool.query<{ 'QUERY PLAN': string }>(`EXPLAIN ${text}`, values)).rows
      .map((r) => r['QUERY PLAN'])
      .join('\n');
  const fullText = await plan(searchStatement(request));
  const typos = await plan(typoSearchStatement({ ...request, search_query: 'zebar renderer' }));
  // No bitmap of every pattern in the language ANDed with the text matches: the language is in the index.
  for (const p of [fullText, typos]) expect(p).not.toContain('BitmapAnd');
  expect(fullText).toMatch(
    /idx_pattern_templates_name_vector_language[^\n]*\n\s+Index Cond: \(\(name_vector @@ .*\) AND \(language = 'rust'::text\)\)/,
  );
  // Its trigram scan has the language beside the names (chosen on a table of 100,000, not of 6,000).
  const { rows } = await db.pool.query<{ indexdef: string }>(
    `SELECT indexdef FROM pg_indexes WHERE indexname = 'idx_pattern_templates_name_text_trgm_language'`,
  );
  expect(rows[0]?.indexdef).toContain('USING gin (name_text gin_trgm_ops, language)');
});

it('corrects a query once per search, and finds that a later page is past the matches with the indexes', async () => {
  // "asynk -async" on page 2 reached the typo statement, whose checks that the corrected query matched
  // nothing ran the correction for every pattern of a sequential scan (minutes on 100,000 patterns); the
  // checks then ran as EXISTS over the table, planned as scans of every pattern when nothing matched.
  await db.pool.query(
    `INSERT INTO pattern_templates (id, pattern_name, pattern_type, language)
     SELECT gen_random_uuid(), 'Async' || i || 'Worker', 'code', 'go' FROM generate_series(1, 300) AS i`,
  );
  for (const search_query of ['asynk -async', 'zebar -renderer', 'ledger webhook']) {
    const client = await db.pool.connect();
    try {
      await client.query('BEGIN');
      await client.query("SET LOCAL track_functions = 'pl'");
      const sent: string[] = [];
      const watched = {
        query: (text: string, values?: unknown[]) => {
          sent.push(text);
          return client.query(text, values);
        },
      };
      await searchPatterns(watched as never, { search_query, filters: null, limit: 10, offset: 1 });
      const { rows } = await client.query<{ n: string }>(
        `SELECT pg_stat_get_xact_function_calls('pattern_typo_tsquery'::regproc) AS n`,
      );
      // Once (a planner's estimate may call it again): not once per pattern.
      expect(Number(rows[0]?.n ?? 0), search_query).toBeLessThanOrEqual(2);
      for (const text of sent) expect(text).not.toContain('EXISTS');
    } finally {
      await client.query('ROLLBACK');
      client.release();
    }
  }
});
