// Which replayed messages may start now, in the merged order: a message starts only when no earlier
// message that touches any of the same things (replay-order.ts) is queued or running, so two messages
// touching one pattern are applied in the merged order, and everything else runs at once. Consecutive
// ready usage events form one batch (one transaction), several of one pattern included, in order.
// Pure: no I/O.
import { LockSet, type Locks } from './replay-order.ts';

export interface ReplayItem {
  locks: Locks;
  batchable: boolean;
  /** Bytes of the request value (a batch is bounded by bytes too). */
  size: number;
}

export interface ReplayUnit<P extends ReplayItem> {
  items: P[];
  batched: boolean;
  locks: Locks;
}

interface Entry<P> {
  item: P;
  solo: boolean;
  taken?: boolean;
}

export class ReplayScheduler<P extends ReplayItem> {
  readonly #queue: Entry<P>[] = [];
  readonly #busy = new LockSet();
  readonly #maxBatch: number;
  readonly #maxBatchBytes: number;
  readonly #maxScan: number;

  constructor(options: { maxBatch: number; maxBatchBytes?: number; maxScan?: number }) {
    this.#maxBatch = Math.max(1, options.maxBatch);
    this.#maxBatchBytes = options.maxBatchBytes ?? Number.POSITIVE_INFINITY;
    this.#maxScan = options.maxScan ?? Math.max(1000, this.#maxBatch * 4);
  }

  get queued(): number {
    return this.#queue.length;
  }

  push(item: P): void {
    this.#queue.push({ item, solo: false });
  }

  /** A failed batch's items go back to the front, in their order, to be tried one at a time. */
  putBackSolo(unit: ReplayUnit<P>): void {
    this.#busy.remove(unit.locks);
    this.#queue.unshift(...unit.items.map((item) => ({ item, solo: true })));
  }

  /** The unit is done (or given up on): what waited for its locks may start. */
  release(unit: ReplayUnit<P>): void {
    this.#busy.remove(unit.locks);
  }

  /** The next unit that may start now, taken out of the queue, or undefined; a batch of `maxItems` at most. */
  next(maxItems = this.#maxBatch): ReplayUnit<P> | undefined {
    const blocked = new LockSet();
    const limit = Math.min(this.#queue.length, this.#maxScan);
    for (let i = 0; i < limit; i++) {
      const entry = this.#queue[i] as Entry<P>;
      const { item } = entry;
      if (this.#busy.conflicts(item.locks) || blocked.conflicts(item.locks)) {
        blocked.add(item.locks);
        continue;
      }
      if (item.batchable && !entry.solo) return this.#batchFrom(i, blocked, limit, Math.max(1, maxItems));
      this.#queue.splice(i, 1);
      this.#busy.add(item.locks);
      return { items: [item], batched: false, locks: item.locks };
    }
    return undefined;
  }

  /** A usage batch from queue index `start`: later ready usage events join it in order. */
  #batchFrom(start: number, blocked: LockSet, limit: number, maxItems: number): ReplayUnit<P> {
    const items: P[] = [];
    const locks: string[] = [];
    let bytes = 0;
    for (let i = start; i < limit && items.length < Math.min(maxItems, this.#maxBatch); i++) {
      const entry = this.#queue[i] as Entry<P>;
      const { item } = entry;
      if (this.#busy.conflicts(item.locks) || blocked.conflicts(item.locks)) {
        blocked.add(item.locks);
        continue;
      }
      if (item.batchable && !entry.solo) {
        if (items.length > 0 && bytes + item.size > this.#maxBatchBytes) break;
        bytes += item.size;
        items.push(item);
        locks.push(...item.locks);
        entry.taken = true;
      } else {
        // Another write: what follows touching what it touches must not overtake it.
        blocked.add(item.locks);
      }
    }
    let write = start;
    for (let read = start; read < this.#queue.length; read++) {
      const entry = this.#queue[read] as Entry<P>;
      if (!entry.taken) this.#queue[write++] = entry;
    }
    this.#queue.length = write;
    this.#busy.add(locks);
    return { items, batched: items.length > 1, locks };
  }
}
