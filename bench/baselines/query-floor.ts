// Baseline "query floor": the search node's SQL run directly through pg, built from the same fragments
// (src/nodes/pattern-sql.ts) as NodePatternQueryEffect's search: no validation, no transaction, no Kafka.
import type { Filters } from '../../src/contracts/fields.ts';
import type { Pool } from '../../src/db/pool.ts';
import { filterConditions, Params, patternColumns, whereClause } from '../../src/nodes/pattern-sql.ts';

export async function searchDirect(
  pool: Pool,
  request: { search_query: string; filters?: Filters | null; limit?: number },
): Promise<number> {
  const params = new Params();
  const tsquery = `websearch_to_tsquery('english', ${params.add(request.search_query)})`;
  const raw = `lower(${params.add(request.search_query)})`;
  const text = 'pattern_search_text(p.pattern_name, p.description)';
  const conditions = [
    `(p.search_vector @@ ${tsquery} OR ${raw} <% ${text})`,
    ...filterConditions(request.filters, params),
  ];
  const { rowCount } = await pool.query(
    `SELECT ${patternColumns('p')},
            round((ts_rank_cd(p.search_vector, ${tsquery}) + word_similarity(${raw}, ${text}))::numeric, 6) AS relevance
       FROM pattern_templates p
       ${whereClause(conditions)}
      ORDER BY relevance DESC, p.id
      LIMIT ${params.add(request.limit ?? 10)} OFFSET ${params.add(0)}`,
    params.values,
  );
  return rowCount ?? 0;
}
