// Baseline "query floor": the search node's SQL run directly through pg, built from the same fragments
// (src/nodes/pattern-sql.ts) as NodePatternQueryEffect's search: no validation, no transaction, no Kafka.
import type { Filters } from '../../src/contracts/fields.ts';
import type { Pool } from '../../src/db/pool.ts';
import { filterConditions, Params, patternColumns, whereClause } from '../../src/nodes/pattern-sql.ts';

type SearchInput = { search_query: string; filters?: Filters | null; limit?: number };

// Mirrors search() in src/nodes/node-pattern-query-effect.ts as of 8a200fb (two stages: the best 50
// full-text candidates ranked, the trigram scan only when full text finds too few). Keep them in step.
const RANK_CANDIDATES = 50;
const FUZZY_CANDIDATES = 20;

function searchSql(request: SearchInput): { text: string; values: unknown[] } {
  const params = new Params();
  const limit = request.limit ?? 10;
  const tsquery = `websearch_to_tsquery('english', ${params.add(request.search_query)})`;
  const raw = `lower(${params.add(request.search_query)})`;
  const text = 'p.search_text';
  const filters = filterConditions(request.filters, params);
  const candidates = params.add(Math.max(RANK_CANDIDATES, limit * 2));
  return {
    text: `WITH fts AS MATERIALIZED (
       SELECT p.id, ts_rank_cd(p.search_vector, ${tsquery}) AS r
         FROM pattern_templates p
         ${whereClause([`p.search_vector @@ ${tsquery}`, ...filters])}
        ORDER BY r DESC, p.id
        LIMIT ${candidates}
     ),
     fuzzy AS (
       SELECT p.id, 0::real AS r
         FROM pattern_templates p
         ${whereClause([
           `(SELECT count(*) FROM fts) < ${params.add(limit)}`,
           `${raw} <% ${text}`,
           `NOT p.search_vector @@ ${tsquery}`,
           ...filters,
         ])}
        LIMIT ${params.add(Math.max(FUZZY_CANDIDATES, limit * 2))}
     )
     SELECT ${patternColumns('p')},
            round((c.r + word_similarity(${raw}, ${text}))::numeric, 6) AS relevance
       FROM (SELECT id, r FROM fts UNION ALL SELECT id, r FROM fuzzy) c
       JOIN pattern_templates p ON p.id = c.id
      ORDER BY relevance DESC, p.id
      LIMIT ${params.add(limit)} OFFSET ${params.add(0)}`,
    values: params.values,
  };
}

export async function searchDirect(pool: Pool, request: SearchInput): Promise<number> {
  const { text, values } = searchSql(request);
  const { rowCount } = await pool.query(text, values);
  return rowCount ?? 0;
}

/** The plan PostgreSQL picks for a search, one line per plan node (the choice varies with statistics). */
export async function searchPlan(pool: Pool, request: SearchInput): Promise<string[]> {
  const { text, values } = searchSql(request);
  const { rows } = await pool.query<{ 'QUERY PLAN': string }>(`EXPLAIN ${text}`, values);
  return rows
    .map((r) => r['QUERY PLAN'])
    .filter((l) => !/^\s*(Filter|Recheck Cond|Sort Key|Index Cond|Hash Cond):/.test(l))
    .map((l) => l.replace(/\s+\(cost=.*$/, ''));
}
