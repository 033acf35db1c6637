// Reads of broker state that a producer's bytes ask for (does this topic exist? has this offset been
// committed?), shared and spaced: a negative answer is trusted only from a read begun after the message
// asking was written, and reads begin at most once per gap however many messages ask, so a flood of
// questions costs one read per gap and a message waits at most about one gap for its answer.

export interface ReadClock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

export const realClock: ReadClock = {
  now: Date.now,
  sleep: (ms) => (ms > 0 ? new Promise((resolve) => setTimeout(resolve, ms).unref()) : Promise.resolve()),
};

const ignore = (): void => undefined;

export class FreshReads<T> {
  readonly #read: () => Promise<T>;
  readonly #minGapMs: number;
  readonly #clock: ReadClock;
  /** The newest read done, with the time it was begun. */
  #latest: { value: T; begunAt: number } | undefined;
  /** The read running or waiting for its turn, with the time it begins (at the earliest). */
  #next: { beginsAt: number; value: Promise<T> } | undefined;

  constructor(read: () => Promise<T>, minGapMs: number, clock: ReadClock = realClock) {
    this.#read = read;
    this.#minGapMs = minGapMs;
    this.#clock = clock;
  }

  /** The newest read done. */
  get latest(): { value: T; begunAt: number } | undefined {
    return this.#latest;
  }

  /** The read running or planned that begins at or before `time`: too early to trust a "no" after
   * `time`, but whatever it shows exists. */
  runningSince(time: number): Promise<T> | undefined {
    const next = this.#next;
    return next && next.beginsAt <= time ? next.value : undefined;
  }

  /** A read begun after `time` (a millisecond later at least, as what appears in the millisecond a read
   * begins may be missing from it): the one planned, if it begins late enough, else one after it. */
  from(time: number): Promise<T> {
    const next = this.#next;
    if (next && next.beginsAt > time) return next.value;
    const previous = next?.beginsAt ?? this.#latest?.begunAt;
    const beginsAt = Math.max(
      this.#clock.now(),
      time + 1,
      previous === undefined ? -Infinity : previous + this.#minGapMs,
    );
    const value = (next ? next.value.then(ignore, ignore) : Promise.resolve())
      .then(() => this.#clock.sleep(beginsAt - this.#clock.now()))
      .then(() => this.#begin());
    const entry = { beginsAt, value };
    this.#next = entry;
    value
      .finally(() => {
        if (this.#next === entry) this.#next = undefined;
      })
      .catch(ignore);
    return value;
  }

  async #begin(): Promise<T> {
    const begunAt = this.#clock.now();
    const value = await this.#read();
    if (!this.#latest || begunAt >= this.#latest.begunAt) this.#latest = { value, begunAt };
    return value;
  }
}
