// What `data` holds in a successful result, per operation. Timestamps arrive as ISO-8601 strings;
// numbers the database could not compute (no samples) are null, and zero stays zero.
import type { ModelError } from './errors.ts';
import type { Operation } from './topics.ts';

export interface PatternRecord {
  pattern_id: string;
  pattern_name: string;
  pattern_type: string;
  language: string;
  category: string | null;
  template_code: string;
  description: string | null;
  example_usage: string | null;
  source: string | null;
  confidence_score: number;
  usage_count: number;
  success_count: number;
  success_rate: number | null;
  avg_quality_improvement: number | null;
  avg_execution_time_ms: number | null;
  complexity_score: number | null;
  maintainability_score: number | null;
  performance_score: number | null;
  parent_pattern_id: string | null;
  is_deprecated: boolean;
  deprecated_by_id: string | null;
  created_by: string | null;
  tags: string[];
  context: Record<string, unknown>;
  discovered_at: string;
  updated_at: string;
  last_used_at: string | null;
}

export interface SearchHit extends PatternRecord {
  relevance: number;
}

export interface RelatedPattern extends PatternRecord {
  relationship_type: string;
  strength: number;
  relationship_description: string | null;
  direction: 'outgoing' | 'incoming';
}

export interface TopPattern extends PatternRecord {
  wilson_score: number;
  rank: number;
}

export interface RelationshipRecord {
  relationship_id: string;
  source_pattern_id: string;
  target_pattern_id: string;
  relationship_type: string;
  strength: number;
}

interface Period {
  period_start: string;
  period_end: string;
}

export interface ComputedAnalytics extends Period {
  pattern_id: string | null;
  total_usage_count: number;
  success_count: number;
  failure_count: number;
  success_rate: number | null;
  average_execution_time_ms: number | null;
  average_quality_improvement: number | null;
  top_patterns: Record<string, unknown>[];
  trend_direction: 'increasing' | 'decreasing' | 'stable' | 'insufficient_data';
  trend_strength: number;
  computed_at: string;
}

/** get_result: what the worker recorded for an earlier request (late-reply pickup). */
export type StoredResultLookup =
  | {
      status: 'applied';
      identity: string;
      topic: string;
      operation: string;
      processed_at: string;
      /** Past WORKER_RESULT_RETENTION only the ids of `result.data` are kept. */
      result_pruned: boolean;
      /** The outcome first published; `data` is the same JSON, byte for byte (unless pruned). */
      result: { success: boolean; data: unknown; error: ModelError | null };
    }
  | { status: 'unknown'; identities: string[]; hint: string }
  | { status: 'not_stored'; operation: string; hint: string };

export interface ResultDataMap {
  insert: { pattern_id: string; pattern_name: string; discovered_at: string };
  update: { pattern_id: string; fields_updated: string[]; updated_at: string };
  delete: { pattern_id: string; pattern_name: string; deleted: true };
  batch_insert: { pattern_ids: string[]; count: number };
  search: SearchHit[];
  get_by_id: PatternRecord;
  filter: PatternRecord[];
  get_related: RelatedPattern[];
  get_top: TopPattern[];
  get_by_type: PatternRecord[];
  get_result: StoredResultLookup;
  record_usage: { event_id: string; pattern_id: string; used_at: string; quality_improvement: number | null };
  update_stats: {
    pattern_id: string;
    usage_count: number;
    success_count: number;
    success_rate: number | null;
    avg_quality_improvement: number | null;
    avg_execution_time_ms: number | null;
    last_used_at: string | null;
  };
  create_relationship: RelationshipRecord & { created: boolean };
  update_relationship: RelationshipRecord & { description: string | null };
  compute_analytics: ComputedAnalytics;
  get_usage_trends: Period & {
    aggregate_by: 'day' | 'week' | 'month';
    buckets: {
      bucket: string;
      usage_count: number;
      success_count: number;
      failure_count: number;
      success_rate: number | null;
    }[];
  };
  get_quality_trends: Period & {
    days: {
      day: string;
      usage_count: number;
      average_quality_improvement: number | null;
      quality_samples: number;
    }[];
  };
  get_effectiveness: Period & {
    patterns: {
      pattern_id: string;
      pattern_name: string;
      usage_count: number;
      success_count: number;
      success_rate: number;
      average_quality_improvement: number | null;
      effectiveness_score: number;
    }[];
  };
  get_global_stats: Period & {
    total_patterns: number;
    deprecated_patterns: number;
    total_relationships: number;
    usage_count: number;
    success_count: number;
    success_rate: number | null;
    average_quality_improvement: number | null;
    average_execution_time_ms: number | null;
    active_patterns: number;
  };
}

export type ResultDataOf<Op extends Operation> = ResultDataMap[Op];
