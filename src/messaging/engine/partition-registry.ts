// The partitions a lane holds, and where each may start. A revocation retires the partitions that moved,
// a new consumer every state; a retired
// state with units still in flight stays as a stand-in (its successor waits for it, as Parallel
// Consumer's RemovedPartitionState) and leaves its restart point: the lowest offset whose effect and
// result are not known to be done. A new state starts only at or below that point: if the consumer
// resumes above it (kafkajs resumes from the offsets it had already handed over when a rejoin fails
// and its old membership stays), the registry answers with a seek back there, so no sequence of broker
// events can skip a message.
import { OffsetTracker } from './offset-tracker.ts';
import type { PartitionScheduler } from './partition-scheduler.ts';
import type { Schedulable } from './ports.ts';
import { partitionKey } from './records.ts';

export interface PartitionState<P extends Schedulable> {
  readonly key: string;
  readonly topic: string;
  readonly partition: number;
  readonly tracker: OffsetTracker;
  readonly scheduler: PartitionScheduler<P>;
  /** Units picked and not done (running, waiting to retry, or waiting for their publish acks). */
  inFlight: number;
  retired: boolean;
  /** The retired state of the same partition whose units are still in flight: this one waits for it. */
  predecessor: PartitionState<P> | undefined;
  backoffUntil: number;
  transientStreak: number;
  paused: boolean;
  /** Bytes of request values taken in and not done. */
  bytes: number;
  /** The last offset committed (or the start). */
  committed: bigint;
  /** The safe position (tracker.safe) last seen, and since when (epoch ms) it has been there with
   * messages unfinished above it: how long the partition's oldest unfinished message has held it. */
  lastSafe: bigint;
  waitingSince: number;
}

/** Seeks for one restart point before a gap is accepted (the log no longer holds those offsets). */
const MAX_SEEKS = 5;

export type Opening<P extends Schedulable> =
  { state: PartitionState<P>; gap?: { from: bigint; to: bigint } } | { seekTo: bigint };

export class PartitionRegistry<P extends Schedulable> {
  readonly #live = new Map<string, PartitionState<P>>();
  /** Live states in the order units are taken from them (round robin). */
  #order: PartitionState<P>[] = [];
  #cursor = 0;
  readonly #standIns = new Map<string, PartitionState<P>>();
  /** Restart points of retired partitions that may come back without a fresh assignment. */
  readonly #restartAt = new Map<string, bigint>();
  readonly #seeks = new Map<string, number>();
  readonly #scheduler: () => PartitionScheduler<P>;

  constructor(scheduler: () => PartitionScheduler<P>) {
    this.#scheduler = scheduler;
  }

  get(topic: string, partition: number): PartitionState<P> | undefined {
    return this.#live.get(partitionKey(topic, partition));
  }

  live(): IterableIterator<PartitionState<P>> {
    return this.#live.values();
  }

  /** The live state of a partition whose fetched messages start at `first`, or where to seek first. */
  open(topic: string, partition: number, first: bigint): Opening<P> {
    const key = partitionKey(topic, partition);
    const existing = this.#live.get(key);
    if (existing) return { state: existing };
    const restartAt = this.#restartAt.get(key);
    let gap: { from: bigint; to: bigint } | undefined;
    if (restartAt !== undefined && first > restartAt) {
      const seeks = this.#seeks.get(key) ?? 0;
      if (seeks < MAX_SEEKS) {
        this.#seeks.set(key, seeks + 1);
        return { seekTo: restartAt };
      }
      gap = { from: restartAt, to: first };
    }
    this.#restartAt.delete(key);
    this.#seeks.delete(key);
    const standIn = this.#standIns.get(key);
    const state: PartitionState<P> = {
      key,
      topic,
      partition,
      tracker: new OffsetTracker(first),
      scheduler: this.#scheduler(),
      inFlight: 0,
      retired: false,
      predecessor: standIn && standIn.inFlight > 0 ? standIn : undefined,
      backoffUntil: 0,
      transientStreak: 0,
      paused: false,
      bytes: 0,
      committed: first,
      lastSafe: first,
      waitingSince: Date.now(),
    };
    this.#live.set(key, state);
    this.#order.push(state);
    return gap ? { state, gap } : { state };
  }

  /** Every live state stops (a new consumer); returns them for the engine to clean up. */
  retireAll(): PartitionState<P>[] {
    const retired = [...this.#live.values()];
    for (const state of retired) {
      const known = this.#restartAt.get(state.key);
      const safe = state.tracker.safe;
      this.#restartAt.set(state.key, known !== undefined && known < safe ? known : safe);
      this.#retire(state);
    }
    this.#live.clear();
    this.#order = [];
    this.#cursor = 0;
    return retired;
  }

  /** These partitions went to other members: their states stop and their restart points are forgotten
   * (the new owner goes on from the committed offsets); the other partitions go on untouched. */
  revoke(keys: ReadonlySet<string>): PartitionState<P>[] {
    const retired: PartitionState<P>[] = [];
    for (const key of keys) {
      this.#restartAt.delete(key);
      this.#seeks.delete(key);
      const state = this.#live.get(key);
      if (!state) continue;
      this.#retire(state);
      this.#live.delete(key);
      retired.push(state);
    }
    if (retired.length > 0) {
      this.#order = this.#order.filter((s) => !s.retired);
      this.#cursor = 0;
    }
    return retired;
  }

  #retire(state: PartitionState<P>): void {
    state.retired = true;
    if (state.inFlight > 0) this.#standIns.set(state.key, state);
    else this.#standIns.delete(state.key);
  }

  /**
   * A fresh assignment: its partitions are fetched from the group's committed offsets, which never pass a
   * restart point of ours; partitions that went to other members forget theirs (those members move on).
   */
  assigned(partitions: ReadonlySet<string>): void {
    for (const key of [...this.#restartAt.keys()]) {
      if (!partitions.has(key)) {
        this.#restartAt.delete(key);
        this.#seeks.delete(key);
      }
    }
  }

  /** A retired state's last unit is over. */
  released(state: PartitionState<P>): void {
    if (state.retired && state.inFlight === 0 && this.#standIns.get(state.key) === state)
      this.#standIns.delete(state.key);
  }

  /** Live states, round robin from where the last pick left off; `picked` moves the cursor past one. */
  *roundRobin(): Generator<PartitionState<P>, void, boolean | undefined> {
    const count = this.#order.length;
    for (let i = 0; i < count; i++) {
      const index = (this.#cursor + i) % count;
      const picked = yield this.#order[index] as PartitionState<P>;
      if (picked) {
        this.#cursor = (index + 1) % count;
        return;
      }
    }
  }

  get states(): readonly PartitionState<P>[] {
    return this.#order;
  }
}
