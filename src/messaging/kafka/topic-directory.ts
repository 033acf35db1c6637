// Which topics exist and how many partitions they have, cached, so that a reply header naming a topic
// that does not exist is refused up front instead of wedging its partition in send retries.
//
// Any producer chooses the names asked about. Whether a topic exists is read from a listing of the
// cluster's topics, never per name: a name asked about once leaves nothing behind (a per-name metadata
// request left an entry in the client library for every distinct name, about 600 bytes each; a flood of
// them ran the worker out of memory). Only topics that exist are cached, so the cache is bounded by the
// cluster, not by what producers send.
//
// A name is refused only by a listing begun after its message was written (prepare.ts sentBy): a client
// that creates its reply topic and then sends the request is not refused for a listing older than its
// topic. Listings begin at most once a second, so a flood of unknown names costs one listing a second, and
// a message waits at most about that long for its answer. Likewise a partition: one past the cached count
// is refused only by a lookup of the topic begun after the message was written (partitions added to a
// reply topic are used at once), at most one lookup a second per topic.
import { kafkaErrorType, type KafkaAdmin } from './admin.ts';
import { FreshReads, realClock, type ReadClock } from './fresh-reads.ts';

const POSITIVE_TTL_MS = 60_000;
/** A listing of topic names begins at most this long after the one before, however many names come. */
const LISTING_MIN_GAP_MS = 1_000;

export type DirectoryClock = ReadClock;

export class TopicDirectory {
  readonly #admin: KafkaAdmin;
  readonly #clock: DirectoryClock;
  /** Partition counts of existing topics, with when the lookup that read them began. */
  readonly #partitions = new Map<string, { partitions: number; at: number }>();
  readonly #listings: FreshReads<Set<string>>;
  /** Metadata lookups per existing topic: one at a time, at most one a second, however many ask. */
  readonly #lookups = new Map<string, FreshReads<number | undefined>>();

  constructor(admin: KafkaAdmin, clock: DirectoryClock = realClock) {
    this.#admin = admin;
    this.#clock = clock;
    this.#listings = new FreshReads(() => this.#list(), LISTING_MIN_GAP_MS, clock);
  }

  /**
   * Partition count of `topic`, or undefined when it does not exist in a listing begun after
   * `sentAt` (when the message naming it was written; now, if not given). When `partition` is asked for,
   * a count that does not hold it comes from a lookup begun after `sentAt`.
   */
  async partitions(
    topic: string,
    sentAt: number = this.#clock.now(),
    partition?: number,
  ): Promise<number | undefined> {
    const cached = this.#partitions.get(topic);
    if (cached && this.#clock.now() - cached.at < POSITIVE_TTL_MS) {
      if (partition === undefined || partition < cached.partitions || cached.at > sentAt) {
        return cached.partitions;
      }
    }
    if (!(await this.#exists(topic, sentAt))) {
      this.#partitions.delete(topic);
      this.#lookups.delete(topic);
      return undefined;
    }
    let lookups = this.#lookups.get(topic);
    if (!lookups) {
      lookups = new FreshReads(() => this.#lookup(topic), LISTING_MIN_GAP_MS, this.#clock);
      this.#lookups.set(topic, lookups);
    }
    // Any lookup tells a count that holds the partition asked for; one that does not hold it is trusted
    // only from a lookup begun after the message was written.
    const count = await (lookups.runningSince(Number.POSITIVE_INFINITY) ?? lookups.from(-Infinity));
    if (partition === undefined || count === undefined || partition < count) return count;
    const looked = this.#partitions.get(topic);
    if (looked && looked.at > sentAt) return count;
    return lookups.from(sentAt);
  }

  /** Topics cached with their partition counts (at most the cluster's topics). */
  get size(): number {
    return this.#partitions.size;
  }

  async #exists(topic: string, sentAt: number): Promise<boolean> {
    const listed = this.#listings.latest;
    if (listed?.value.has(topic)) return true;
    if (listed && listed.begunAt > sentAt) return false;
    // A listing running already began too early to refuse the name, but it can show it exists: the
    // messages of a worker just started would otherwise wait a second for the next one.
    const running = this.#listings.runningSince(sentAt);
    if (running && (await running).has(topic)) return true;
    return (await this.#listings.from(sentAt)).has(topic);
  }

  async #list(): Promise<Set<string>> {
    const names = new Set(await this.#admin.listTopics());
    for (const topic of this.#partitions.keys()) if (!names.has(topic)) this.#partitions.delete(topic);
    for (const topic of this.#lookups.keys()) if (!names.has(topic)) this.#lookups.delete(topic);
    return names;
  }

  async #lookup(topic: string): Promise<number | undefined> {
    const begunAt = this.#clock.now();
    let partitions: number | undefined;
    try {
      const metadata = await this.#admin.fetchTopicMetadata({ topics: [topic] });
      partitions = metadata.topics[0]?.partitions.length;
    } catch (err) {
      if (kafkaErrorType(err) !== 'UNKNOWN_TOPIC_OR_PARTITION') throw err;
    }
    if (partitions === undefined) this.#partitions.delete(topic);
    else this.#partitions.set(topic, { partitions, at: begunAt });
    return partitions;
  }
}
