// The order rules of one partition, without any I/O: which queued messages may start now. Reads carry
// no order and start whenever there is room; writes keep order per key (a write waits until every earlier
// write of its key in this partition has its effect done; a write's keys are its message key and the
// patterns it touches, so an unkeyed insert and a later update of the same pattern keep their order);
// consecutive ready messages of one batch class (usage events; one pattern's recomputations) form one
// batch, several of one key in offset order included. What a write touches is also held across the lane's
// partitions (LaneHolds). Offsets, commits and retries are the engine's; this only picks.
import type { Schedulable } from './ports.ts';

/** A write's ordering keys: its message key and what it touches, in two namespaces that cannot meet. */
const keysOf = (item: Schedulable): readonly string[] => [
  `k:${item.key}`,
  ...(item.touches ?? []).map((t) => `t:${t}`),
];

/**
 * The patterns touched by the units in flight of all of a lane's partitions. A write whose pattern a unit
 * of another partition holds waits here, in memory: started, it would take a slot and a connection only
 * to wait for that pattern's row lock in PostgreSQL (the contention audit: writes of 150-280 ms each on
 * one pattern, from every partition, kept 3 of the writes lane's 4 slots waiting on one lock, and the
 * valid writes of other patterns waited up to p99 24 s). Across partitions nothing is ordered: this only
 * keeps such units from running at once.
 */
export class LaneHolds {
  readonly #held = new Map<string, number>();

  has(key: string): boolean {
    return this.#held.has(key);
  }

  hold(keys: readonly string[]): void {
    for (const k of keys) if (isTouch(k)) this.#held.set(k, (this.#held.get(k) ?? 0) + 1);
  }

  release(keys: readonly string[]): void {
    for (const k of keys) {
      if (!isTouch(k)) continue;
      const n = (this.#held.get(k) ?? 0) - 1;
      if (n > 0) this.#held.set(k, n);
      else this.#held.delete(k);
    }
  }
}

const isTouch = (key: string) => key.startsWith('t:');

export interface PickedUnit<P extends Schedulable> {
  items: P[];
  batched: boolean;
  /** Keys this unit holds until its effect is done (ordered messages only). */
  keys: string[];
}

interface Entry<P> {
  item: P;
  /** Taken back after a failed batch: runs alone from now on. */
  solo: boolean;
  taken?: boolean;
}

export class PartitionScheduler<P extends Schedulable> {
  readonly #queue: Entry<P>[] = [];
  /** Keys with a unit in flight (running, or waiting to retry): their later writes wait. */
  readonly #busy = new Map<string, number>();
  readonly #maxBatch: number;
  readonly #maxBatchBytes: number;
  readonly #maxScan: number;
  readonly #lane: LaneHolds | undefined;

  /**
   * `maxBatchBytes`: a batch also stops at this many bytes of request values (at least one event).
   * `lane`: what the lane's other partitions' units touch (none: this partition alone).
   */
  constructor(options: { maxBatch: number; maxBatchBytes?: number; maxScan?: number; lane?: LaneHolds }) {
    this.#maxBatch = options.maxBatch;
    this.#maxBatchBytes = options.maxBatchBytes ?? Number.POSITIVE_INFINITY;
    this.#maxScan = options.maxScan ?? Math.max(1000, options.maxBatch * 4);
    this.#lane = options.lane;
  }

  #isBusy(key: string): boolean {
    return this.#busy.has(key) || this.#lane?.has(key) === true;
  }

  get queued(): number {
    return this.#queue.length;
  }

  push(item: P): void {
    this.#queue.push({ item, solo: false });
  }

  /** Puts a failed batch's items back, in offset order, to be tried one at a time. */
  putBackSolo(items: readonly P[]): void {
    const entries = items.map((item) => ({ item, solo: true }));
    const first = BigInt(items[0]?.message.offset ?? '0');
    const at = this.#queue.findIndex((e) => BigInt(e.item.message.offset) > first);
    this.#queue.splice(at < 0 ? this.#queue.length : at, 0, ...entries);
  }

  /** Drops every queued message (not the ones in flight) and returns them. */
  clear(): P[] {
    return this.#queue.splice(0).map((e) => e.item);
  }

  hold(keys: readonly string[]): void {
    for (const k of keys) this.#busy.set(k, (this.#busy.get(k) ?? 0) + 1);
    this.#lane?.hold(keys);
  }

  release(keys: readonly string[]): void {
    this.#lane?.release(keys);
    for (const k of keys) {
      const n = (this.#busy.get(k) ?? 0) - 1;
      if (n > 0) this.#busy.set(k, n);
      else this.#busy.delete(k);
    }
  }

  /** The next unit that may start now, taken out of the queue, or undefined. */
  next(): PickedUnit<P> | undefined {
    const blocked = new Set<string>();
    const limit = Math.min(this.#queue.length, this.#maxScan);
    for (let i = 0; i < limit; i++) {
      const entry = this.#queue[i] as Entry<P>;
      const { item } = entry;
      if (item.ordering === 'free') {
        this.#queue.splice(i, 1);
        return { items: [item], batched: false, keys: [] };
      }
      const keys = keysOf(item);
      if (keys.some((k) => this.#isBusy(k) || blocked.has(k))) {
        for (const k of keys) blocked.add(k);
        continue;
      }
      if (item.batchWith === undefined || entry.solo) {
        this.#queue.splice(i, 1);
        return { items: [item], batched: false, keys: [...keys] };
      }
      return this.#batchFrom(i, item.batchWith, blocked, limit);
    }
    return undefined;
  }

  /** A batch starting at queue index `start`: later ready messages of its class join it in offset order. */
  #batchFrom(start: number, batchWith: string, blocked: Set<string>, limit: number): PickedUnit<P> {
    const items: P[] = [];
    const keys = new Set<string>();
    let bytes = 0;
    for (let i = start; i < limit && items.length < this.#maxBatch; i++) {
      const entry = this.#queue[i] as Entry<P>;
      const { item } = entry;
      if (item.ordering === 'free') continue;
      const itemKeys = keysOf(item);
      if (itemKeys.some((k) => this.#isBusy(k) || blocked.has(k))) {
        for (const k of itemKeys) blocked.add(k);
        continue;
      }
      if (item.batchWith === batchWith && !entry.solo) {
        const size = item.message.value?.length ?? 0;
        // A batch's memory is bounded by bytes too, so that large events cannot exhaust a capped heap.
        if (items.length > 0 && bytes + size > this.#maxBatchBytes) break;
        bytes += size;
        items.push(item);
        for (const k of itemKeys) keys.add(k);
        entry.taken = true;
      } else {
        // A write of another class: it and everything after it of its keys wait for this batch.
        for (const k of itemKeys) blocked.add(k);
      }
    }
    // One pass to drop the taken entries, instead of a splice per event.
    let write = start;
    for (let read = start; read < this.#queue.length; read++) {
      const entry = this.#queue[read] as Entry<P>;
      if (!entry.taken) this.#queue[write++] = entry;
    }
    this.#queue.length = write;
    return { items, batched: items.length > 1, keys: [...keys] };
  }
}
