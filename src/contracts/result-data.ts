// What `data` holds in a successful result, per operation, as it is on the wire (JSON): the schemas the
// operation registry names, from which the TypeScript types, the AsyncAPI document and the tests'
// checks of real results all come. Timestamps are ISO-8601 strings; numbers the database could not
// compute (no samples) are null, and zero stays zero.
import { z } from 'zod';
import { modelErrorSchema } from './results.ts';

const id = z.uuid();
const time = z.string().describe('ISO-8601 date-time');
const rate = z.number().nullable();

export const patternRecord = z.strictObject({
  pattern_id: id,
  pattern_name: z.string(),
  pattern_type: z.string(),
  language: z.string(),
  category: z.string().nullable(),
  template_code: z.string().nullable(),
  description: z.string().nullable(),
  example_usage: z.string().nullable(),
  source: z.string().nullable(),
  confidence_score: z.number().nullable(),
  usage_count: z.number(),
  success_count: z.number(),
  success_rate: rate,
  avg_quality_improvement: rate,
  avg_execution_time_ms: rate,
  complexity_score: z.number().nullable(),
  maintainability_score: z.number().nullable(),
  performance_score: z.number().nullable(),
  parent_pattern_id: id.nullable(),
  is_deprecated: z.boolean(),
  deprecated_by_id: id.nullable(),
  created_by: z.string().nullable(),
  tags: z.array(z.string()),
  context: z.record(z.string(), z.unknown()),
  discovered_at: time,
  updated_at: time,
  last_used_at: time.nullable(),
});
export type PatternRecord = z.output<typeof patternRecord>;

export const searchHit = patternRecord.extend({ relevance: z.number() });
export const relatedPattern = patternRecord.extend({
  relationship_type: z.string(),
  strength: z.number(),
  relationship_description: z.string().nullable(),
  direction: z.enum(['outgoing', 'incoming']),
});
export const topPattern = patternRecord.extend({ wilson_score: z.number(), rank: z.number() });

const relationshipRecord = z.strictObject({
  relationship_id: id,
  source_pattern_id: id,
  target_pattern_id: id,
  relationship_type: z.string(),
  strength: z.number(),
});

const period = { period_start: time, period_end: time };

export const insertResult = z.strictObject({ pattern_id: id, pattern_name: z.string(), discovered_at: time });
export const updateResult = z.strictObject({
  pattern_id: id,
  fields_updated: z.array(z.string()),
  updated_at: time,
});
export const deleteResult = z.strictObject({
  pattern_id: id,
  pattern_name: z.string(),
  deleted: z.literal(true),
});
export const batchInsertResult = z.strictObject({ pattern_ids: z.array(id), count: z.number() });
export const recordUsageResult = z.strictObject({
  event_id: id,
  pattern_id: id,
  used_at: time,
  quality_improvement: rate,
});
export const updateStatsResult = z.strictObject({
  pattern_id: id,
  usage_count: z.number(),
  success_count: z.number(),
  success_rate: rate,
  avg_quality_improvement: rate,
  avg_execution_time_ms: rate,
  last_used_at: time.nullable(),
});
export const createRelationshipResult = relationshipRecord.extend({ created: z.boolean() });
export const updateRelationshipResult = relationshipRecord.extend({ description: z.string().nullable() });

export const computedAnalytics = z.strictObject({
  ...period,
  pattern_id: id.nullable(),
  total_usage_count: z.number(),
  success_count: z.number(),
  failure_count: z.number(),
  success_rate: rate,
  average_execution_time_ms: rate,
  average_quality_improvement: rate,
  top_patterns: z.array(z.record(z.string(), z.unknown())),
  trend_direction: z.enum(['increasing', 'decreasing', 'stable', 'insufficient_data']),
  trend_strength: z.number(),
  computed_at: time,
});
export const usageTrends = z.strictObject({
  ...period,
  aggregate_by: z.enum(['day', 'week', 'month']),
  buckets: z.array(
    z.strictObject({
      bucket: z.string(),
      usage_count: z.number(),
      success_count: z.number(),
      failure_count: z.number(),
      success_rate: rate,
    }),
  ),
});
export const qualityTrends = z.strictObject({
  ...period,
  days: z.array(
    z.strictObject({
      day: z.string(),
      usage_count: z.number(),
      average_quality_improvement: rate,
      quality_samples: z.number(),
    }),
  ),
});
export const effectiveness = z.strictObject({
  ...period,
  patterns: z.array(
    z.strictObject({
      pattern_id: id,
      pattern_name: z.string(),
      usage_count: z.number(),
      success_count: z.number(),
      success_rate: z.number(),
      average_quality_improvement: rate,
      effectiveness_score: z.number(),
    }),
  ),
});
export const globalStats = z.strictObject({
  ...period,
  total_patterns: z.number(),
  deprecated_patterns: z.number(),
  total_relationships: z.number(),
  usage_count: z.number(),
  success_count: z.number(),
  success_rate: rate,
  average_quality_improvement: rate,
  average_execution_time_ms: rate,
  active_patterns: z.number(),
});

/** get_result: what the worker recorded for an earlier request (late-reply pickup). */
export const storedResultLookup = z.discriminatedUnion('status', [
  z.strictObject({
    status: z.literal('applied'),
    identity: z.string(),
    topic: z.string(),
    operation: z.string(),
    processed_at: time,
    /** Past WORKER_RESULT_RETENTION only the ids of `result.data` are kept. */
    result_pruned: z.boolean(),
    /** The outcome first published; `data` is the same JSON, byte for byte (unless pruned). */
    result: z.strictObject({ success: z.boolean(), data: z.unknown(), error: modelErrorSchema.nullable() }),
  }),
  z.strictObject({ status: z.literal('unknown'), identities: z.array(z.string()), hint: z.string() }),
  z.strictObject({ status: z.literal('not_stored'), operation: z.string(), hint: z.string() }),
]);
export type StoredResultLookup = z.output<typeof storedResultLookup>;
