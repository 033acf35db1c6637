// NodePatternUpdateEffect: usage tracking and relationships. recordUsageBatch applies many usage events in
// one transaction (one multi-row insert; the statement trigger updates each pattern's statistics once);
// updateStatsBatch answers many recomputations of one pattern with one.
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { EffectError, RetryableError } from '../contracts/errors.ts';
import type { UsageData } from '../contracts/fields.ts';
import type {
  CreateRelationshipRequest,
  RecordUsageRequest,
  UpdateRelationshipRequest,
  UpdateStatsRequest,
} from '../contracts/requests.ts';
import type { ModelResult } from '../contracts/results.ts';
import type { Pool, PoolClient } from '../db/pool.ts';

type Row = Record<string, unknown>;
import { withTransaction } from '../db/transaction.ts';
import { EffectNode, type ExecuteContext, type Handlers, type NodeOptions } from './effect-node.ts';
import { traceBatch } from './node-span.ts';
import { buildResult } from '../contracts/results.ts';
import { failureOutcome, type EffectScope } from './effect-runner.ts';
import {
  ApplyOneByOne,
  duplicateMetadata,
  IdentityBatch,
  type BatchAnswer,
  type StoredOutcome,
} from './identity-store.ts';
import { requestFingerprint } from '../contracts/fingerprint.ts';
import { usageEventId } from './ids.ts';
import { notFound } from '../contracts/errors.ts';

const TOPIC = 'pattern.usage';

/** Ends a rehearsal's transaction with a rollback. */
class Rehearsed extends Error {}

const INSERT_EVENTS_SQL = `
  INSERT INTO pattern_usage_events (id, pattern_id, correlation_id, file_path, project_id, success, execution_time_ms,
                                    error_message, quality_before, quality_after, tags, context, used_at)
  SELECT x.id, x.pattern_id, x.correlation_id, x.file_path, x.project_id, x.success, x.execution_time_ms,
         x.error_message, x.quality_before, x.quality_after, coalesce(x.tags, '{}'), coalesce(x.context, '{}'), x.used_at
    FROM jsonb_to_recordset($1::jsonb) AS x(id uuid, pattern_id uuid, correlation_id text, file_path text,
         project_id text, success boolean, execution_time_ms numeric, error_message text, quality_before numeric,
         quality_after numeric, tags text[], context jsonb, used_at timestamptz)
  RETURNING id, pattern_id, used_at, quality_improvement`;

interface EventRow {
  id: string;
  pattern_id: string;
  used_at: Date;
  quality_improvement: number | null;
}

function eventRecord(id: string, request: RecordUsageRequest, eventTime: Date) {
  const u: UsageData = request.usage_data;
  return {
    id,
    pattern_id: request.pattern_id,
    correlation_id: request.correlation_id ?? null,
    file_path: u.file_path ?? null,
    project_id: u.project_id ?? null,
    success: u.success,
    execution_time_ms: u.execution_time_ms ?? null,
    error_message: u.error_message ?? null,
    quality_before: u.quality_before ?? null,
    quality_after: u.quality_after ?? null,
    tags: u.tags ?? null,
    context: u.context ?? null,
    used_at: u.used_at ?? eventTime.toISOString(),
  };
}

function usageData(row: EventRow) {
  return {
    event_id: row.id,
    pattern_id: row.pattern_id,
    used_at: row.used_at,
    quality_improvement: row.quality_improvement,
  };
}

export interface BatchItem<R> {
  request: R;
  context: ExecuteContext;
}
export type UsageBatchItem = BatchItem<RecordUsageRequest>;
export type StatsBatchItem = BatchItem<UpdateStatsRequest>;

/** The identity records' view of a batch's items. */
function identityBatch(
  operation: string,
  items: readonly BatchItem<RecordUsageRequest | UpdateStatsRequest>[],
) {
  return new IdentityBatch(
    TOPIC,
    operation,
    items.map((item) => ({
      identity: item.context.identity,
      source: item.context.source,
      fingerprint:
        item.context.identity === undefined
          ? undefined
          : (item.context.fingerprint ?? requestFingerprint(item.request)),
    })),
  );
}

export class NodePatternUpdateEffect extends EffectNode<'pattern.usage'> {
  constructor(pool: Pool, options: NodeOptions = {}) {
    super(TOPIC, pool, options);
  }

  protected readonly handlers: Handlers<'pattern.usage'> = {
    record_usage: (request, scope) => recordUsage(scope, request),
    update_stats: (request, scope) => updateStats(scope.client, request.pattern_id),
    create_relationship: (request, scope) => createRelationship(scope, request),
    update_relationship: (request, scope) => updateRelationship(scope, request),
  };

  /**
   * Applies many record_usage requests in one transaction and returns one result per item, in order.
   * Identities already applied get their stored result (duplicate: true); events for patterns that do
   * not exist get INVALID_REFERENCE. If the batch fails as a whole, each item is applied on its own.
   */
  async recordUsageBatch(items: UsageBatchItem[]): Promise<ModelResult[]> {
    return this.#batch('record_usage', items, (client) => this.#applyBatch(client, items));
  }

  /**
   * Applies many update_stats requests in one transaction, one recomputation per pattern: each message
   * is answered with the statistics they give, as if applied back to back (nothing else of the pattern
   * can run between them). Identities already applied get their stored result; a pattern that does not
   * exist gives each of its messages NOT_FOUND, recording nothing, as one at a time.
   */
  async updateStatsBatch(items: StatsBatchItem[]): Promise<ModelResult[]> {
    return this.#batch('update_stats', items, (client) => applyStatsBatch(client, items));
  }

  async #batch<R extends RecordUsageRequest | UpdateStatsRequest>(
    operation: R['operation'],
    items: BatchItem<R>[],
    apply: (client: PoolClient) => Promise<BatchAnswer[]>,
  ): Promise<ModelResult[]> {
    if (items.length === 0) return [];
    return traceBatch(this.nodeName, operation, items.length, () => this.#runBatch(operation, items, apply));
  }

  async #runBatch<R extends RecordUsageRequest | UpdateStatsRequest>(
    operation: R['operation'],
    items: BatchItem<R>[],
    apply: (client: PoolClient) => Promise<BatchAnswer[]>,
  ): Promise<ModelResult[]> {
    const startedAt = performance.now();
    try {
      const outcomes = await withTransaction(this.pool, apply);
      return items.map((item, i) => {
        const { outcome, duplicate } = outcomes[i] as { outcome: StoredOutcome; duplicate: boolean };
        return buildResult(
          outcome as ModelResult,
          {
            correlationId: item.request.correlation_id ?? null,
            operation,
            node: this.nodeName,
            startedAt,
          },
          item.context.source,
          duplicate
            ? { ...duplicateMetadata(outcome), batch_size: items.length }
            : { batch_size: items.length },
        );
      });
    } catch (err) {
      if (err instanceof RetryableError) throw err;
      if (err instanceof ApplyOneByOne) {
        this.logger?.debug({ size: items.length }, err.message);
      } else {
        failureOutcome(err, this.logger, operation); // rethrows transient ones
        this.logger?.warn(
          { size: items.length, operation },
          'batch failed as a whole; applying its messages one by one',
        );
      }
      const results: ModelResult[] = [];
      for (const item of items) results.push(await this.executeEffect(item.request, item.context));
      return results;
    }
  }

  /**
   * Runs a usage batch for a throwaway pattern on one connection and rolls it all back: the backend plans
   * the batch's statements and compiles the statistics triggers, and this path of the node is compiled,
   * before the worker takes partitions (a backend's first batch took 2-3x a warm one; under a deploy's
   * load, 70-110 ms). Nothing stays: not the pattern, the event, the rollups nor the identity.
   */
  async rehearse(): Promise<void> {
    const marker = randomUUID();
    await withTransaction(this.pool, async (client) => {
      await client.query(
        `INSERT INTO pattern_templates (id, pattern_name, pattern_type, language) VALUES ($1, $2, 'rehearsal', 'none')`,
        [marker, `rehearsal-${marker}`],
      );
      const request: RecordUsageRequest = {
        operation: 'record_usage',
        pattern_id: marker,
        usage_data: { success: true, execution_time_ms: 1, quality_before: 0.5, quality_after: 0.6 },
      };
      await this.#applyBatch(client, [
        { request, context: { identity: `rehearsal/${marker}`, eventTime: new Date(), validated: true } },
      ]);
      throw new Rehearsed();
    }).catch((err: unknown) => {
      if (!(err instanceof Rehearsed)) throw err;
    });
  }

  async #applyBatch(client: PoolClient, items: UsageBatchItem[]): Promise<BatchAnswer[]> {
    const batch = identityBatch('record_usage', items);
    await batch.resolve(client);
    const pending = batch.pending();

    const patternIds = [
      ...new Set(pending.map((i) => (items[i] as UsageBatchItem).request.pattern_id.toLowerCase())),
    ];
    const existing = new Set(
      (
        await client.query<{ id: string }>('SELECT id FROM pattern_templates WHERE id = ANY($1::uuid[])', [
          patternIds,
        ])
      ).rows.map((r) => r.id),
    );
    const toInsert: { index: number; id: string }[] = [];
    const records: ReturnType<typeof eventRecord>[] = [];
    for (const index of pending) {
      const item = items[index] as UsageBatchItem;
      if (!existing.has(item.request.pattern_id.toLowerCase())) {
        batch.fail(index, {
          success: false,
          data: null,
          error: { code: 'INVALID_REFERENCE', message: `pattern ${item.request.pattern_id} does not exist` },
        });
        continue;
      }
      const eventTime = item.context.eventTime ?? new Date();
      const id = usageEventId(batch.identity(index), eventTime);
      toInsert.push({ index, id });
      records.push(eventRecord(id, item.request, eventTime));
    }
    if (records.length > 0) {
      const { rows } = await client.query<EventRow>(INSERT_EVENTS_SQL, [JSON.stringify(records)]);
      const byId = new Map(rows.map((r) => [r.id, r]));
      await batch.record(
        client,
        toInsert.map(({ index, id }) => ({
          index,
          outcome: { success: true, data: usageData(byId.get(id) as EventRow), error: null },
        })),
      );
    }
    return batch.answers();
  }
}

async function recordUsage(scope: EffectScope, request: RecordUsageRequest) {
  const record = eventRecord(usageEventId(scope.identity, scope.eventTime), request, scope.eventTime);
  const { rows } = await scope.client.query<EventRow>(INSERT_EVENTS_SQL, [JSON.stringify([record])]);
  return usageData(rows[0] as EventRow);
}

async function applyStatsBatch(client: PoolClient, items: StatsBatchItem[]): Promise<BatchAnswer[]> {
  const batch = identityBatch('update_stats', items);
  await batch.resolve(client);
  const byPattern = new Map<string, number[]>();
  for (const index of batch.pending()) {
    const patternId = (items[index] as StatsBatchItem).request.pattern_id;
    const indexes = byPattern.get(patternId);
    if (indexes) indexes.push(index);
    else byPattern.set(patternId, [index]);
  }
  // In id order, the order in which every write of the pattern rows takes their locks.
  for (const patternId of [...byPattern.keys()].sort()) {
    const indexes = byPattern.get(patternId) as number[];
    let data: Row;
    try {
      data = await updateStats(client, patternId);
    } catch (err) {
      if (!(err instanceof EffectError)) throw err;
      for (const index of indexes) batch.fail(index, failureOutcome(err, undefined, 'update_stats'));
      continue;
    }
    await batch.record(
      client,
      indexes.map((index) => ({ index, outcome: { success: true, data, error: null } })),
    );
  }
  return batch.answers();
}

async function updateStats(client: PoolClient, patternId: string) {
  const { rows } = await client.query<Row>(
    `SELECT id AS pattern_id, usage_count, success_count, success_rate, avg_quality_improvement,
            avg_execution_time_ms, last_used_at, confidence_score
       FROM recompute_pattern_stats($1)`,
    [patternId],
  );
  const row = rows[0] as { pattern_id: string | null } | undefined;
  if (!row || row.pattern_id === null) throw notFound(patternId);
  return row;
}

/** The seed's default strength of a new relationship (get_related ranks by strength). */
const DEFAULT_STRENGTH = 0.5;

async function createRelationship(scope: EffectScope, request: CreateRelationshipRequest) {
  const r = request.relationship_data;
  const { rows } = await scope.client.query<Row>(
    `INSERT INTO pattern_relationships AS r (id, source_pattern_id, target_pattern_id, relationship_type, strength,
                                             description, context, created_at, updated_at)
     VALUES ($1, $2, $3, $4, coalesce($5::numeric, ${DEFAULT_STRENGTH}), $6::text, coalesce($7::jsonb, '{}'), $8, $8)
     ON CONFLICT (source_pattern_id, target_pattern_id, relationship_type) DO UPDATE SET
       strength = coalesce($5, r.strength),
       description = coalesce($6, r.description),
       context = coalesce($7::jsonb, r.context),
       updated_at = $8
     RETURNING id AS relationship_id, source_pattern_id, target_pattern_id, relationship_type, strength,
               created_at AS discovered_at, (xmax = 0) AS created`,
    [
      scope.newId('relationship'),
      r.source_pattern_id,
      r.target_pattern_id,
      r.relationship_type,
      r.strength ?? null,
      r.description ?? null,
      r.context == null ? null : JSON.stringify(r.context),
      scope.eventTime,
    ],
  );
  return rows[0];
}

async function updateRelationship(scope: EffectScope, request: UpdateRelationshipRequest) {
  const r = request.relationship_data;
  const { rows } = await scope.client.query<Row>(
    `UPDATE pattern_relationships SET
       strength = coalesce($4::numeric, strength),
       description = coalesce($5::text, description),
       context = coalesce($6::jsonb, context),
       updated_at = $7
     WHERE source_pattern_id = $1 AND target_pattern_id = $2 AND relationship_type = $3
     RETURNING id AS relationship_id, source_pattern_id, target_pattern_id, relationship_type, strength, description,
               updated_at`,
    [
      r.source_pattern_id,
      r.target_pattern_id,
      r.relationship_type,
      r.strength ?? null,
      r.description ?? null,
      r.context == null ? null : JSON.stringify(r.context),
      scope.eventTime,
    ],
  );
  if (rows.length === 0) {
    throw new EffectError(
      'NOT_FOUND',
      `no ${r.relationship_type} relationship from ${r.source_pattern_id} to ${r.target_pattern_id}`,
    );
  }
  return rows[0];
}
