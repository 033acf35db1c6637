// Which replayed messages may start now, in the merged order: a message starts only when no earlier
// message that touches any of the same things (replay-order.ts) is queued or running, so two messages
// touching one pattern are applied in the merged order, and everything else runs at once. Consecutive
// ready messages of one batch class (usage events; one pattern's recomputations) form one batch (one
// transaction), several of one pattern included, in order.
// A message refused here though the live worker applied it waits until a message touching the same
// things is applied (`defer`). Pure: no I/O.
import { ALL, LockSet, type Locks } from './replay-order.ts';

export interface ReplayItem {
  locks: Locks;
  /** Messages of one batch class may share a unit (operations.ts batchClassOf). */
  batchWith?: string | undefined;
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

/** A class lock (`n:*`) or `*`: it conflicts with locks it does not name. */
const isBroad = (lock: string): boolean => lock === ALL || lock.endsWith(':*');

export class ReplayScheduler<P extends ReplayItem> {
  readonly #queue: Entry<P>[] = [];
  /** Deferred messages, in the order they were deferred. */
  #waiting: P[] = [];
  /** The deferred messages by each lock they hold; those holding a class lock or `*` are in `#broad` too
   * (they conflict with locks they do not name). An applied unit looks up its own locks, not every
   * deferred message. */
  readonly #byLock = new Map<string, Set<P>>();
  readonly #broad = new Set<P>();
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

  /** Deferred messages waiting for a message touching the same things to be applied. */
  get waiting(): number {
    return this.#waiting.length;
  }

  push(item: P): void {
    this.#queue.push({ item, solo: false });
  }

  /**
   * A message refused here that the live worker applied: live, it ran after something the merged order
   * puts later (an insert appended to another partition just after it, and applied first). It waits,
   * out of the queue, until `applied` is told of a message touching any of the same things. Whatever
   * queued touches the same things came after it in the merged order, and still does once it is back.
   */
  defer(item: P): void {
    this.#waiting.push(item);
    for (const lock of item.locks) {
      if (isBroad(lock)) this.#broad.add(item);
      let holders = this.#byLock.get(lock);
      if (!holders) this.#byLock.set(lock, (holders = new Set()));
      holders.add(item);
    }
  }

  /**
   * A unit touching `locks` was applied: the deferred messages touching any of them (and the deferred
   * messages touching those) go back to the front of the queue, in their order.
   */
  applied(locks: Locks): void {
    if (this.#waiting.length === 0 || locks.length === 0) return;
    const touched = new LockSet();
    touched.add(locks);
    const woken = new Set<P>();
    const wake = (w: P): boolean => {
      if (woken.has(w) || !touched.conflicts(w.locks)) return false;
      woken.add(w);
      touched.add(w.locks);
      return true;
    };
    // Through the index from the applied locks, then from the locks of what they wake; a class lock or
    // `*` among them conflicts with locks it does not name: then every deferred message is looked at.
    const frontier = [...locks];
    let scanAll = false;
    while (frontier.length > 0 && !scanAll) {
      const lock = frontier.pop() as string;
      if (isBroad(lock)) scanAll = true;
      for (const w of [...(this.#byLock.get(lock) ?? []), ...this.#broad])
        if (wake(w)) frontier.push(...w.locks);
    }
    for (let grew = scanAll; grew;) {
      grew = false;
      for (const w of this.#waiting) grew = wake(w) || grew;
    }
    if (woken.size > 0) this.#release(woken);
  }

  #release(items: ReadonlySet<P>): void {
    this.#queue.unshift(...this.#waiting.filter((w) => items.has(w)).map((item) => ({ item, solo: false })));
    this.#waiting = this.#waiting.filter((w) => !items.has(w));
    for (const item of items) {
      this.#broad.delete(item);
      for (const lock of item.locks) {
        const holders = this.#byLock.get(lock);
        holders?.delete(item);
        if (holders?.size === 0) this.#byLock.delete(lock);
      }
    }
  }

  /** The oldest `count` deferred messages (all by default: the end of the replay) go back to the front of
   * the queue, in their order. */
  releaseWaiting(count = this.#waiting.length): P[] {
    const items = this.#waiting.slice(0, count);
    this.#release(new Set(items));
    return items;
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
      if (item.batchWith !== undefined && !entry.solo) {
        return this.#batchFrom(i, item.batchWith, blocked, limit, Math.max(1, maxItems));
      }
      this.#queue.splice(i, 1);
      this.#busy.add(item.locks);
      return { items: [item], batched: false, locks: item.locks };
    }
    return undefined;
  }

  /** A batch from queue index `start`: later ready messages of its class join it in order. */
  #batchFrom(
    start: number,
    batchWith: string,
    blocked: LockSet,
    limit: number,
    maxItems: number,
  ): ReplayUnit<P> {
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
      if (item.batchWith === batchWith && !entry.solo) {
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
