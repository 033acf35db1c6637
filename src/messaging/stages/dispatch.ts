// Stage "dispatch": a prepared request to the effect node of its topic, one result per message. A
// refused request gets its error result here without touching a node; a batch (usage events, or one
// pattern's recomputations) goes to the update node's batch path in one transaction.
import { performance } from 'node:perf_hooks';
import type { ModelError } from '../../contracts/errors.ts';
import type { RecordUsageRequest, UpdateStatsRequest } from '../../contracts/requests.ts';
import { buildResult, type ModelResult } from '../../contracts/results.ts';
import { TOPIC_SPECS } from '../../contracts/operations.ts';
import type { Pool } from '../../db/pool.ts';
import {
  NodePatternAnalyticsEffect,
  NodePatternQueryEffect,
  NodePatternStorageEffect,
  NodePatternUpdateEffect,
} from '../../nodes/index.ts';
import type { NodeOptions } from '../../nodes/effect-node.ts';
import type { Prepared } from './prepare.ts';

export interface Nodes {
  storage: NodePatternStorageEffect;
  query: NodePatternQueryEffect;
  update: NodePatternUpdateEffect;
  analytics: NodePatternAnalyticsEffect;
}

/** The effect node of each request topic (dispatchOne routes by topic), on `pool`; `readTimeoutMs` bounds
 * the query node's reads only (DB_READS_STATEMENT_TIMEOUT_MS). */
export function createNodes(pool: Pool, options: NodeOptions = {}): Nodes {
  const { readTimeoutMs, ...shared } = options;
  return {
    storage: new NodePatternStorageEffect(pool, shared),
    query: new NodePatternQueryEffect(pool, { ...shared, ...(readTimeoutMs ? { readTimeoutMs } : {}) }),
    update: new NodePatternUpdateEffect(pool, shared),
    analytics: new NodePatternAnalyticsEffect(pool, shared),
  };
}

/** The error result of a refused request, in the shape of its node's results. */
export function errorResult(p: Prepared, error: ModelError): ModelResult {
  const operation = typeof p.request?.operation === 'string' ? p.request.operation : '';
  return buildResult(
    { success: false, data: null, error },
    {
      correlationId: p.correlationId,
      operation,
      node: TOPIC_SPECS[p.logical].node,
      startedAt: performance.now(),
    },
    p.context.source,
  );
}

export async function dispatchOne(nodes: Nodes, p: Prepared): Promise<ModelResult> {
  if (p.error || !p.request) return errorResult(p, p.error ?? { code: 'INTERNAL', message: 'no request' });
  const request = p.request;
  switch (p.logical) {
    case 'pattern.insert':
      return nodes.storage.executeEffect(request as never, p.context);
    case 'pattern.search.request':
      return nodes.query.executeEffect(request as never, p.context);
    case 'pattern.usage':
      return nodes.update.executeEffect(request as never, p.context);
    case 'pattern.analytics.compute':
      return nodes.analytics.executeEffect(request as never, p.context);
  }
}

/** A batch's messages applied together; refused ones in the run keep their error results, in order. */
export async function dispatchBatch(nodes: Nodes, prepared: readonly Prepared[]): Promise<ModelResult[]> {
  const valid = prepared.filter((p) => !p.error && p.request);
  const batchOf = <R>(p: Prepared) => ({ request: p.request as R, context: p.context });
  const operation = valid[0]?.request?.operation;
  let results: ModelResult[];
  if (operation === 'record_usage') {
    results = await nodes.update.recordUsageBatch(valid.map(batchOf<RecordUsageRequest>));
  } else if (operation === 'update_stats') {
    results = await nodes.update.updateStatsBatch(valid.map(batchOf<UpdateStatsRequest>));
  } else {
    // An operation declared batchable without a batch path here: one at a time, in order.
    results = [];
    for (const p of valid) results.push(await dispatchOne(nodes, p));
  }
  const byPrepared = new Map(valid.map((p, i) => [p, results[i] as ModelResult]));
  return prepared.map((p) => byPrepared.get(p) ?? errorResult(p, p.error as ModelError));
}
