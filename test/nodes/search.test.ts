// Search stages: name and tag matches first, other full-text matches when those do not fill the page,
// typos only when full text finds nothing.
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { ModelResult } from '../../src/contracts/results.ts';
import { NodePatternQueryEffect, NodePatternStorageEffect } from '../../src/nodes/index.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';

let db: TestDatabase;
let query: NodePatternQueryEffect;
const names = (r: ModelResult) => (r.data as { pattern_name: string }[]).map((p) => p.pattern_name);
const search = async (search_query: string, limit = 10) =>
  names(await query.executeEffect({ operation: 'search', search_query, limit } as never));

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
