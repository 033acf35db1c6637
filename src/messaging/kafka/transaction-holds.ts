// A read_committed consumer reads a partition only up to its last stable offset: the first offset of the
// oldest transaction still open there. A producer that opens a transaction and never ends it holds the
// partition until the broker aborts it, after the producer's transaction.timeout.ms (at most the broker's
// transaction.max.timeout.ms, 15 min by default), and anyone allowed a transactional id can do that again
// and again. Kafka lets no reader past it, so it is named instead: once per hold, after `warnAfterMs`.

export interface PartitionEnds {
  /** The next offset this consumer fetches. */
  position: bigint;
  highWatermark: bigint;
  /** The last stable offset: nothing from it on is readable while a transaction there is open. */
  stableOffset: bigint;
}

/** Nothing past the position is readable now: the partition is read to its end, or an open transaction
 * holds it there. */
export function atStableEnd(ends: PartitionEnds): boolean {
  return ends.position >= ends.stableOffset;
}

export type HoldEvent =
  | { kind: 'held'; stableOffset: bigint; behind: bigint; heldMs: number }
  | { kind: 'released'; heldMs: number };

/** Per partition: since when an open transaction has kept this consumer at one offset. */
export class TransactionHolds {
  readonly #holds = new Map<string, { at: number; stableOffset: bigint; warned: boolean }>();
  readonly #warnAfterMs: number;

  constructor(warnAfterMs: number) {
    this.#warnAfterMs = warnAfterMs;
  }

  /** What to say about `partition` after a fetch answered with `ends` at `now` (ms), if anything. */
  observe(partition: string, ends: PartitionEnds, now: number): HoldEvent | undefined {
    const held = atStableEnd(ends) && ends.stableOffset < ends.highWatermark;
    const hold = this.#holds.get(partition);
    // The same hold while the consumer waits at the same stable offset; a later one is a new hold.
    if (hold && held && hold.stableOffset === ends.stableOffset) {
      if (hold.warned || now - hold.at < this.#warnAfterMs) return undefined;
      hold.warned = true;
      return {
        kind: 'held',
        stableOffset: ends.stableOffset,
        behind: ends.highWatermark - ends.stableOffset,
        heldMs: now - hold.at,
      };
    }
    if (held) this.#holds.set(partition, { at: now, stableOffset: ends.stableOffset, warned: false });
    else this.#holds.delete(partition);
    return hold?.warned ? { kind: 'released', heldMs: now - hold.at } : undefined;
  }

  /** The partition left this consumer: a later hold starts afresh. */
  forget(partition: string): void {
    this.#holds.delete(partition);
  }
}
