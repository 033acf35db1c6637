// SQL fragments shared by the nodes. Column names are constants here; values always go in as parameters.
import type { Filters } from '../contracts/fields.ts';

/** Columns a pattern is returned with (internal sums and the search vector stay inside). */
export const PATTERN_COLUMNS = [
  // The seed's rows carried `id`; ours `pattern_id`: both, the same value.
  'id',
  'id AS pattern_id',
  'pattern_name',
  'pattern_type',
  'language',
  'category',
  'template_code',
  'description',
  'example_usage',
  'source',
  'confidence_score',
  'usage_count',
  'success_count',
  'success_rate',
  'avg_quality_improvement',
  'avg_execution_time_ms',
  'complexity_score',
  'maintainability_score',
  'performance_score',
  'parent_pattern_id',
  'is_deprecated',
  'deprecated_by_id',
  'created_by',
  'tags',
  'context',
  'discovered_at',
  'updated_at',
  'last_used_at',
] as const;

export function patternColumns(alias: string): string {
  return PATTERN_COLUMNS.map((c) => `${alias}.${c}`).join(', ');
}

/** The columns whose size varies from pattern to pattern; the others fit in a fixed 1,024 bytes. */
const SIZED_COLUMNS = ['template_code', 'description', 'example_usage', 'source', 'tags', 'context'];

function sizeOf(a: string, measure: (column: string) => string): string {
  return `(1024 + ${SIZED_COLUMNS.map((c) => `coalesce(octet_length(${measure(`${a}.${c}`)}), 0)`).join(' + ')})`;
}

/** About the bytes a returned pattern row takes in a result, for a page: its text, tags and context as
 * stored (JSON escaping can add to that: resultRowBytes counts it). Lengths of stored text are read
 * without decompressing it. */
export function rowBytes(a: string): string {
  return sizeOf(a, (column) => `${column}::text`);
}

/**
 * The bytes a pattern row takes in a result, its JSON escaping included (a quote or a backslash is two
 * bytes there): what a write checks, so that no pattern is written that a read of it alone cannot return.
 * Reads its text whole, so it is for the one row written, not for a page.
 */
export function resultRowBytes(a: string): string {
  return sizeOf(a, (column) => `to_json(${column})::text`);
}

/** The row columns pageWithin adds and takes off again. */
export const PAGE_BYTES_COLUMNS = ['_row_bytes', '_bytes_upto', '_page_rows'] as const;

/**
 * `statement`'s rows, ordered by `orderBy` (over its output columns, qualified by the alias given), only
 * those that start within `budget` bytes: a page of large patterns never reaches the worker whole (a
 * thousand rows of 130 KB each took its 128 MB heap down). Each row says the bytes of the page up to it
 * and how many rows the page had.
 */
export function withinBytes(statement: string, orderBy: (alias: string) => string, budget: string): string {
  return `SELECT * FROM (
      SELECT b.*, sum(b._row_bytes) OVER (ORDER BY ${orderBy('b')} ROWS UNBOUNDED PRECEDING) AS _bytes_upto,
             count(*) OVER () AS _page_rows
        FROM (SELECT r.*, ${rowBytes('r')} AS _row_bytes FROM (${statement}) r) b
     ) s
   WHERE s._bytes_upto - s._row_bytes < ${budget}
   ORDER BY ${orderBy('s')}`;
}

/** Collects positional parameters while a statement is assembled from fixed fragments. */
export class Params {
  readonly values: unknown[] = [];

  add(value: unknown): string {
    this.values.push(value);
    return `$${this.values.length}`;
  }
}

/** WHERE conditions for the contract's filters; deprecated patterns are skipped unless asked for. */
export function filterConditions(filters: Filters | null | undefined, params: Params, alias = 'p'): string[] {
  const f = filters ?? {};
  const where: string[] = [];
  if (f.language != null) where.push(`${alias}.language = ${params.add(f.language)}`);
  if (f.pattern_type != null) where.push(`${alias}.pattern_type = ${params.add(f.pattern_type)}`);
  if (f.category != null) where.push(`${alias}.category = ${params.add(f.category)}`);
  if (f.tags != null && f.tags.length > 0) where.push(`${alias}.tags @> ${params.add(f.tags)}::text[]`);
  if (f.min_confidence_score != null) {
    where.push(`${alias}.confidence_score >= ${params.add(f.min_confidence_score)}`);
  }
  if (f.min_success_rate != null) where.push(`${alias}.success_rate >= ${params.add(f.min_success_rate)}`);
  if (f.include_deprecated !== true) where.push(`NOT ${alias}.is_deprecated`);
  return where;
}

export function whereClause(conditions: string[]): string {
  return conditions.length > 0 ? `WHERE ${conditions.join(' AND ')}` : '';
}
