// Which offset of one partition may be committed: the lowest offset taken in but not finished (effect
// and result both done), or the end of what was fetched when everything is finished. Messages finish in
// any order; the commit position only moves forward, and never past an unfinished message, so a crash at
// any moment redelivers every message whose effect or result might be missing.
export class OffsetTracker {
  /** Offsets taken in and not finished, ascending; `#head` skips the finished prefix without shifting. */
  #pending: bigint[] = [];
  #finished = new Set<bigint>();
  #head = 0;
  /** One past the last offset fetched (kafkajs may skip control records: the batch's last offset counts). */
  #fetchedEnd: bigint;

  /** `start`: the partition's position when it was assigned (its committed offset, or where a replay starts). */
  constructor(start: bigint) {
    this.#fetchedEnd = start;
  }

  /** Takes in a fetched offset; offsets arrive in ascending order. */
  add(offset: bigint): void {
    if (offset < this.#fetchedEnd) throw new Error(`offset ${offset} taken in twice or out of order`);
    this.#pending.push(offset);
    this.#fetchedEnd = offset + 1n;
  }

  /** Everything below `end` has been fetched (the offsets in between were not messages). */
  fetchedTo(end: bigint): void {
    if (end > this.#fetchedEnd) this.#fetchedEnd = end;
  }

  finish(offset: bigint): void {
    if (offset < this.safe || offset >= this.#fetchedEnd || this.#finished.has(offset)) return;
    this.#finished.add(offset);
    while (this.#head < this.#pending.length) {
      const next = this.#pending[this.#head] as bigint;
      if (!this.#finished.has(next)) break;
      this.#finished.delete(next);
      this.#head++;
    }
    if (this.#head > 1024 && this.#head * 2 > this.#pending.length) {
      this.#pending = this.#pending.slice(this.#head);
      this.#head = 0;
    }
  }

  /** Messages taken in and not finished. */
  get unfinished(): number {
    return this.#pending.length - this.#head - this.#finished.size;
  }

  /** Messages taken in at or above the commit point, finished or not. */
  get held(): number {
    return this.#pending.length - this.#head;
  }

  /** The offset to commit: the first unfinished one, else the end of what was fetched. */
  get safe(): bigint {
    return this.#head < this.#pending.length ? (this.#pending[this.#head] as bigint) : this.#fetchedEnd;
  }

  get fetchedEnd(): bigint {
    return this.#fetchedEnd;
  }
}
