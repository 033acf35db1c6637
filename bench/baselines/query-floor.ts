// Baseline "query floor": the search node's own statements (searchPatterns: full text, then typos when
// full text finds nothing) run directly through pg: no validation, no transaction, no Kafka.
import type { Filters } from '../../src/contracts/fields.ts';
import type { Pool } from '../../src/db/pool.ts';
import { searchPatterns, searchStatement } from '../../src/nodes/node-pattern-query-effect.ts';

type SearchInput = { search_query: string; filters?: Filters | null; limit?: number };

/** The first page of ten, as the benchmark's requests ask. */
const firstPage = (request: SearchInput) => ({ ...request, limit: request.limit ?? 10, offset: 0 });

export async function searchDirect(pool: Pool, request: SearchInput): Promise<number> {
  return (await searchPatterns(pool, firstPage(request))).length;
}

/** The plan PostgreSQL picks for a search's full-text statement, one line per plan node (the choice varies
 * with statistics). */
export async function searchPlan(pool: Pool, request: SearchInput): Promise<string[]> {
  const { text, values } = searchStatement(firstPage(request));
  const { rows } = await pool.query<{ 'QUERY PLAN': string }>(`EXPLAIN ${text}`, values);
  return rows
    .map((r) => r['QUERY PLAN'])
    .filter((l) => !/^\s*(Filter|Recheck Cond|Sort Key|Index Cond|Hash Cond):/.test(l))
    .map((l) => l.replace(/\s+\(cost=.*$/, ''));
}
