// The replay's rate budget (issue 23, point 3): a replay beside a live worker must not take the database
// and the CPU that the worker's ingestion and searches need. A replay started with no explicit rate
// (`--max-rate`, WORKER_REPLAY_MAX_RATE) looks at the live worker's consumer groups (<KAFKA_GROUP_ID>.writes,
// .reads, .analytics, and <KAFKA_GROUP_ID> of versions before a group per lane): while any has members, it
// starts at most WORKER_REPLAY_LIVE_MAX_RATE messages per second; while none has, it runs unlimited (a
// rebuild with nothing live). It looks again every `intervalMs`, so a worker starting or stopping during a
// long replay changes the budget within that time. An explicit rate is kept as it is (0: no limit).
import { LANE_NAMES, laneGroupId } from '../lanes.ts';

/** The one admin call the budget needs (KafkaAdmin's, for groups of either protocol). */
export interface GroupDescriber {
  describeGroups(groupIds: string[]): Promise<{ groupId: string; members: unknown[] }[]>;
}

/** The groups a live worker of `baseGroupId` reads in: one per lane, and the single group of earlier versions. */
export function liveGroupIds(baseGroupId: string): string[] {
  return [...LANE_NAMES.map((lane) => laneGroupId(baseGroupId, lane)), baseGroupId];
}

/** Those of the live worker's groups that have members now. */
export async function liveGroups(admin: GroupDescriber, baseGroupId: string): Promise<string[]> {
  const groups = await admin.describeGroups(liveGroupIds(baseGroupId));
  return groups.filter((g) => g.members.length > 0).map((g) => g.groupId);
}

export interface ReplayBudgetOptions {
  /** An explicit rate (`--max-rate`, WORKER_REPLAY_MAX_RATE): kept whatever runs; 0 = no limit. */
  fixedRate?: number | undefined;
  /** The rate while a live worker's groups have members (WORKER_REPLAY_LIVE_MAX_RATE). */
  liveRate: number;
  /** Which of the live worker's groups have members now. */
  live: () => Promise<string[]>;
  /** How often to look again (default 5 s). */
  intervalMs?: number;
  /** Told of each change after the first, as a line (the replay prints it). */
  onChange?: (line: string) => void;
  /** A look that failed: the budget stays as it was (at the start: as if a worker were live). */
  onError?: (err: unknown) => void;
}

export class ReplayBudget {
  readonly #o: ReplayBudgetOptions;
  #rate: number;
  #groups: string[] = [];
  #timer: NodeJS.Timeout | undefined;
  #checking = false;

  constructor(options: ReplayBudgetOptions) {
    this.#o = options;
    // Until the first look: the cautious budget.
    this.#rate = options.fixedRate ?? options.liveRate;
  }

  /** Messages per second the replay may start now; 0: no limit. */
  rate(): number {
    return this.#rate;
  }

  /** Whether the rate follows the live worker (no explicit rate was given). */
  get automatic(): boolean {
    return this.#o.fixedRate === undefined;
  }

  /** `at most 500 messages/s while live lanes run (g.writes, g.reads)`, `no rate limit (no live lane)`, ... */
  describe(): string {
    if (!this.automatic) return this.#rate > 0 ? `at most ${this.#rate} messages/s` : 'no rate limit';
    const which = this.#groups.length > 0 ? ` (${this.#groups.join(', ')})` : ' (assumed: not looked yet)';
    if (this.#rate > 0) return `at most ${this.#rate} messages/s while live lanes run${which}`;
    return this.#groups.length > 0
      ? `no rate limit (live lanes run${which}, but WORKER_REPLAY_LIVE_MAX_RATE is 0)`
      : 'no rate limit (no live lane has members)';
  }

  /** Looks once, then every interval (an explicit rate never looks). */
  async start(): Promise<void> {
    if (!this.automatic) return;
    await this.check();
    const every = this.#o.intervalMs ?? 5000;
    this.#timer = setInterval(() => void this.check(true), every);
    this.#timer.unref();
  }

  /** Looks at the live worker's groups now and sets the rate from what it finds. */
  async check(report = false): Promise<void> {
    if (!this.automatic || this.#checking) return;
    this.#checking = true;
    try {
      const groups = await this.#o.live();
      const rate = groups.length > 0 ? this.#o.liveRate : 0;
      const changed = rate !== this.#rate;
      this.#groups = groups;
      this.#rate = rate;
      if (changed && report) this.#o.onChange?.(`budget now ${this.describe()}`);
    } catch (err) {
      this.#o.onError?.(err);
    } finally {
      this.#checking = false;
    }
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
