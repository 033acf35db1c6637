// Commits each partition's safe offset: one commit request at a time, later requests coalesced into the
// next one. A failed commit is logged and left for the next finished unit (offsets only grow).
import type { PartitionState } from './partition-registry.ts';
import type { PartitionOffset, Schedulable } from './ports.ts';

export interface CommitterOptions {
  commit(offsets: PartitionOffset[]): Promise<void>;
  committed(offsets: PartitionOffset[]): void;
  failed(err: unknown): void;
}

export class Committer<P extends Schedulable> {
  readonly #o: CommitterOptions;
  readonly #states: () => Iterable<PartitionState<P>>;
  #inFlight: Promise<void> | undefined;
  #again = false;

  constructor(states: () => Iterable<PartitionState<P>>, options: CommitterOptions) {
    this.#states = states;
    this.#o = options;
  }

  /** Whether some live partition has a safe offset above its last commit. */
  get behind(): boolean {
    for (const state of this.#states()) if (state.tracker.safe > state.committed) return true;
    return false;
  }

  commit(): Promise<void> {
    if (this.#inFlight) {
      this.#again = true;
      return this.#inFlight;
    }
    const moved: { state: PartitionState<P>; safe: bigint }[] = [];
    for (const state of this.#states()) {
      const safe = state.tracker.safe;
      if (safe > state.committed) moved.push({ state, safe });
    }
    if (moved.length === 0) return Promise.resolve();
    const offsets = moved.map(({ state, safe }) => ({
      topic: state.topic,
      partition: state.partition,
      offset: safe.toString(),
    }));
    this.#inFlight = this.#o
      .commit(offsets)
      .then(
        () => {
          for (const { state, safe } of moved) if (safe > state.committed) state.committed = safe;
          this.#o.committed(offsets);
        },
        (err: unknown) => this.#o.failed(err),
      )
      .finally(() => {
        this.#inFlight = undefined;
        if (this.#again) {
          this.#again = false;
          void this.commit();
        }
      });
    return this.#inFlight;
  }

  /** Commits until nothing is behind or in flight (the last commit of a drain). */
  async flush(): Promise<void> {
    for (let i = 0; i < 3 && (this.#inFlight || this.#again || this.behind); i++) {
      await this.commit();
      if (this.#inFlight) await this.#inFlight;
    }
  }
}
