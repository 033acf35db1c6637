// NodePatternQueryEffect: reads. Lists return an array in `data`, as the seed did.
import { identitiesOfCorrelationId } from '../contracts/identity.ts';
import type { GetRelatedRequest, GetResultRequest, SearchRequest } from '../contracts/requests.ts';
import type { StoredResultLookup } from '../contracts/result-data.ts';
import { isWriteOperation, type Operation } from '../contracts/operations.ts';
import type { Filters } from '../contracts/fields.ts';
import type { Pool, PoolClient } from '../db/pool.ts';
import type { ModelResult } from '../contracts/results.ts';
import type { QueryRequest } from '../contracts/requests.ts';

type Row = Record<string, unknown>;
import { EffectNode, type ExecuteContext, type Handlers, type NodeOptions } from './effect-node.ts';
import { lookupIdentity } from './identity-store.ts';
import { EffectError, notFound } from '../contracts/errors.ts';
import {
  filterConditions,
  PAGE_BYTES_COLUMNS,
  Params,
  patternColumns,
  whereClause,
  rowBytes,
  withinBytes,
} from './pattern-sql.ts';
import { DEFAULT_MAX_RESULT_BYTES } from '../contracts/results.ts';

export class NodePatternQueryEffect extends EffectNode<'pattern.search.request'> {
  /** The bytes of patterns a read gathers at most (WORKER_MAX_RESULT_BYTES). */
  readonly maxResultBytes: number;

  constructor(pool: Pool, options: NodeOptions = {}) {
    super('pattern.search.request', pool, options);
    this.maxResultBytes = options.maxResultBytes ?? DEFAULT_MAX_RESULT_BYTES;
  }

  /** The seed's query results said how many rows they hold (1 for a single pattern): metadata.result_count. */
  override async executeEffect(contract: QueryRequest, context: ExecuteContext = {}): Promise<ModelResult> {
    const result = await super.executeEffect(contract, context);
    if (result.success) result.metadata.result_count = Array.isArray(result.data) ? result.data.length : 1;
    return result;
  }

  /** Plans the search statement on one connection (read only) before the worker takes partitions, so a
   * new backend's first search is not also its first plan of it. */
  async rehearse(): Promise<void> {
    // Nothing matches it in full text, so the typo stages are planned too.
    await searchPatterns(this.pool, { search_query: 'rehearsal', filters: null, limit: 10, offset: 0 });
  }

  protected readonly handlers: Handlers<'pattern.search.request'> = {
    search: (request, { client }) => searchPatterns(client, request, this.maxResultBytes),
    get_by_id: (request, { client }) => getById(client, request.pattern_id, this.maxResultBytes),
    filter: (request, { client }) => listPatterns(client, 'filter', request, this.maxResultBytes),
    get_related: (request, { client }) => getRelated(client, request, this.maxResultBytes),
    get_top: (request, { client }) => listPatterns(client, 'top', request, this.maxResultBytes),
    get_by_type: (request, { client }) => listPatterns(client, 'filter', request, this.maxResultBytes),
    get_by_name: (request, { client }) =>
      getByName(client, request.pattern_name, request.language, this.maxResultBytes),
    get_result: (request, { client }) => getResult(client, request),
  };
}

type Statement = { text: string; values: unknown[] };
type Db = Pick<PoolClient, 'query'>;

/** One pattern larger than a result may carry: refused by name, wherever it is read. */
function cannotBeReturned(row: Row, bytes: number, budget: number, pageRows: number): EffectError {
  return new EffectError(
    'PAYLOAD_TOO_LARGE',
    `pattern ${String(row.id)} takes about ${bytes} bytes, more than the ${budget} bytes a result may ` +
      'carry (WORKER_MAX_RESULT_BYTES): it cannot be returned',
    { max_result_bytes: budget, page_rows: pageRows, rows_that_fit: 0 },
  );
}

/** `statement`'s rows (pattern rows, ordered by `orderBy`), or PAYLOAD_TOO_LARGE, before they are read,
 * when they would pass `budget` bytes, saying how many would fit. */
async function pageWithin(
  db: Db,
  statement: Statement,
  orderBy: (alias: string) => string,
  budget: number,
): Promise<Row[]> {
  const values = [...statement.values, budget];
  const { rows } = await db.query<Row>(withinBytes(statement.text, orderBy, `$${values.length}`), values);
  const last = rows.at(-1);
  if (last && Number(last._bytes_upto) > budget) {
    const fit = rows.length - 1;
    const pageRows = Number(last._page_rows);
    if (fit === 0) throw cannotBeReturned(last, Number(last._row_bytes), budget, pageRows);
    throw new EffectError(
      'PAYLOAD_TOO_LARGE',
      `the first ${fit} of the ${pageRows} patterns of this page fit in a result; with the next one it ` +
        `would pass the ${budget} bytes a result may carry (WORKER_MAX_RESULT_BYTES): ask for at most ` +
        `${fit} (limit)`,
      { max_result_bytes: budget, page_rows: pageRows, rows_that_fit: fit },
    );
  }
  for (const row of rows) for (const column of PAGE_BYTES_COLUMNS) delete row[column];
  return rows;
}

/** One pattern row, or PAYLOAD_TOO_LARGE when it is larger than a result may carry (one row: read whole,
 * without the page's window). */
async function oneWithin(db: Db, statement: Statement, budget: number): Promise<Row | undefined> {
  const { rows } = await db.query<Row>(
    `SELECT s.*, ${rowBytes('s')} AS _row_bytes FROM (${statement.text}) s`,
    statement.values,
  );
  const row = rows[0];
  if (!row) return undefined;
  const bytes = Number(row._row_bytes);
  if (bytes > budget) throw cannotBeReturned(row, bytes, budget, 1);
  delete row._row_bytes;
  return row;
}

const byRelevance = (a: string) => `${a}.relevance DESC, ${a}.id`;

async function getById(client: PoolClient, patternId: string, budget: number) {
  const row = await oneWithin(
    client,
    { text: `SELECT ${patternColumns('p')} FROM pattern_templates p WHERE p.id = $1`, values: [patternId] },
    budget,
  );
  if (!row) throw notFound(patternId);
  return row;
}

// The name and language are unique together (pattern_templates_name_language_key): one index lookup.
async function getByName(client: PoolClient, patternName: string, language: string, budget: number) {
  const row = await oneWithin(
    client,
    {
      text: `SELECT ${patternColumns('p')} FROM pattern_templates p WHERE p.pattern_name = $1 AND p.language = $2`,
      values: [patternName, language],
    },
    budget,
  );
  if (!row) {
    throw new EffectError('NOT_FOUND', `no pattern named ${JSON.stringify(patternName)} in ${language}`, {
      pattern_name: patternName,
      language,
    });
  }
  return row;
}

// Full-text over name words, tags, description and template, ranked by ts_rank_cd plus trigram word
// similarity of name and description (the stored search_text). Stages keep the cost bounded:
// 1. patterns whose name or tags match (name_vector, indexed) are ranked first; when they fill the page,
//    description- and template-only matches are not ranked at all (a common word is in most templates);
// 2. otherwise the other full-text matches are ranked too;
// 3. when full text finds nothing, the query again with each word no name holds replaced by itself or
//    the name words most like it (pattern_typo_tsquery, migration 021): "poled config" finds the
//    PooledConfig names, ranked as full text ranks;
// 4. then, when that finds nothing either (no word to correct, or words that no one name holds
//    together), the trigram scan over names. Each is a statement of its own, sent only then: planning
//    the trigram scan's `<%` estimates similarity over the column's statistics, which cost every search
//    about 0.6 ms when the stage was part of the one statement;
// and word similarity is computed only for the few best candidates.
const RANK_CANDIDATES = 50;
const FUZZY_CANDIDATES = 20;

type SearchInput = Pick<SearchRequest, 'search_query' | 'filters' | 'limit' | 'offset'>;
/** What the statements share: the folded query, its parameters, and the page over candidates `c`. */
function searchParts(request: SearchInput) {
  const params = new Params();
  // The indexed text is NFKC-folded (migration 013); the query is folded the same way here.
  const query = request.search_query.normalize('NFKC');
  // Added only by a statement that uses it: a parameter no statement reads has no type to infer.
  const tsquery = () => `websearch_to_tsquery('english', ${params.add(query)})`;
  const raw = `lower(${params.add(query)})`;
  const filters = filterConditions(request.filters, params);
  const wanted = request.limit + request.offset;
  // search_text is what the ranking's word similarity reads.
  const page = () => `SELECT ${patternColumns('p')},
            round((c.r + word_similarity(${raw}, p.search_text))::numeric, 6) AS relevance,
            round(similarity(p.pattern_name, ${params.add(query)})::numeric, 6) AS name_similarity
       FROM c JOIN pattern_templates p ON p.id = c.id
      ORDER BY relevance DESC, p.id
      LIMIT ${params.add(request.limit)} OFFSET ${params.add(request.offset)}`;
  return { params, tsquery, raw, filters, wanted, page };
}

/** The query with its misspelt words corrected (migration 021), as tsquery text, or null when no word
 * was: asked once per search, in a statement of its own, and handed to the statement that uses it. */
async function typoCorrection(db: Db, searchQuery: string): Promise<string | null> {
  const { rows } = await db.query<{ q: string | null }>('SELECT pattern_typo_tsquery($1, $2)::text AS q', [
    searchQuery.normalize('NFKC'),
    MAX_QUERY_NODES,
  ]);
  return rows[0]?.q ?? null;
}

/** The full-text statement (stages 1 and 2), also run bare by the benchmark's query floor. */
export function searchStatement(request: SearchInput): Statement {
  const parts = searchParts(request);
  return fullTextStatement(parts, parts.tsquery());
}

/** Stage 3: the full-text statement over the corrected query (typoCorrection's text), run only when
 * the query itself matches nothing. */
export function correctedSearchStatement(request: SearchInput, corrected: string): Statement {
  const parts = searchParts(request);
  return fullTextStatement(parts, `${parts.params.add(corrected)}::tsquery`);
}

function fullTextStatement(
  { params, filters, wanted, page }: ReturnType<typeof searchParts>,
  tsquery: string,
): Statement {
  const enough = params.add(wanted);
  const candidates = params.add(Math.max(RANK_CANDIDATES, wanted * 2));
  return {
    text: `WITH named AS MATERIALIZED (
       SELECT p.id, ts_rank_cd(p.search_vector, ${tsquery}) AS r
         FROM pattern_templates p
         ${whereClause([`p.name_vector @@ ${tsquery}`, ...filters])}
        ORDER BY r DESC, p.id
        LIMIT ${candidates}
     ),
     c AS MATERIALIZED (
       SELECT id, r FROM named
       UNION ALL
       (SELECT p.id, ts_rank_cd(p.search_vector, ${tsquery}) AS r
          FROM pattern_templates p
          ${whereClause([
            `(SELECT count(*) FROM named) < ${enough}`,
            `p.search_vector @@ ${tsquery}`,
            `NOT p.name_vector @@ ${tsquery}`,
            ...filters,
          ])}
         ORDER BY r DESC, p.id
         LIMIT ${candidates})
     )
     ${page()}`,
    values: params.values,
  };
}

/** The typo statement (stage 4): names by trigram word similarity. Run only when no pattern matches in
 * full text, corrected or not (searchPatterns makes sure): it checks nothing of that itself. */
export function typoSearchStatement(request: SearchInput): Statement {
  const { params, raw, filters, wanted, page } = searchParts(request);
  return {
    text: `WITH c AS (
       SELECT p.id, 0::real AS r
         FROM pattern_templates p
         ${whereClause([`${raw} <% p.name_text`, ...filters])}
        LIMIT ${params.add(Math.max(FUZZY_CANDIDATES, wanted * 2))}
     )
     ${page()}`,
    values: params.values,
  };
}

/** The most parts (words, exclusions, ORs and the ANDs between them: numnode of its tsquery) a query
 * may have: ranking costs each part a pass over every match. On 100,000 patterns 16 words ORed took
 * 0.9 s, 60 exclusions 8.3 s; a search of a few words takes milliseconds. */
export const MAX_QUERY_NODES = 31;
// A shorter query stays near the bound (about 16 parts at most): not checked, which saves a round trip.
const CHECKED_FROM_CHARS = 32;

async function refuseBroadQuery(db: Pick<PoolClient, 'query'>, searchQuery: string): Promise<void> {
  const query = searchQuery.normalize('NFKC');
  if (query.length < CHECKED_FROM_CHARS) return;
  const { rows } = await db.query<{ nodes: number }>(
    `SELECT numnode(websearch_to_tsquery('english', $1)) AS nodes`,
    [query],
  );
  const nodes = rows[0]?.nodes ?? 0;
  if (nodes <= MAX_QUERY_NODES) return;
  throw new EffectError(
    'VALIDATION_ERROR',
    `search_query makes a query of ${nodes} parts (its words, exclusions, ORs and the ANDs between ` +
      `them); at most ${MAX_QUERY_NODES} are searched, about 16 words: search with fewer words`,
    { field: 'search_query', query_nodes: nodes, max_query_nodes: MAX_QUERY_NODES },
  );
}

/** A search: the full-text statement, then the corrected query, then the trigram statement, each only
 * when the one before matches nothing. A query too broad to rank at a bounded cost is refused first. */
export async function searchPatterns(
  db: Db,
  request: SearchInput,
  budget = DEFAULT_MAX_RESULT_BYTES,
): Promise<Row[]> {
  await refuseBroadQuery(db, request.search_query);
  const rows = await pageWithin(db, searchStatement(request), byRelevance, budget);
  if (rows.length > 0) return rows;
  // An empty page past the first may lie past the matches: answered empty, not with corrections. Asked
  // with the first row of the first page, which the indexes answer (an EXISTS over the table was planned
  // as a scan of every pattern that stops at the first match, and reads them all when there is none).
  const first = { ...request, limit: 1, offset: 0 };
  if (request.offset > 0 && (await hasRows(db, searchStatement(first)))) return [];
  const corrected = await typoCorrection(db, request.search_query);
  if (corrected !== null) {
    const fixed = await pageWithin(db, correctedSearchStatement(request, corrected), byRelevance, budget);
    if (fixed.length > 0) return fixed;
    if (request.offset > 0 && (await hasRows(db, correctedSearchStatement(first, corrected)))) return [];
  }
  return pageWithin(db, typoSearchStatement(request), byRelevance, budget);
}

async function hasRows(db: Db, statement: Statement): Promise<boolean> {
  return (await db.query(statement.text, statement.values)).rows.length > 0;
}

// The list operations differ only in where patterns come from and how they are ordered (both constants).
const LISTS = {
  filter: {
    from: 'pattern_templates p',
    columns: patternColumns('p'),
    /** The order, over the columns of the alias given: the source's (`sortedBy`) and the page's. */
    order: (a: string) => `${a}.confidence_score DESC NULLS LAST, ${a}.id`,
    sortedBy: 'p',
  },
  top: {
    // v_pattern_ranking ranks every pattern; v_top_patterns (the seed's view) is its non-deprecated part.
    from: 'v_pattern_ranking t JOIN pattern_templates p ON p.id = t.id',
    columns: `${patternColumns('p')}, t.rank, t.wilson_score`,
    // rank is a row_number: unique.
    order: (a: string) => `${a}.rank`,
    sortedBy: 't',
  },
} as const;

async function listPatterns(
  client: PoolClient,
  list: keyof typeof LISTS,
  { filters, limit, offset }: { filters?: Filters | null | undefined; limit: number; offset: number },
  budget: number,
) {
  const { from, columns, order, sortedBy } = LISTS[list];
  const params = new Params();
  const page = `SELECT ${columns} FROM ${from}
       ${whereClause(filterConditions(filters, params))}
      ORDER BY ${order(sortedBy)}
      LIMIT ${params.add(limit)} OFFSET ${params.add(offset)}`;
  // The seed's get_top rows carried recent_usage_count (migration 015): counted for the page only.
  const text =
    list === 'top'
      ? `SELECT page.*, pattern_recent_usage_count(page.id) AS recent_usage_count FROM (${page}) page
          ORDER BY ${order('page')}`
      : page;
  return pageWithin(client, { text, values: params.values }, order, budget);
}

// The seed returned outgoing relationships only; `direction` asks for incoming ones, or both.
const RELATED_SOURCES = {
  outgoing: `SELECT target_pattern_id AS other, relationship_type, strength, description, 'outgoing' AS direction
               FROM pattern_relationships WHERE source_pattern_id = $1`,
  incoming: `SELECT source_pattern_id AS other, relationship_type, strength, description, 'incoming' AS direction
               FROM pattern_relationships WHERE target_pattern_id = $1`,
} as const;

/** Related rows' order, over the relationship's alias and the pattern's (one alias for the page's rows).
 * `direction` is part of it: with `both`, a pattern can be related each way by the same type. */
const relatedOrder = (rel: string, pattern = rel) =>
  `${rel}.strength DESC, ${pattern}.confidence_score DESC NULLS LAST, ${pattern}.id, ` +
  `${rel}.relationship_type, ${rel}.direction`;

async function getRelated(client: PoolClient, request: GetRelatedRequest, budget: number) {
  const exists = await client.query('SELECT 1 FROM pattern_templates WHERE id = $1', [request.pattern_id]);
  if (exists.rowCount === 0) throw notFound(request.pattern_id);
  const source =
    request.direction === 'both'
      ? `${RELATED_SOURCES.outgoing} UNION ALL ${RELATED_SOURCES.incoming}`
      : RELATED_SOURCES[request.direction];
  return pageWithin(
    client,
    {
      text: `SELECT ${patternColumns('p')}, r.relationship_type, r.strength,
                    r.description AS relationship_description, r.direction
               FROM (${source}) r
               JOIN pattern_templates p ON p.id = r.other
              WHERE NOT p.is_deprecated
              ORDER BY ${relatedOrder('r', 'p')}
              LIMIT $2 OFFSET $3`,
      values: [request.pattern_id, request.limit, request.offset],
    },
    (a) => relatedOrder(a),
    budget,
  );
}

// Late-reply pickup: a caller that timed out asks what became of its request. Writes are recorded with
// their identity (effect-runner), reads are not, and failures roll back with their transaction.
async function getResult(client: PoolClient, request: GetResultRequest): Promise<StoredResultLookup> {
  const identities = request.request_identity
    ? [request.request_identity]
    : identitiesOfCorrelationId(request.request_correlation_id ?? '');
  const record = await lookupIdentity(client, identities);
  if (record) {
    const { success, data, error, pruned } = record.outcome;
    return {
      status: 'applied',
      identity: record.identity,
      topic: record.topic,
      operation: record.operation,
      processed_at: record.processed_at.toISOString(),
      result_pruned: pruned === true,
      result: { success, data, error },
    };
  }
  const operation = request.request_operation;
  if (operation && !isWriteOperation(operation as Operation)) {
    return {
      status: 'not_stored',
      operation,
      hint: `${operation} is a read and reads are not recorded: send it again`,
    };
  }
  return {
    status: 'unknown',
    identities,
    hint:
      'nothing is recorded for this request: it is not applied yet (still queued or retrying: ask again ' +
      "later), or it failed (its error result was published and the message is in its topic's .dlq), " +
      'or it was a read (reads are not recorded), or no worker received it',
  };
}
