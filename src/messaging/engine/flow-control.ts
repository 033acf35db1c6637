// Flow control without I/O: when a partition's fetching pauses and resumes, and the rate budget.
import type { LaneSettings } from './settings.ts';

export interface PartitionLoad {
  /** Messages taken in and not finished. */
  unfinished: number;
  /** Messages taken in above the commit point, finished or not. */
  uncommitted: number;
}

type Bounds = Pick<LaneSettings, 'maxBufferedMessages' | 'maxUncommittedMessages' | 'maxBufferedBytes'>;

/** Why a partition that just received stops fetching (it, or the lane, holds too much), or undefined. */
export function pauseReason(
  load: PartitionLoad,
  laneBytes: number,
  bounds: Bounds,
): 'buffer' | 'uncommitted' | undefined {
  if (load.unfinished > bounds.maxBufferedMessages || laneBytes > bounds.maxBufferedBytes) return 'buffer';
  if (load.uncommitted > bounds.maxUncommittedMessages) return 'uncommitted';
  return undefined;
}

/** A paused partition fetches again once it and the lane are below half of every bound. */
export function mayResume(load: PartitionLoad, laneBytes: number, bounds: Bounds): boolean {
  return (
    load.unfinished <= bounds.maxBufferedMessages / 2 &&
    load.uncommitted <= bounds.maxUncommittedMessages / 2 &&
    laneBytes <= bounds.maxBufferedBytes / 2
  );
}

/**
 * Messages that may start, refilled at `ratePerSecond` up to a tenth of a second's worth; a unit may spend
 * more than is left (a usage batch), which the next ones wait off. 0: no limit.
 */
export class RateLimiter {
  readonly #rate: number;
  readonly #burst: number;
  readonly #now: () => number;
  #tokens = 0;
  #at: number;

  constructor(ratePerSecond: number, now: () => number = () => performance.now()) {
    this.#rate = ratePerSecond;
    this.#burst = Math.max(1, ratePerSecond / 10);
    this.#now = now;
    this.#at = now();
  }

  /** 0 when a unit may start now, else the milliseconds until one may. */
  waitMs(): number {
    if (this.#rate <= 0) return 0;
    const now = this.#now();
    this.#tokens = Math.min(this.#burst, this.#tokens + ((now - this.#at) / 1000) * this.#rate);
    this.#at = now;
    return this.#tokens > 0 ? 0 : Math.ceil(((1 - this.#tokens) / this.#rate) * 1000);
  }

  spend(messages: number): void {
    if (this.#rate > 0) this.#tokens -= messages;
  }
}
