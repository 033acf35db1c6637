// One strict schema per operation; fields the contract knows but an operation does not use are
// accepted only as null (clients that serialise the whole ModelContractEffect send them as null).
import { z } from 'zod';
import {
  aggregateBy,
  correlationId,
  filters,
  insertData,
  isoDateTime,
  limit,
  messageIdentity,
  name,
  offset,
  relationshipData,
  relationshipUpdateData,
  text,
  updateData,
  usageData,
  uuid,
} from './fields.ts';
import { REQUEST_TOPICS, TOPIC_SPECS, type Operation, type RequestTopic } from './topics.ts';

export const REQUEST_FIELDS = [
  'operation',
  'correlation_id',
  'data',
  'pattern_id',
  'patterns',
  'search_query',
  'filters',
  'limit',
  'offset',
  'usage_data',
  'relationship_data',
  'period_start',
  'period_end',
  'aggregate_by',
  'request_correlation_id',
  'request_identity',
  'request_operation',
] as const;

const period = { period_start: isoDateTime.nullish(), period_end: isoDateTime.nullish() };

function operationSchema<Op extends Operation, S extends z.ZodRawShape>(operation: Op, shape: S) {
  const unused: Record<string, z.ZodType> = {};
  for (const field of REQUEST_FIELDS) {
    if (field === 'operation' || field === 'correlation_id' || field in shape) continue;
    unused[field] = z
      .null({ error: `is not used by operation "${operation}" (send null or leave it out)` })
      .optional();
  }
  return z
    .strictObject({
      ...(unused as Record<never, never>),
      operation: z.literal(operation),
      correlation_id: correlationId.nullish(),
      ...shape,
    })
    .superRefine((request, ctx) => {
      const r = request as {
        period_start?: string | null;
        period_end?: string | null;
        pattern_id?: string | null;
        data?: {
          pattern_id?: string | null;
          parent_pattern_id?: string | null;
          deprecated_by_id?: string | null;
        };
      };
      if (r.period_start && r.period_end && Date.parse(r.period_end) <= Date.parse(r.period_start)) {
        ctx.addIssue({ code: 'custom', path: ['period_end'], message: 'must be after period_start' });
      }
      // A pattern can be neither its own parent nor its own successor (a database constraint, said here).
      const self = r.pattern_id ?? r.data?.pattern_id;
      for (const field of ['parent_pattern_id', 'deprecated_by_id'] as const) {
        if (self && r.data?.[field] === self) {
          ctx.addIssue({ code: 'custom', path: ['data', field], message: 'must not be the pattern itself' });
        }
      }
    });
}

const getByTypeFilters = filters.extend({ pattern_type: name(100) });

const ALL_OPERATIONS = REQUEST_TOPICS.flatMap((t) => TOPIC_SPECS[t].operations);
const operationName = z.enum(ALL_OPERATIONS, { error: 'must be the name of an operation' });

// Late-reply pickup: the outcome of an earlier request, named by its correlation id or its identity.
const getResult = operationSchema('get_result', {
  request_correlation_id: name(255).nullish(),
  request_identity: messageIdentity.nullish(),
  request_operation: operationName.nullish(),
}).superRefine((r, ctx) => {
  if ((r.request_correlation_id == null) === (r.request_identity == null)) {
    ctx.addIssue({
      code: 'custom',
      path: ['request_correlation_id'],
      message: 'give the request to look up: request_correlation_id or request_identity (one of them)',
    });
  }
});

export const OPERATION_SCHEMAS = {
  insert: operationSchema('insert', { data: insertData }),
  update: operationSchema('update', { pattern_id: uuid, data: updateData }),
  delete: operationSchema('delete', { pattern_id: uuid }),
  batch_insert: operationSchema('batch_insert', {
    patterns: z.array(insertData).min(1, 'must hold at least one pattern').max(1000, 'at most 1000 patterns'),
  }),
  search: operationSchema('search', {
    search_query: text(500).pipe(z.string().trim().min(1, 'must not be empty')),
    filters: filters.nullish(),
    limit,
    offset,
  }),
  get_by_id: operationSchema('get_by_id', { pattern_id: uuid }),
  filter: operationSchema('filter', { filters: filters.nullish(), limit, offset }),
  get_related: operationSchema('get_related', { pattern_id: uuid, limit, offset }),
  get_top: operationSchema('get_top', { filters: filters.nullish(), limit, offset }),
  get_by_type: operationSchema('get_by_type', {
    filters: getByTypeFilters,
    limit,
    offset,
  }),
  get_result: getResult,
  record_usage: operationSchema('record_usage', { pattern_id: uuid, usage_data: usageData }),
  update_stats: operationSchema('update_stats', { pattern_id: uuid }),
  create_relationship: operationSchema('create_relationship', { relationship_data: relationshipData }),
  update_relationship: operationSchema('update_relationship', { relationship_data: relationshipUpdateData }),
  compute_analytics: operationSchema('compute_analytics', { pattern_id: uuid.nullish(), ...period }),
  get_usage_trends: operationSchema('get_usage_trends', {
    pattern_id: uuid.nullish(),
    ...period,
    aggregate_by: aggregateBy,
  }),
  get_quality_trends: operationSchema('get_quality_trends', { pattern_id: uuid.nullish(), ...period }),
  get_effectiveness: operationSchema('get_effectiveness', { pattern_id: uuid.nullish(), ...period, limit }),
  get_global_stats: operationSchema('get_global_stats', { ...period }),
} as const satisfies Record<Operation, z.ZodType>;

export type RequestOf<Op extends Operation> = z.output<(typeof OPERATION_SCHEMAS)[Op]>;
/** What a producer may send for an operation (defaults not yet applied). */
export type RequestInputOf<Op extends Operation> = z.input<(typeof OPERATION_SCHEMAS)[Op]>;

export type InsertRequest = RequestOf<'insert'>;
export type UpdateRequest = RequestOf<'update'>;
export type DeleteRequest = RequestOf<'delete'>;
export type BatchInsertRequest = RequestOf<'batch_insert'>;
export type SearchRequest = RequestOf<'search'>;
export type GetByIdRequest = RequestOf<'get_by_id'>;
export type FilterRequest = RequestOf<'filter'>;
export type GetRelatedRequest = RequestOf<'get_related'>;
export type GetTopRequest = RequestOf<'get_top'>;
export type GetByTypeRequest = RequestOf<'get_by_type'>;
export type GetResultRequest = RequestOf<'get_result'>;
export type RecordUsageRequest = RequestOf<'record_usage'>;
export type UpdateStatsRequest = RequestOf<'update_stats'>;
export type CreateRelationshipRequest = RequestOf<'create_relationship'>;
export type UpdateRelationshipRequest = RequestOf<'update_relationship'>;
export type ComputeAnalyticsRequest = RequestOf<'compute_analytics'>;
export type UsageTrendsRequest = RequestOf<'get_usage_trends'>;
export type QualityTrendsRequest = RequestOf<'get_quality_trends'>;
export type EffectivenessRequest = RequestOf<'get_effectiveness'>;
export type GlobalStatsRequest = RequestOf<'get_global_stats'>;

export type StorageRequest = InsertRequest | UpdateRequest | DeleteRequest | BatchInsertRequest;
export type QueryRequest =
  | SearchRequest
  | GetByIdRequest
  | FilterRequest
  | GetRelatedRequest
  | GetTopRequest
  | GetByTypeRequest
  | GetResultRequest;
export type UsageRequest =
  RecordUsageRequest | UpdateStatsRequest | CreateRelationshipRequest | UpdateRelationshipRequest;
export type AnalyticsRequest =
  | ComputeAnalyticsRequest
  | UsageTrendsRequest
  | QualityTrendsRequest
  | EffectivenessRequest
  | GlobalStatsRequest;
export type PatternRequest = StorageRequest | QueryRequest | UsageRequest | AnalyticsRequest;

export interface TopicRequests {
  'pattern.insert': StorageRequest;
  'pattern.search.request': QueryRequest;
  'pattern.usage': UsageRequest;
  'pattern.analytics.compute': AnalyticsRequest;
}
export type RequestFor<T extends RequestTopic> = TopicRequests[T];
