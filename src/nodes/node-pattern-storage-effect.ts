// NodePatternStorageEffect: insert, update, delete, batch_insert of pattern templates.
import { EffectError, notFound } from '../contracts/errors.ts';
import { DEFAULT_MAX_RESULT_BYTES } from '../contracts/results.ts';
import { EDITABLE_COLUMNS, type InsertData } from '../contracts/fields.ts';
import type { BatchInsertRequest, UpdateRequest } from '../contracts/requests.ts';
import type { PoolClient } from '../db/pool.ts';
import { EffectNode, type Handlers, type NodeOptions } from './effect-node.ts';
import type { EffectScope } from './effect-runner.ts';
import type { Pool } from '../db/pool.ts';
import { resultRowBytes } from './pattern-sql.ts';

// Column types for jsonb_to_recordset; every insertable column is listed, none comes from input.
const COLUMN_TYPES: Record<string, string> = {
  pattern_name: 'text',
  pattern_type: 'text',
  language: 'text',
  category: 'text',
  template_code: 'text',
  description: 'text',
  example_usage: 'text',
  source: 'text',
  confidence_score: 'numeric',
  complexity_score: 'numeric',
  maintainability_score: 'numeric',
  performance_score: 'numeric',
  parent_pattern_id: 'uuid',
  is_deprecated: 'boolean',
  deprecated_by_id: 'uuid',
  created_by: 'text',
  tags: 'text[]',
  context: 'jsonb',
};
// What the seed stored when an insert left a field out (an explicit null stays null, as it did there).
const ORIGINAL_INSERT_DEFAULTS: Partial<Record<(typeof EDITABLE_COLUMNS)[number], unknown>> = {
  confidence_score: 0.5,
  created_by: 'system',
};
const DEFAULTS: Record<string, string> = {
  tags: `'{}'::text[]`,
  context: `'{}'::jsonb`,
  is_deprecated: 'false',
};

const RECORD_COLUMNS = ['id', ...EDITABLE_COLUMNS, 'discovered_at'];
const RECORD_TYPES = [
  'id uuid',
  ...EDITABLE_COLUMNS.map((c) => `${c} ${COLUMN_TYPES[c]}`),
  'discovered_at timestamptz',
];
const SELECTED = RECORD_COLUMNS.map((c) => (DEFAULTS[c] ? `coalesce(x.${c}, ${DEFAULTS[c]})` : `x.${c}`));

// One set-based statement for one pattern or a thousand: all or nothing.
const INSERT_SQL = `
  INSERT INTO pattern_templates (${RECORD_COLUMNS.join(', ')}, updated_at)
  SELECT ${SELECTED.join(', ')}, x.discovered_at
    FROM jsonb_to_recordset($1::jsonb) AS x(${RECORD_TYPES.join(', ')})
  RETURNING id, pattern_name, discovered_at, ${resultRowBytes('pattern_templates')} AS row_bytes`;

interface InsertedRow {
  id: string;
  pattern_name: string;
  discovered_at: Date;
  row_bytes: number;
}

/** A pattern that no read could return whole is refused when it is written, not on every read after. */
function refuseUnreadable(
  row: { row_bytes: number | string; id?: string },
  max: number,
  field: string,
): void {
  const bytes = Number(row.row_bytes);
  if (bytes <= max) return;
  throw new EffectError(
    'PAYLOAD_TOO_LARGE',
    `${field}: the pattern would take about ${bytes} bytes, more than the ${max} bytes a result may carry ` +
      '(WORKER_MAX_RESULT_BYTES), so no read could return it: make its text or context smaller',
    { field, pattern_bytes: bytes, max_result_bytes: max },
  );
}

export class NodePatternStorageEffect extends EffectNode<'pattern.insert'> {
  /** The largest pattern a read can return (WORKER_MAX_RESULT_BYTES); a larger one is not written. */
  readonly maxResultBytes: number;

  constructor(pool: Pool, options: NodeOptions = {}) {
    super('pattern.insert', pool, options);
    this.maxResultBytes = options.maxResultBytes ?? DEFAULT_MAX_RESULT_BYTES;
  }

  protected readonly handlers: Handlers<'pattern.insert'> = {
    insert: async (request, scope) => {
      const [row] = (await this.#insert([request.data], scope)) as [InsertedRow];
      return { pattern_id: row.id, pattern_name: row.pattern_name, discovered_at: row.discovered_at };
    },
    batch_insert: (request, scope) => this.#batchInsert(request, scope),
    update: (request, scope) => this.#update(request, scope),
    delete: (request, scope) => this.#delete(scope.client, request.pattern_id),
  };

  async #insert(patterns: InsertData[], scope: EffectScope): Promise<InsertedRow[]> {
    const records = patterns.map((data, index) => {
      const record: Record<string, unknown> = {
        id: data.pattern_id ?? scope.newId('pattern', index),
        discovered_at: data.discovered_at ?? scope.eventTime.toISOString(),
      };
      for (const column of EDITABLE_COLUMNS) {
        const value = data[column] === undefined ? ORIGINAL_INSERT_DEFAULTS[column] : data[column];
        if (value !== undefined) record[column] = value;
      }
      return record;
    });
    const { rows } = await scope.client.query<InsertedRow>(INSERT_SQL, [JSON.stringify(records)]);
    const byId = new Map(rows.map((r) => [r.id, r]));
    const inserted = records.map((r) => byId.get(r.id as string) as InsertedRow);
    inserted.forEach((row, i) =>
      refuseUnreadable(row, this.maxResultBytes, patterns.length === 1 ? 'data' : `patterns[${i}]`),
    );
    return inserted;
  }

  async #batchInsert(request: BatchInsertRequest, scope: EffectScope) {
    const rows = await this.#insert(request.patterns, scope);
    return { pattern_ids: rows.map((r) => r.id), count: rows.length };
  }

  async #update(request: UpdateRequest, scope: EffectScope) {
    const sets: string[] = [];
    const values: unknown[] = [request.pattern_id];
    const fields: string[] = [];
    for (const column of EDITABLE_COLUMNS) {
      const value = (request.data as Partial<InsertData>)[column];
      if (value === undefined) continue;
      values.push(column === 'context' && value !== null ? JSON.stringify(value) : value);
      sets.push(`${column} = $${values.length}`);
      fields.push(column);
    }
    values.push(scope.eventTime);
    const { rows } = await scope.client.query<{ pattern_name: string; updated_at: Date; row_bytes: number }>(
      `UPDATE pattern_templates SET ${sets.join(', ')}, updated_at = $${values.length} WHERE id = $1
       RETURNING pattern_name, updated_at, ${resultRowBytes('pattern_templates')} AS row_bytes`,
      values,
    );
    const row = rows[0];
    if (!row) throw notFound(request.pattern_id);
    refuseUnreadable(row, this.maxResultBytes, 'data');
    return {
      pattern_id: request.pattern_id,
      pattern_name: row.pattern_name,
      fields_updated: fields,
      updated_at: row.updated_at,
    };
  }

  async #delete(client: PoolClient, patternId: string) {
    const { rows } = await client.query<{ pattern_name: string }>(
      'DELETE FROM pattern_templates WHERE id = $1 RETURNING pattern_name',
      [patternId],
    );
    if (rows.length === 0) throw notFound(patternId);
    return { pattern_id: patternId, pattern_name: rows[0]?.pattern_name, deleted: true };
  }
}
