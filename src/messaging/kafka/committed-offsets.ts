// Whether a consumer group has committed past an offset, read from the broker: a redrive takes its
// original's identity only once the original is settled (stages/prepare.ts checkRedriveOriginal). Any
// producer can write the coordinates asked about, so reads are shared and spaced (fresh-reads.ts) and
// kept per group and topic, which the worker's own topics bound; offsets seen committed are kept as the
// highest per partition, as a committed offset only grows (an operator's reset to an earlier one leaves
// messages that were settled once, which is all this answers).
import type { KafkaAdmin } from './admin.ts';
import { FreshReads, realClock, type ReadClock } from './fresh-reads.ts';

/** Reads of one group's offsets on one topic begin at most this long after the one before. */
const READ_MIN_GAP_MS = 250;

export class CommittedOffsets {
  readonly #admin: KafkaAdmin;
  readonly #clock: ReadClock;
  readonly #reads = new Map<string, FreshReads<Map<number, bigint>>>();
  readonly #highest = new Map<string, Map<number, bigint>>();

  constructor(admin: KafkaAdmin, clock: ReadClock = realClock) {
    this.#admin = admin;
    this.#clock = clock;
  }

  /**
   * The offset `group` has committed on `topic`/`partition` (-1 for none) once it is past `offset`,
   * by a read begun after `sentAt`; while it is not, read again until `waitMs` after `sentAt`, then the
   * last offset read (at most `offset`).
   */
  async committedPast(
    where: { group: string; topic: string; partition: number; offset: bigint },
    sentAt: number,
    waitMs: number,
  ): Promise<{ passed: boolean; committed: bigint }> {
    const key = `${where.group}\u0000${where.topic}`;
    const seen = this.#highest.get(key)?.get(where.partition) ?? -1n;
    if (seen > where.offset) return { passed: true, committed: seen };
    const reads = this.#readsOf(key, where.group, where.topic);
    let since = sentAt;
    for (;;) {
      // The newest read answers if it began late enough: a flood written long ago waits for no read.
      const latest = reads.latest;
      const offsets = latest && latest.begunAt > since ? latest.value : await reads.from(since);
      const committed = offsets.get(where.partition) ?? -1n;
      if (committed > where.offset) return { passed: true, committed };
      const now = this.#clock.now();
      if (now >= sentAt + waitMs) return { passed: false, committed };
      since = now;
    }
  }

  #readsOf(key: string, group: string, topic: string): FreshReads<Map<number, bigint>> {
    let reads = this.#reads.get(key);
    if (!reads) {
      reads = new FreshReads(() => this.#read(key, group, topic), READ_MIN_GAP_MS, this.#clock);
      this.#reads.set(key, reads);
    }
    return reads;
  }

  async #read(key: string, group: string, topic: string): Promise<Map<number, bigint>> {
    const [offsets] = await this.#admin.fetchOffsets({ groupId: group, topics: [topic] });
    let highest = this.#highest.get(key);
    if (!highest) this.#highest.set(key, (highest = new Map<number, bigint>()));
    for (const { partition, offset } of offsets?.partitions ?? []) {
      const committed = BigInt(offset);
      if (committed > (highest.get(partition) ?? -1n)) highest.set(partition, committed);
    }
    // Not a copy: it only grows, and what it shows has been committed.
    return highest;
  }
}
