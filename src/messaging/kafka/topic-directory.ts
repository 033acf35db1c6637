// Which topics exist and how many partitions they have, cached, so that a reply header naming a topic
// that does not exist is refused up front instead of wedging its partition in send retries.
//
// Any producer chooses the names asked about. Whether a topic exists is read from a listing of the
// cluster's topics, refreshed at most once a second, never per name: a name asked about once leaves
// nothing behind (a per-name metadata request left an entry in the client library for every distinct name,
// about 600 bytes each; a flood of them ran the worker out of memory). Only topics that exist are cached,
// so the cache is bounded by the cluster, not by what producers send.
import { kafkaErrorType, type KafkaAdmin } from './admin.ts';

const POSITIVE_TTL_MS = 60_000;
/** The listing of topic names is asked for again at most this often, however many unknown names come. */
const LISTING_MIN_AGE_MS = 1_000;

export class TopicDirectory {
  readonly #admin: KafkaAdmin;
  readonly #partitions = new Map<string, { partitions: number; at: number }>();
  #names: { names: Set<string>; at: number } | undefined;
  #listing: Promise<Set<string>> | undefined;
  /** One metadata request per existing topic at a time, however many messages ask meanwhile. */
  readonly #pending = new Map<string, Promise<number | undefined>>();
  readonly #now: () => number;

  constructor(admin: KafkaAdmin, now: () => number = Date.now) {
    this.#admin = admin;
    this.#now = now;
  }

  /** Partition count of `topic`, or undefined when it does not exist. */
  async partitions(topic: string): Promise<number | undefined> {
    const cached = this.#partitions.get(topic);
    if (cached && this.#now() - cached.at < POSITIVE_TTL_MS) return cached.partitions;
    if (!(await this.#exists(topic))) {
      this.#partitions.delete(topic);
      return undefined;
    }
    const pending = this.#pending.get(topic);
    if (pending) return pending;
    const lookup = this.#lookup(topic).finally(() => this.#pending.delete(topic));
    this.#pending.set(topic, lookup);
    return lookup;
  }

  /** Topics cached with their partition counts (at most the cluster's topics). */
  get size(): number {
    return this.#partitions.size;
  }

  /** Whether the latest listing names `topic`; a name it lacks gets a new listing if it is old enough. */
  async #exists(topic: string): Promise<boolean> {
    const listed = this.#names;
    if (listed?.names.has(topic)) return true;
    if (listed && this.#now() - listed.at < LISTING_MIN_AGE_MS) return false;
    return (await this.#list()).has(topic);
  }

  #list(): Promise<Set<string>> {
    this.#listing ??= this.#admin
      .listTopics()
      .then((topics) => {
        const names = new Set(topics);
        this.#names = { names, at: this.#now() };
        for (const topic of this.#partitions.keys()) if (!names.has(topic)) this.#partitions.delete(topic);
        return names;
      })
      .finally(() => {
        this.#listing = undefined;
      });
    return this.#listing;
  }

  async #lookup(topic: string): Promise<number | undefined> {
    let partitions: number | undefined;
    try {
      const metadata = await this.#admin.fetchTopicMetadata({ topics: [topic] });
      partitions = metadata.topics[0]?.partitions.length;
    } catch (err) {
      if (kafkaErrorType(err) !== 'UNKNOWN_TOPIC_OR_PARTITION') throw err;
    }
    if (partitions === undefined) this.#partitions.delete(topic);
    else this.#partitions.set(topic, { partitions, at: this.#now() });
    return partitions;
  }
}
