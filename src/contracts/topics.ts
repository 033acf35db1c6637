// Topics, nodes and operations of the wire contract (CONTRACT "Topics"). The first operation of each
// topic is its default.
export const TOPIC_SPECS = {
  'pattern.insert': {
    node: 'NodePatternStorageEffect',
    operations: ['insert', 'update', 'delete', 'batch_insert'],
    result: 'pattern.insert.result',
  },
  'pattern.search.request': {
    node: 'NodePatternQueryEffect',
    operations: ['search', 'get_by_id', 'filter', 'get_related', 'get_top', 'get_by_type', 'get_result'],
    result: 'pattern.search.result',
  },
  'pattern.usage': {
    node: 'NodePatternUpdateEffect',
    operations: ['record_usage', 'update_stats', 'create_relationship', 'update_relationship'],
    result: 'pattern.usage.result',
  },
  'pattern.analytics.compute': {
    node: 'NodePatternAnalyticsEffect',
    operations: [
      'compute_analytics',
      'get_usage_trends',
      'get_quality_trends',
      'get_effectiveness',
      'get_global_stats',
    ],
    result: 'pattern.analytics.result',
  },
} as const;

export type RequestTopic = keyof typeof TOPIC_SPECS;
export type NodeName = (typeof TOPIC_SPECS)[RequestTopic]['node'];
export type OperationOf<T extends RequestTopic> = (typeof TOPIC_SPECS)[T]['operations'][number];
export type Operation = OperationOf<RequestTopic>;

export const REQUEST_TOPICS = Object.keys(TOPIC_SPECS) as RequestTopic[];

/** Operations that only read: nothing to deduplicate (CONTRACT "Identity and effects"). */
export const READ_OPERATIONS: ReadonlySet<Operation> = new Set<Operation>([
  ...TOPIC_SPECS['pattern.search.request'].operations,
  'get_usage_trends',
  'get_quality_trends',
  'get_effectiveness',
  'get_global_stats',
]);

export function isWriteOperation(operation: Operation): boolean {
  return !READ_OPERATIONS.has(operation);
}

const OPERATION_TOPIC = new Map<string, RequestTopic>(
  REQUEST_TOPICS.flatMap((t) => TOPIC_SPECS[t].operations.map((op) => [op, t] as const)),
);

/** The topic an operation belongs to, or undefined for an unknown operation. */
export function topicOfOperation(operation: string): RequestTopic | undefined {
  return OPERATION_TOPIC.get(operation);
}

export type TopicRole = 'request' | 'result' | 'dlq';

/** Where PatternClient asks for its replies (not part of the worker's own topics). */
export const REPLY_TOPIC = 'pattern.reply';

export interface TopicName {
  name: string;
  role: TopicRole;
  logical: RequestTopic;
}

/** Topic names with the configured prefix applied (CONTRACT: "An optional prefix ..."). */
export class TopicNames {
  readonly prefix: string;
  readonly #byName = new Map<string, TopicName>();

  constructor(prefix = '') {
    this.prefix = prefix;
    for (const logical of REQUEST_TOPICS) {
      for (const role of ['request', 'result', 'dlq'] as const) {
        const name = this.#name(logical, role);
        this.#byName.set(name, { name, role, logical });
      }
    }
  }

  #name(logical: RequestTopic, role: TopicRole): string {
    if (role === 'request') return `${this.prefix}${logical}`;
    if (role === 'result') return `${this.prefix}${TOPIC_SPECS[logical].result}`;
    return `${this.prefix}${logical}.dlq`;
  }

  request(logical: RequestTopic): string {
    return this.#name(logical, 'request');
  }

  result(logical: RequestTopic): string {
    return this.#name(logical, 'result');
  }

  dlq(logical: RequestTopic): string {
    return this.#name(logical, 'dlq');
  }

  /** The shared reply topic of PatternClient instances: each client reads one partition of it. */
  reply(): string {
    return `${this.prefix}${REPLY_TOPIC}`;
  }

  requests(): string[] {
    return REQUEST_TOPICS.map((t) => this.request(t));
  }

  all(): TopicName[] {
    return [...this.#byName.values()];
  }

  /** What a (prefixed) topic name is, if it is one of ours. */
  lookup(name: string): TopicName | undefined {
    return this.#byName.get(name);
  }
}
