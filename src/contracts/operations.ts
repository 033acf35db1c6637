// The operation registry: every operation declared once (topic, read or write, request fields, result
// data, message key, client method, CLI command, replay phase), as Fastify declares a route. The
// validators, the request and result types, PatternClient's methods, the CLI, the AsyncAPI document,
// the replay phases and the README's operations table all come from here, and the nodes implement a
// handler map the compiler checks against it. Adding an operation: docs/CONVENTIONS.md.
import { z } from 'zod';
import {
  aggregateBy,
  correlationId,
  filters,
  insertData,
  periodDateTime,
  limit,
  maxAgeMs,
  messageIdentity,
  name,
  offset,
  relatedDirection,
  relationshipData,
  relationshipUpdateData,
  text,
  updateData,
  usageData,
  uuid,
} from './fields.ts';
import * as data from './result-data.ts';
import { REQUEST_TOPICS, TOPICS, type RequestTopic } from './topics.ts';

/** Replay passes, in order: patterns before the usage that needs them, deletes after it, reads last. */
export const REPLAY_PHASES = ['patterns', 'usage', 'deletes', 'analytics', 'reads'] as const;
export type ReplayPhase = (typeof REPLAY_PHASES)[number];

/** The `patterns` commands that send requests (src/cli/commands/requests.ts builds each one). */
export type CliCommand = 'insert' | 'search' | 'usage' | 'analytics' | 'result';

/** Where the client finds the message key in a request: one pattern's requests keep their order. */
type KeyPath =
  | readonly ['pattern_id']
  | readonly ['data', 'pattern_id']
  | readonly ['relationship_data', 'source_pattern_id'];

interface OperationSpec<
  T extends RequestTopic,
  S extends z.ZodRawShape,
  R extends z.ZodType,
  M extends string,
> {
  topic: T;
  /** Reads have no effect to deduplicate and carry no order; writes are applied once per identity. */
  kind: 'read' | 'write';
  /** One line for the README table and the AsyncAPI document. */
  summary: string;
  /** The fields the operation takes besides `operation` and `correlation_id`. */
  request: S;
  /** Checks across fields, after each field is valid. */
  refine?: (request: z.output<z.ZodObject<S>>, ctx: z.RefinementCtx) => void;
  /** `data` of a successful result, as on the wire. */
  result: R;
  key?: KeyPath;
  /** PatternClient method (and `client.send.<method>`). */
  method: M;
  cli?: CliCommand;
  replay: ReplayPhase;
  /** Consecutive ready messages of one batch class share one transaction (batchClassOf): `any` (every
   * event in one multi-row insert), `same-pattern` (one recomputation answers each message of one
   * pattern, as applying them back to back would). Absent: each message alone. */
  batch?: 'any' | 'same-pattern';
}

function op<T extends RequestTopic, S extends z.ZodRawShape, R extends z.ZodType, const M extends string>(
  spec: OperationSpec<T, S, R, M>,
): OperationSpec<T, S, R, M> {
  return spec;
}

const period = { period_start: periodDateTime.nullish(), period_end: periodDateTime.nullish() };
/** The longest period an analytics request may cover. Trends count every UTC day of the period, used or
 * not: 0001-01-01 to 9999-12-31 took one pattern's compute_analytics 3 s and a global one 21 s. */
export const MAX_PERIOD_DAYS = 36_525;
const maxAge = { max_age_ms: maxAgeMs.nullish() };
const getByTypeFilters = filters.extend({ pattern_type: name(100) });

export const OPERATIONS = {
  insert: op({
    topic: 'pattern.insert',
    kind: 'write',
    summary: 'insert a pattern (`data.pattern_id` optional: derived from the message identity)',
    request: { data: insertData },
    result: data.insertResult,
    key: ['data', 'pattern_id'],
    method: 'insert',
    cli: 'insert',
    replay: 'patterns',
  }),
  update: op({
    topic: 'pattern.insert',
    kind: 'write',
    summary: "change a pattern's fields",
    request: { pattern_id: uuid, data: updateData },
    result: data.updateResult,
    key: ['pattern_id'],
    method: 'update',
    replay: 'patterns',
  }),
  delete: op({
    topic: 'pattern.insert',
    kind: 'write',
    summary: 'delete a pattern with its usage and relationships',
    request: { pattern_id: uuid },
    result: data.deleteResult,
    key: ['pattern_id'],
    method: 'delete',
    replay: 'deletes',
  }),
  batch_insert: op({
    topic: 'pattern.insert',
    kind: 'write',
    summary: 'insert up to 1000 patterns, all or none',
    request: {
      patterns: z
        .array(insertData)
        .min(1, 'must hold at least one pattern')
        .max(1000, 'at most 1000 patterns'),
    },
    result: data.batchInsertResult,
    method: 'batchInsert',
    replay: 'patterns',
  }),
  search: op({
    topic: 'pattern.search.request',
    kind: 'read',
    summary: 'full-text and fuzzy search over name, description, template and tags',
    request: {
      search_query: text(500).pipe(z.string().trim().min(1, 'must not be empty')),
      filters: filters.nullish(),
      limit,
      offset,
    },
    result: z.array(data.searchHit),
    method: 'search',
    cli: 'search',
    replay: 'reads',
  }),
  get_by_id: op({
    topic: 'pattern.search.request',
    kind: 'read',
    summary: 'one pattern by id',
    request: { pattern_id: uuid },
    result: data.patternRecord,
    key: ['pattern_id'],
    method: 'getById',
    replay: 'reads',
  }),
  filter: op({
    topic: 'pattern.search.request',
    kind: 'read',
    summary: 'patterns matching filters, most confident first',
    request: { filters: filters.nullish(), limit, offset },
    result: z.array(data.patternRecord),
    method: 'filter',
    replay: 'reads',
  }),
  get_related: op({
    topic: 'pattern.search.request',
    kind: 'read',
    summary:
      "a pattern's related patterns, strongest first (`direction`: outgoing (default), incoming, both)",
    request: { pattern_id: uuid, direction: relatedDirection, limit, offset },
    result: z.array(data.relatedPattern),
    key: ['pattern_id'],
    method: 'getRelated',
    replay: 'reads',
  }),
  get_top: op({
    topic: 'pattern.search.request',
    kind: 'read',
    summary: 'patterns ranked by the Wilson score of their success rate',
    request: { filters: filters.nullish(), limit, offset },
    result: z.array(data.topPattern),
    method: 'getTop',
    replay: 'reads',
  }),
  get_by_type: op({
    topic: 'pattern.search.request',
    kind: 'read',
    summary: 'patterns of one `filters.pattern_type`',
    request: { filters: getByTypeFilters, limit, offset },
    result: z.array(data.patternRecord),
    method: 'getByType',
    replay: 'reads',
  }),
  get_by_name: op({
    topic: 'pattern.search.request',
    kind: 'read',
    summary: 'one pattern by its exact name and language (unique together)',
    request: { pattern_name: name(255), language: name(50) },
    result: data.patternRecord,
    method: 'getByName',
    replay: 'reads',
  }),
  get_result: op({
    topic: 'pattern.search.request',
    kind: 'read',
    summary: 'the recorded outcome of an earlier request, by correlation id or identity (late-reply pickup)',
    request: {
      request_correlation_id: name(255).nullish(),
      request_identity: messageIdentity.nullish(),
      request_operation: z.string().refine(isOperationName, 'must be the name of an operation').nullish(),
    },
    refine: (r, ctx) => {
      if ((r.request_correlation_id == null) === (r.request_identity == null)) {
        ctx.addIssue({
          code: 'custom',
          path: ['request_correlation_id'],
          message: 'give the request to look up: request_correlation_id or request_identity (one of them)',
        });
      }
    },
    result: data.storedResultLookup,
    method: 'getResult',
    cli: 'result',
    replay: 'reads',
  }),
  record_usage: op({
    topic: 'pattern.usage',
    kind: 'write',
    summary: "record one use of a pattern; updates the pattern's statistics",
    request: { pattern_id: uuid, usage_data: usageData },
    result: data.recordUsageResult,
    key: ['pattern_id'],
    method: 'recordUsage',
    cli: 'usage',
    replay: 'usage',
    batch: 'any',
  }),
  update_stats: op({
    topic: 'pattern.usage',
    kind: 'write',
    summary: "recompute a pattern's statistics from its usage",
    request: { pattern_id: uuid },
    result: data.updateStatsResult,
    key: ['pattern_id'],
    method: 'updateStats',
    replay: 'usage',
    // A run of one pattern's recomputations costs one: the audit's 3,000 on one key held its partition's
    // other keys for a minute, one recomputation (a scan of the pattern's events) each.
    batch: 'same-pattern',
  }),
  create_relationship: op({
    topic: 'pattern.usage',
    kind: 'write',
    summary: 'relate two patterns (an existing relationship is updated)',
    request: { relationship_data: relationshipData },
    result: data.createRelationshipResult,
    key: ['relationship_data', 'source_pattern_id'],
    method: 'createRelationship',
    replay: 'usage',
  }),
  update_relationship: op({
    topic: 'pattern.usage',
    kind: 'write',
    summary: "change a relationship's strength, description or context",
    request: { relationship_data: relationshipUpdateData },
    result: data.updateRelationshipResult,
    key: ['relationship_data', 'source_pattern_id'],
    method: 'updateRelationship',
    replay: 'usage',
  }),
  compute_analytics: op({
    topic: 'pattern.analytics.compute',
    kind: 'write',
    summary: 'compute and store analytics for one pattern or all (default: the last 30 days)',
    request: { pattern_id: uuid.nullish(), ...period },
    result: data.computedAnalytics,
    key: ['pattern_id'],
    method: 'computeAnalytics',
    cli: 'analytics',
    replay: 'analytics',
  }),
  get_usage_trends: op({
    topic: 'pattern.analytics.compute',
    kind: 'read',
    summary:
      "usage per day, week or month, as the seed's list (default: the 90 days before the message); all patterns without pattern_id",
    request: { pattern_id: uuid.nullish(), ...period, aggregate_by: aggregateBy, ...maxAge },
    result: data.usageTrends,
    key: ['pattern_id'],
    method: 'getUsageTrends',
    cli: 'analytics',
    replay: 'analytics',
  }),
  get_quality_trends: op({
    topic: 'pattern.analytics.compute',
    kind: 'read',
    summary:
      "quality per pattern per UTC day, the newest 100, as the seed's list (default: all time; a period on request)",
    request: { pattern_id: uuid.nullish(), ...period, ...maxAge },
    result: data.qualityTrends,
    key: ['pattern_id'],
    method: 'getQualityTrends',
    cli: 'analytics',
    replay: 'analytics',
  }),
  get_effectiveness: op({
    topic: 'pattern.analytics.compute',
    kind: 'read',
    summary:
      "one pattern's all-time profile (the seed's); without pattern_id, patterns ranked by success rate times quality improvement over a period",
    request: { pattern_id: uuid.nullish(), ...period, limit, ...maxAge },
    result: data.effectiveness,
    key: ['pattern_id'],
    method: 'getEffectiveness',
    cli: 'analytics',
    replay: 'analytics',
  }),
  get_global_stats: op({
    topic: 'pattern.analytics.compute',
    kind: 'read',
    summary: "all-time totals and top patterns (the seed's), with a period's usage beside",
    request: { ...period, ...maxAge },
    result: data.globalStats,
    method: 'getGlobalStats',
    cli: 'analytics',
    replay: 'analytics',
  }),
};

type Registry = typeof OPERATIONS;
export type Operation = keyof Registry;
export type OperationOf<T extends RequestTopic> = {
  [Op in Operation]: Registry[Op]['topic'] extends T ? Op : never;
}[Operation];
export type ResultDataOf<Op extends Operation> = z.output<Registry[Op]['result']>;
export type MethodOf<Op extends Operation> = Registry[Op]['method'];

// For get_result's request_operation, which names an operation of this very registry.
function isOperationName(name: string): boolean {
  return Object.hasOwn(OPERATIONS, name);
}

export const ALL_OPERATIONS = Object.keys(OPERATIONS) as Operation[];

function operationsOf<T extends RequestTopic>(topic: T): OperationOf<T>[] {
  return ALL_OPERATIONS.filter((o) => OPERATIONS[o].topic === topic) as OperationOf<T>[];
}

/** Each topic with its node, result topic and operations (the first is its default). */
export const TOPIC_SPECS = Object.fromEntries(
  REQUEST_TOPICS.map((t) => [t, { ...TOPICS[t], operations: operationsOf(t) }]),
) as unknown as { [T in RequestTopic]: (typeof TOPICS)[T] & { operations: readonly OperationOf<T>[] } };

/** Operations that only read: nothing to deduplicate (CONTRACT "Identity and effects"). */
export const READ_OPERATIONS: ReadonlySet<Operation> = new Set(
  ALL_OPERATIONS.filter((o) => OPERATIONS[o].kind === 'read'),
);

export function isWriteOperation(operation: Operation): boolean {
  return OPERATIONS[operation].kind === 'write';
}

/** Which valid requests may be applied in one transaction: those with the same class (none: alone). */
export function batchClassOf(request: { operation: Operation; pattern_id?: unknown }): string | undefined {
  const { batch } = OPERATIONS[request.operation];
  if (batch === 'any') return request.operation;
  if (batch === 'same-pattern' && typeof request.pattern_id === 'string') {
    return `${request.operation}:${request.pattern_id}`;
  }
  return undefined;
}

/** The topic an operation belongs to, or undefined for an unknown operation. */
export function topicOfOperation(operation: string): RequestTopic | undefined {
  return Object.hasOwn(OPERATIONS, operation) ? OPERATIONS[operation as Operation].topic : undefined;
}

/** Every request field of any operation: the others take it only as null. */
export const REQUEST_FIELDS = [
  'operation',
  'correlation_id',
  ...new Set(ALL_OPERATIONS.flatMap((o) => Object.keys(OPERATIONS[o].request))),
];

/**
 * The values the seed's ModelContractEffect gave the fields a call left out (`data or {}`, `limit: int = 10`,
 * ...), which a serialised contract carries whatever the operation: accepted where unused, like null.
 */
export const ORIGINAL_CONTRACT_DEFAULTS: Readonly<Record<string, unknown>> = {
  data: {},
  patterns: [],
  filters: {},
  usage_data: {},
  relationship_data: {},
  limit: 10,
  offset: 0,
  aggregate_by: 'day',
};

function isOriginalDefault(field: string, value: unknown): boolean {
  if (!Object.hasOwn(ORIGINAL_CONTRACT_DEFAULTS, field)) return false;
  const expected = ORIGINAL_CONTRACT_DEFAULTS[field];
  if (Array.isArray(expected)) return Array.isArray(value) && value.length === 0;
  if (typeof expected === 'object' && expected !== null) {
    return (
      typeof value === 'object' && value !== null && !Array.isArray(value) && Object.keys(value).length === 0
    );
  }
  return value === expected;
}

function unusedField(operation: string, field: string): z.ZodType {
  const allowed = Object.hasOwn(ORIGINAL_CONTRACT_DEFAULTS, field)
    ? `null, ${JSON.stringify(ORIGINAL_CONTRACT_DEFAULTS[field])} or leave it out`
    : 'null or leave it out';
  return z
    .unknown()
    .refine((v) => v === undefined || v === null || isOriginalDefault(field, v), {
      error: `is not used by operation "${operation}" (send ${allowed})`,
    })
    .meta({ description: `not used by ${operation}: ${allowed}` })
    .transform(() => undefined);
}

// One strict schema per operation; fields the contract knows but an operation does not use are
// accepted only as null or as the seed contract's default (clients that serialise the whole
// ModelContractEffect send them so), and dropped.
function operationSchema(operation: Operation) {
  const spec = OPERATIONS[operation] as OperationSpec<RequestTopic, z.ZodRawShape, z.ZodType, string>;
  const unused: Record<string, z.ZodType> = {};
  for (const field of REQUEST_FIELDS) {
    if (field === 'operation' || field === 'correlation_id' || field in spec.request) continue;
    unused[field] = unusedField(operation, field).optional();
  }
  return z
    .strictObject({
      ...unused,
      operation: z.literal(operation),
      correlation_id: correlationId.nullish(),
      ...spec.request,
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
      } else if (r.period_start && r.period_end) {
        const days = (Date.parse(r.period_end) - Date.parse(r.period_start)) / 86_400_000;
        if (days > MAX_PERIOD_DAYS) {
          ctx.addIssue({
            code: 'custom',
            path: ['period_end'],
            message: `must be at most ${MAX_PERIOD_DAYS} days (100 years) after period_start`,
          });
        }
      }
      // A pattern can be neither its own parent nor its own successor (a database constraint, said here).
      const self = r.pattern_id ?? r.data?.pattern_id;
      for (const field of ['parent_pattern_id', 'deprecated_by_id'] as const) {
        if (self && r.data?.[field] === self) {
          ctx.addIssue({ code: 'custom', path: ['data', field], message: 'must not be the pattern itself' });
        }
      }
      spec.refine?.(request, ctx);
    });
}

/** What a request of an operation is after validation (defaults applied, ids lower-cased). */
export type RequestOf<Op extends Operation> = Op extends Operation
  ? { operation: Op; correlation_id?: string | null | undefined } & z.output<
      z.ZodObject<Registry[Op]['request']>
    >
  : never;
/** What a producer may send for an operation. */
export type RequestInputOf<Op extends Operation> = Op extends Operation
  ? { operation: Op; correlation_id?: string | null | undefined } & z.input<
      z.ZodObject<Registry[Op]['request']>
    >
  : never;

export const OPERATION_SCHEMAS = Object.fromEntries(
  ALL_OPERATIONS.map((o) => [o, operationSchema(o)]),
) as unknown as {
  [Op in Operation]: z.ZodType<RequestOf<Op>, RequestInputOf<Op>>;
};

/** The message key of a request: the pattern it concerns, if the operation has one. */
export function keyOfRequest(operation: Operation, body: Record<string, unknown>): string | undefined {
  const path = (OPERATIONS[operation] as { key?: KeyPath }).key;
  if (!path) return undefined;
  let value: unknown = body;
  for (const step of path) value = (value as Record<string, unknown> | null | undefined)?.[step];
  return typeof value === 'string' ? value : undefined;
}
