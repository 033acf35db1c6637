// Which topics exist and how many partitions they have, cached, so that a reply header naming a topic
// that does not exist is refused up front instead of wedging its partition in send retries.
import { kafkaErrorType, type KafkaAdmin } from './admin.ts';

const POSITIVE_TTL_MS = 60_000;
const NEGATIVE_TTL_MS = 2_000;

export class TopicDirectory {
  readonly #admin: KafkaAdmin;
  readonly #cache = new Map<string, { partitions: number | undefined; at: number }>();
  /** One metadata request per topic at a time, however many messages ask meanwhile. */
  readonly #pending = new Map<string, Promise<number | undefined>>();

  constructor(admin: KafkaAdmin) {
    this.#admin = admin;
  }

  /** Partition count of `topic`, or undefined when it does not exist. */
  async partitions(topic: string): Promise<number | undefined> {
    const cached = this.#cache.get(topic);
    const now = Date.now();
    if (cached && now - cached.at < (cached.partitions === undefined ? NEGATIVE_TTL_MS : POSITIVE_TTL_MS)) {
      return cached.partitions;
    }
    const pending = this.#pending.get(topic);
    if (pending) return pending;
    const lookup = this.#lookup(topic).finally(() => this.#pending.delete(topic));
    this.#pending.set(topic, lookup);
    return lookup;
  }

  async #lookup(topic: string): Promise<number | undefined> {
    let partitions: number | undefined;
    try {
      const metadata = await this.#admin.fetchTopicMetadata({ topics: [topic] });
      partitions = metadata.topics[0]?.partitions.length;
    } catch (err) {
      if (kafkaErrorType(err) !== 'UNKNOWN_TOPIC_OR_PARTITION') throw err;
    }
    this.#cache.set(topic, { partitions, at: Date.now() });
    return partitions;
  }
}
