// What `data` holds in a successful result, per operation, as it is on the wire (JSON): the schemas the
// operation registry names, from which the TypeScript types, the AsyncAPI document and the tests'
// checks of real results all come. Timestamps are ISO-8601 strings; numbers the database could not
// compute (no samples) are null, and zero stays zero.
//
// Keys marked with original() are those the seed's Python storage layer returned, with the same meaning
// (CONTRACT "Result"); AsyncAPI shows them as `x-original: true`. The others are ours, beside them.
import { z } from 'zod';
import { modelErrorSchema } from './results.ts';

const id = z.uuid();
const time = z.string().describe('ISO-8601 date-time');
const rate = z.number().nullable();

/** Marks a key the seed returned; `note` says how its value compares (README "Coming from the Python storage layer"). */
function original<T extends z.ZodType>(schema: T, note?: string): T {
  const described = [note, schema.description].filter(Boolean).join('; ');
  return schema.meta({
    'x-original': true,
    description: described ? `original key: ${described}` : 'original key',
  });
}

/** The keys of an object schema (or of an array's items) that the seed returned. */
export function originalKeys(schema: z.ZodType): string[] {
  const inner = schema instanceof z.ZodArray ? (schema.element as z.ZodType) : schema;
  if (!(inner instanceof z.ZodObject)) return [];
  return Object.entries(inner.shape as Record<string, z.ZodType>)
    .filter(([, field]) => field.meta()?.['x-original'] === true)
    .map(([key]) => key);
}

export const patternRecord = z.strictObject({
  id: original(id, 'the pattern id (the same value as pattern_id)'),
  pattern_id: id,
  pattern_name: original(z.string()),
  pattern_type: original(z.string()),
  language: original(z.string()),
  category: original(z.string().nullable()),
  template_code: original(z.string().nullable()),
  description: original(z.string().nullable()),
  example_usage: original(z.string().nullable()),
  source: original(z.string().nullable()),
  confidence_score: original(z.number().nullable(), '0.5 when the insert left it out, as in the seed'),
  usage_count: original(z.number()),
  success_count: z.number(),
  success_rate: original(rate, 'null until the pattern is used (the seed stored an invented 0.5)'),
  avg_quality_improvement: original(rate),
  avg_execution_time_ms: rate,
  complexity_score: original(z.number().nullable()),
  maintainability_score: original(z.number().nullable()),
  performance_score: original(z.number().nullable()),
  parent_pattern_id: original(id.nullable()),
  is_deprecated: original(z.boolean()),
  deprecated_by_id: original(id.nullable()),
  created_by: original(z.string().nullable(), "'system' when the insert left it out, as in the seed"),
  tags: original(z.array(z.string())),
  context: original(z.record(z.string(), z.unknown())),
  discovered_at: original(time),
  updated_at: original(time),
  last_used_at: original(time.nullable()),
});
export type PatternRecord = z.output<typeof patternRecord>;

export const searchHit = patternRecord.extend({
  relevance: z.number(),
  name_similarity: original(
    z.number(),
    "pg_trgm similarity of the name to the query (the seed's order; ours is relevance)",
  ),
});
export const relatedPattern = patternRecord.extend({
  relationship_type: original(z.string()),
  strength: original(z.number()),
  relationship_description: original(z.string().nullable()),
  direction: z.enum(['outgoing', 'incoming']),
});
export const topPattern = patternRecord.extend({
  wilson_score: z.number(),
  rank: z.number(),
  recent_usage_count: original(z.number(), 'uses in the 30 days before the read'),
});

const period = { period_start: time, period_end: time };

export const insertResult = z.strictObject({
  pattern_id: original(id),
  pattern_name: original(z.string()),
  discovered_at: original(time),
});
export const updateResult = z.strictObject({
  pattern_id: original(id),
  pattern_name: original(z.string()),
  fields_updated: original(z.array(z.string())),
  updated_at: original(time),
});
export const deleteResult = z.strictObject({
  pattern_id: original(id),
  pattern_name: original(z.string()),
  deleted: original(z.literal(true)),
});
export const batchInsertResult = z.strictObject({
  pattern_ids: original(z.array(id)),
  count: original(z.number()),
});
export const recordUsageResult = z.strictObject({
  event_id: original(id),
  pattern_id: original(id),
  used_at: original(time),
  quality_improvement: original(
    rate,
    'quality_after - quality_before; 0 stays 0 (the seed turned 0.0 into null)',
  ),
});
export const updateStatsResult = z.strictObject({
  pattern_id: original(id),
  usage_count: original(z.number()),
  success_count: z.number(),
  success_rate: original(rate, 'null without usage (the seed answered an invented 0.5)'),
  avg_quality_improvement: rate,
  avg_execution_time_ms: rate,
  last_used_at: original(time.nullable()),
  confidence_score: original(z.number().nullable()),
});
export const createRelationshipResult = z.strictObject({
  relationship_id: original(id),
  source_pattern_id: original(id),
  target_pattern_id: original(id),
  relationship_type: original(z.string()),
  discovered_at: original(time, 'when the relationship was first recorded'),
  strength: z.number(),
  created: z.boolean(),
});
export const updateRelationshipResult = z.strictObject({
  relationship_id: original(id),
  strength: original(z.number()),
  updated_at: original(time),
  source_pattern_id: id,
  target_pattern_id: id,
  relationship_type: z.string(),
  description: z.string().nullable(),
});

export const computedAnalytics = z.strictObject({
  analytics_id: original(id, 'the stored pattern_analytics row'),
  period_start: original(time),
  period_end: original(time),
  pattern_id: original(id.nullable()),
  total_usage_count: original(z.number()),
  success_count: original(z.number()),
  failure_count: original(z.number()),
  success_rate: original(rate, 'null without usage (the seed answered 0)'),
  average_execution_time_ms: original(rate),
  average_quality_improvement: original(rate),
  top_patterns: original(z.array(z.record(z.string(), z.unknown()))),
  trend_direction: original(z.enum(['increasing', 'decreasing', 'stable', 'insufficient_data'])),
  trend_strength: original(z.number()),
  computed_at: original(time),
});
// The analytics reads answer what the seed's node_pattern_analytics_effect.py answered, with its keys,
// shapes and defaults; ours stand beside them under their own names (README "Analytics").
const zeroStays = 'null without samples; 0 stays 0 (the seed answered null for 0)';
export const usageTrends = z.array(
  z.strictObject({
    period: original(time, 'start of the UTC day, ISO week (Monday) or month'),
    usage_count: original(z.number()),
    success_count: original(z.number()),
    success_rate: original(z.number()),
    avg_execution_time_ms: original(rate, zeroStays),
    avg_quality_improvement: original(rate, zeroStays),
    bucket: z.string().describe('the period as a UTC date, YYYY-MM-DD'),
    failure_count: z.number(),
  }),
);
export const qualityTrends = z.array(
  z.strictObject({
    id: original(id, 'the pattern id (the same value as pattern_id)'),
    pattern_name: original(z.string()),
    pattern_type: original(z.string()),
    usage_date: original(z.string().describe('UTC date, YYYY-MM-DD')),
    usage_count: original(z.number()),
    avg_quality_improvement: original(rate, zeroStays),
    success_rate: original(z.number()),
    pattern_id: id,
    success_count: z.number(),
    quality_samples: z.number().describe('events with quality_before and quality_after'),
  }),
);
/** get_effectiveness with pattern_id: the seed's all-time profile of that pattern. */
export const effectivenessProfile = z.strictObject({
  pattern_id: original(id),
  pattern_name: original(z.string()),
  pattern_type: original(z.string()),
  confidence_score: original(z.number().nullable()),
  total_usage: original(z.number()),
  successes: original(z.number()),
  success_rate: original(rate, 'null without usage (the seed answered 0)'),
  avg_execution_time_ms: original(rate, zeroStays),
  avg_quality_improvement: original(rate, zeroStays),
  first_used: original(time.nullable()),
  last_used: original(time.nullable()),
});
/** get_effectiveness without pattern_id (the seed refused it): ours, patterns ranked over a period. */
export const effectivenessRanking = z.strictObject({
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
export const effectiveness = z.union([effectivenessProfile, effectivenessRanking]);
export const globalStats = z.strictObject({
  total_patterns: original(z.number()),
  active_patterns: original(z.number(), 'patterns not deprecated'),
  total_usage_events: original(z.number(), 'all time'),
  avg_confidence: original(
    rate,
    'mean over patterns with a confidence_score; null without any (the seed: 0)',
  ),
  avg_success_rate: original(
    rate,
    'mean of the success rates of the patterns used; null without usage (the seed: 0)',
  ),
  patterns_used: original(z.number(), 'patterns with at least one usage event, all time'),
  global_success_rate: original(rate, 'all events; null without usage (the seed: 0)'),
  top_patterns: original(
    z.array(
      z.strictObject({
        pattern_name: original(z.string()),
        usage_count: original(z.number()),
        success_rate: original(rate),
        confidence_score: original(z.number().nullable()),
        pattern_id: id,
        wilson_score: z.number(),
      }),
    ),
    "v_top_patterns' first ten: not deprecated, ranked by the Wilson lower bound; reused for ANALYTICS_TOP_PATTERNS_MAX_AGE_MS (metadata.as_of is never later than their read)",
  ),
  deprecated_patterns: z.number(),
  total_relationships: z.number(),
  success_count: z.number().describe('successful events, all time'),
  average_execution_time_ms: rate,
  average_quality_improvement: rate,
  period: z
    .strictObject({
      ...period,
      usage_count: z.number(),
      success_count: z.number(),
      success_rate: rate,
      average_execution_time_ms: rate,
      average_quality_improvement: rate,
    })
    .describe('usage in [period_start, period_end) (default: the 30 days before the message)'),
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
