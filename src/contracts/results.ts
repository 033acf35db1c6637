// The result envelope (CONTRACT "Result"), the seed's ModelResult.
import { performance } from 'node:perf_hooks';
import { z } from 'zod';
import { ERROR_CODES, type ModelError } from './errors.ts';

/** The most bytes a result may have by default (WORKER_MAX_RESULT_BYTES): under the broker's default
 * record limit of 1 MiB, with room for the record's headers. */
export const DEFAULT_MAX_RESULT_BYTES = 900_000;

export const modelErrorSchema = z.object({
  code: z.enum(ERROR_CODES),
  message: z.string(),
  details: z.record(z.string(), z.unknown()).optional(),
});

export const messageSourceSchema = z.object({
  topic: z.string(),
  partition: z.int(),
  offset: z.string(),
  /** With the coordinates, tells the request from one at the same coordinates of a topic since deleted
   * and created again (a replay's live outcomes). */
  timestamp: z
    .string()
    .optional()
    .describe("the request record's Kafka timestamp (ms since the epoch, decimal)"),
});
export type MessageSource = z.infer<typeof messageSourceSchema>;

export const resultMetadataSchema = z.looseObject({
  correlation_id: z.string().nullable(),
  operation: z.string(),
  node: z.string(),
  duration_ms: z.number(),
  duplicate: z.boolean().optional(),
  /** On a duplicate answered after WORKER_RESULT_RETENTION: the stored body was pruned to its ids. */
  result_pruned: z.boolean().optional(),
  source: messageSourceSchema.optional(),
  batch_size: z
    .int()
    .optional()
    .describe(
      'pattern.usage writes applied in a batch (record_usage; update_stats of one pattern): how many messages shared its transaction',
    ),
  /** pattern.search.request successes, as the seed's query node: rows in a list, 1 for one pattern. */
  result_count: z.int().optional(),
  /**
   * Analytics reads: every figure in `data` was read from the database at this time or later (for a cached
   * answer, when it was computed; get_global_stats: also no later than its reused top_patterns' read).
   */
  as_of: z
    .string()
    .optional()
    .describe(
      'analytics reads: every figure in data was read from the database at this time or later (ISO-8601); a cached answer states when it was computed',
    ),
  /** Analytics reads answered from the cache (ANALYTICS_RESULT_MAX_AGE_MS) instead of the database. */
  cached: z
    .boolean()
    .optional()
    .describe('analytics reads: answered from the cache of identical global reads (as_of says how old)'),
});
export type ResultMetadata = z.infer<typeof resultMetadataSchema>;

export const modelResultSchema = z.object({
  success: z.boolean(),
  data: z.unknown().nullable(),
  error: modelErrorSchema.nullable(),
  metadata: resultMetadataSchema,
});

export interface ModelResult<T = unknown> {
  success: boolean;
  data: T | null;
  error: ModelError | null;
  metadata: ResultMetadata;
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

/** The envelope of one outcome: the one place results are built, by nodes and by the engine alike. */
export function buildResult<T>(
  outcome: { success: boolean; data: T | null; error: ModelError | null },
  meta: { correlationId: string | null | undefined; operation: string; node: string; startedAt: number },
  source?: MessageSource,
  extra: Partial<ResultMetadata> = {},
): ModelResult<T> {
  const metadata: ResultMetadata = {
    correlation_id: meta.correlationId ?? null,
    operation: meta.operation,
    node: meta.node,
    duration_ms: round(performance.now() - meta.startedAt),
    ...extra,
  };
  if (source) metadata.source = source;
  return { success: outcome.success, data: outcome.data, error: outcome.error, metadata };
}
