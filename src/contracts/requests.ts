// Request types by operation and by topic, all derived from the operation registry (operations.ts).
import type { Operation, OperationOf, RequestOf } from './operations.ts';
import type { RequestTopic } from './topics.ts';

export { OPERATION_SCHEMAS, REQUEST_FIELDS, type RequestInputOf, type RequestOf } from './operations.ts';

export type InsertRequest = RequestOf<'insert'>;
export type UpdateRequest = RequestOf<'update'>;
export type BatchInsertRequest = RequestOf<'batch_insert'>;
export type SearchRequest = RequestOf<'search'>;
export type GetRelatedRequest = RequestOf<'get_related'>;
export type GetResultRequest = RequestOf<'get_result'>;
export type RecordUsageRequest = RequestOf<'record_usage'>;
export type UpdateStatsRequest = RequestOf<'update_stats'>;
export type CreateRelationshipRequest = RequestOf<'create_relationship'>;
export type UpdateRelationshipRequest = RequestOf<'update_relationship'>;

/** Any request of a topic. */
export type RequestFor<T extends RequestTopic> = RequestOf<OperationOf<T>>;
export type StorageRequest = RequestFor<'pattern.insert'>;
export type QueryRequest = RequestFor<'pattern.search.request'>;
export type UsageRequest = RequestFor<'pattern.usage'>;
export type AnalyticsRequest = RequestFor<'pattern.analytics.compute'>;
export type PatternRequest = RequestOf<Operation>;
