// Where a request may ask for its result to go (kafka_replyTopic). The header is chosen by whoever
// writes the request, so without a policy a request could write a result, with a key and correlation id
// of its choosing, into another tenant's topics, Connect or Schema Registry topics, or the worker's own
// request topics (read back as a request).
import { TopicNames, type RequestTopic } from '../../contracts/topics.ts';

/** The worker's topic names without a prefix: a topic ending in one of them belongs to some deployment. */
const UNPREFIXED = new TopicNames('').all();
const ROLE_NAMES = { request: 'request', result: 'result', dlq: 'dead-letter' } as const;

/**
 * The default: every topic in the worker's prefix (`<TOPIC_PREFIX>*`); with no prefix, where that would
 * be every topic, `pattern.*`. Both cover PatternClient's `<prefix>pattern.reply`, NestJS's `<request
 * topic>.reply` and Spring reply topics named after the request topic (`<request topic>.replies`,
 * `-replies`), and leave out other prefixes, `_schemas`, `connect-*` and the like. The worker's own
 * topics are refused whatever the patterns say (ReplyPolicy.refusal).
 */
export function defaultReplyPatterns(names: TopicNames): string[] {
  return [names.prefix ? `${names.prefix}*` : 'pattern.*'];
}

function globToRegExp(pattern: string): RegExp {
  const body = pattern
    .split('*')
    .map((part) => part.replace(/[.+?^${}()|[\]\\-]/g, '\\$&'))
    .join('.*');
  return new RegExp(`^${body}$`);
}

export class ReplyPolicy {
  readonly patterns: readonly string[];
  readonly #names: TopicNames;
  readonly #matchers: RegExp[];

  /** `patterns`: WORKER_REPLY_TOPICS (`*` matches any characters, dots included); default above. */
  constructor(names: TopicNames, patterns?: readonly string[]) {
    this.#names = names;
    this.patterns = patterns && patterns.length > 0 ? [...patterns] : defaultReplyPatterns(names);
    this.#matchers = this.patterns.map(globToRegExp);
  }

  /**
   * Why `topic` may not receive the result of a request read from `logical`'s topic, or undefined when
   * it may. The request's own result topic always may (its result goes there anyway); the worker's
   * other topics (requests, other results, dead letters) never may, whatever the patterns say.
   */
  refusal(topic: string, logical: RequestTopic): string | undefined {
    if (topic === this.#names.result(logical)) return undefined;
    const own = this.#names.lookup(topic);
    if (own) {
      return `kafka_replyTopic "${topic}" is one of the worker's ${ROLE_NAMES[own.role]} topics; refusing to reply there`;
    }
    // Another deployment's (a prefix of its own, `tenant.b.` beside this worker's `tenant.`): a result
    // written there would be read as its request, or answer its callers with what this request said.
    const theirs = UNPREFIXED.find((t) => topic.endsWith(t.name));
    if (theirs) {
      return (
        `kafka_replyTopic "${topic}" is the ${ROLE_NAMES[theirs.role]} topic of a deployment of this worker with the prefix ` +
        `"${topic.slice(0, -theirs.name.length)}"; refusing to reply there`
      );
    }
    if (this.#matchers.some((m) => m.test(topic))) return undefined;
    return (
      `kafka_replyTopic "${topic}" is not an allowed reply topic (WORKER_REPLY_TOPICS: ` +
      `${this.patterns.join(',')}); refusing to reply there`
    );
  }
}
