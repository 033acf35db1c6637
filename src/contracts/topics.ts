// Topics and nodes of the wire contract (CONTRACT "Topics"). The operations of each topic are declared
// in operations.ts; the first one declared is the topic's default.
export const TOPICS = {
  'pattern.insert': { node: 'NodePatternStorageEffect', result: 'pattern.insert.result' },
  'pattern.search.request': { node: 'NodePatternQueryEffect', result: 'pattern.search.result' },
  'pattern.usage': { node: 'NodePatternUpdateEffect', result: 'pattern.usage.result' },
  'pattern.analytics.compute': { node: 'NodePatternAnalyticsEffect', result: 'pattern.analytics.result' },
} as const;

export type RequestTopic = keyof typeof TOPICS;
export type NodeName = (typeof TOPICS)[RequestTopic]['node'];

export const REQUEST_TOPICS = Object.keys(TOPICS) as RequestTopic[];

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
    if (role === 'result') return `${this.prefix}${TOPICS[logical].result}`;
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
