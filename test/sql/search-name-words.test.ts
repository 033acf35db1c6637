// Migration 021: the vocabulary of name words that the search's typo stage corrects against. Back-filled
// on a database written before it, kept on every insert and rename, equal to a recomputation from the
// names; and the corrected query it gives.
import { cp, mkdtemp, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { migrate } from '../../src/db/migrate.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';

const SQL_DIR = join(import.meta.dirname, '../../sql');
let db: TestDatabase;

const words = async () =>
  (await db.pool.query<{ word: string }>('SELECT word FROM pattern_name_words ORDER BY word')).rows.map(
    (r) => r.word,
  );
const recomputed = async () =>
  (
    await db.pool.query<{ word: string }>(
      `SELECT DISTINCT w AS word FROM pattern_templates, regexp_split_to_table(name_text, '[^[:alnum:]]+') AS w
        WHERE w <> '' ORDER BY w`,
    )
  ).rows.map((r) => r.word);
const corrected = async (query: string) =>
  (await db.pool.query<{ q: string | null }>('SELECT pattern_typo_tsquery($1, 31)::text AS q', [query]))
    .rows[0]?.q;

beforeAll(async () => {
  db = await createTestDatabase({ migrated: false });
  const before = await mkdtemp(join(tmpdir(), 'pw-before-021-'));
  for (const file of await readdir(SQL_DIR)) {
    if (/^0(0\d|1\d|20)_.*\.sql$/.test(file)) await cp(join(SQL_DIR, file), join(before, file));
  }
  const first = await migrate(db.pool, before);
  expect(first.applied.at(-1)).toMatch(/^020_/);
  await db.pool.query(
    `INSERT INTO pattern_templates (pattern_name, pattern_type, language) VALUES
       ('PooledConfigReader', 'code', 'go'), ('circuit_breaker', 'code', 'python'), ('HTTPRetry', 'code', 'go')`,
  );
  const second = await migrate(db.pool);
  expect(second.applied[0]).toMatch(/^021_/);
});
afterAll(async () => db.drop());

it('back-fills the words of the names already written', async () => {
  expect(await words()).toEqual(['breaker', 'circuit', 'config', 'httpretry', 'pooled', 'reader']);
});

it('keeps the words of every insert and rename, as a recomputation from the names would give', async () => {
  await db.pool.query(
    `INSERT INTO pattern_templates (pattern_name, pattern_type, language)
     SELECT 'Batch' || i || 'Loader', 'code', 'rust' FROM generate_series(1, 3) AS i`,
  );
  await db.pool.query(
    `UPDATE pattern_templates SET pattern_name = 'DebouncedWebhookReader' WHERE pattern_name = 'HTTPRetry'`,
  );
  // A statistics update that does not touch names changes nothing.
  await db.pool.query(`UPDATE pattern_templates SET usage_count = usage_count + 1`);
  const kept = await words();
  // The renamed pattern's old word stays: it can only add an alternative that full text then fails on.
  expect(kept).toEqual([...new Set([...(await recomputed()), 'httpretry'])].sort());
  expect(kept).toEqual(expect.arrayContaining(['batch1', 'debounced', 'webhook', 'loader']));
});

it('adds nothing when the insert is rolled back', async () => {
  const client = await db.pool.connect();
  try {
    await client.query('BEGIN');
    await client.query(
      `INSERT INTO pattern_templates (pattern_name, pattern_type, language) VALUES ('ZanzibarThing', 'code', 'go')`,
    );
    await client.query('ROLLBACK');
  } finally {
    client.release();
  }
  expect(await words()).not.toContain('zanzibar');
});

it('corrects only the words no name holds, and keeps exclusions, phrases and the words themselves', async () => {
  expect(await corrected('poled config')).toBe("( 'pole' | 'pool' ) & 'config'");
  expect(await corrected('pooled config')).toBeNull();
  // What the corrected exclusion matches: a circuit, but not one that is pooled.
  const matches = async (query: string, text: string) =>
    (
      await db.pool.query<{ m: boolean }>(
        `SELECT to_tsvector('english', $2) @@ pattern_typo_tsquery($1, 31) AS m`,
        [query, text],
      )
    ).rows[0]?.m;
  expect(await matches('curcuit -poled', 'circuit breaker')).toBe(true);
  expect(await matches('curcuit -poled', 'pooled circuit')).toBe(false);
  expect(await corrected('"circut breaker"')).toBe("( 'circut' | 'circuit' ) <-> 'breaker'");
  // No correction past the bound on the query's parts: each would add three.
  expect(await corrected('poled')).toBe("'pole' | 'pool'");
  expect(
    (await db.pool.query<{ q: string | null }>(`SELECT pattern_typo_tsquery('poled', 2)::text AS q`)).rows[0]
      ?.q,
  ).toBeNull();
  // A name's punctuation is not a word's: it splits words, so no alternative is syntax to to_tsquery.
  await db.pool.query(
    `INSERT INTO pattern_templates (pattern_name, pattern_type, language) VALUES ($1, 'code', 'go')`,
    ["Poled(Confgi)|it's&!x:*"],
  );
  expect(await words()).toEqual(expect.arrayContaining(['confgi', 'it', 'poled', 's', 'x']));
  expect(await corrected('pooled confgx')).toBe("( 'confgx' | 'confgi' | 'config' ) & 'pool'");
  // Nothing like it, stopwords and punctuation: nothing to correct.
  expect(await corrected('qqqqqq')).toBeNull();
  expect(await corrected('the ... of')).toBeNull();
});

it('looks up only the words that are lexemes of the query, all of them (migration 023)', async () => {
  // A file path is one lexeme of many words: none of them can be rewritten, so none is looked up (a
  // hundred took up to 0.6 s on 100,000 patterns) and nothing is corrected; 021 answered the query
  // itself, unchanged, when a segment had alternatives.
  const path = (n: number) =>
    '/' + Array.from({ length: n }, (_, i) => `zqx${String.fromCharCode(97 + i)}`).join('/');
  expect(await corrected(`/circut${path(20)}`)).toBeNull();
  // The words beside it are corrected wherever they stand, and so is a typo behind words that have no
  // alternative (numbers, single letters): none takes another's turn.
  expect(await corrected(`circut ${path(20)}`)).toContain("'circuit'");
  expect(await corrected(`${path(20)} circut`)).toContain("'circuit'");
  expect(await corrected('http 500 502 503 504 429 408 401 403 circut')).toContain("'circuit'");
  expect(await corrected('a b c d e f g h i j k l m circut')).toContain("'circuit'");
});

it('looks words up in an index that takes new words at once, and not those no name word is as long as (migration 024)', async () => {
  // The pending list of GIN's fast update is read whole by every lookup until a vacuum merges it: after
  // 100,000 names it held the whole vocabulary, and a search of 16 unknown words spent 230 ms in it.
  const { rows } = await db.pool.query<{ reloptions: string[] | null }>(
    "SELECT reloptions FROM pg_class WHERE relname = 'idx_pattern_name_words_trgm'",
  );
  expect(rows[0]?.reloptions).toContain('fastupdate=off');
  const long = `${'configuration'.repeat(5)}reader`;
  await db.pool.query(
    "INSERT INTO pattern_templates (pattern_name, pattern_type, language) VALUES ($1, 'code', 'go')",
    [long],
  );
  // Its typo is too long to look up (71 characters); a short one still is.
  expect(await corrected(`${long.slice(0, -1)}x`)).toBeNull();
  expect(await corrected('circut')).toContain("'circuit'");
});
