// Replay for backfill: which offsets of which partitions to re-apply, and how far along it is.
// The end of each partition is fixed when the replay starts (or by --to), so a replay always finishes
// even while producers keep writing.
import type { Admin } from 'kafkajs';
import type { PatternRequest } from '../contracts/requests.ts';
import type { RequestTopic, TopicNames } from '../contracts/topics.ts';
import type { Lifecycle } from './lifecycle.ts';
import { offsetsAt } from './operator-io.ts';

/** Writes first, so that usage finds its patterns: the order topics are replayed in. */
export const REPLAY_ORDER: RequestTopic[] = [
  'pattern.insert',
  'pattern.usage',
  'pattern.analytics.compute',
  'pattern.search.request',
];

/** Reads have no effect to rebuild; they are replayed only when asked for. */
export const DEFAULT_REPLAY_TOPICS: RequestTopic[] = [
  'pattern.insert',
  'pattern.usage',
  'pattern.analytics.compute',
];

export interface PartitionRange {
  partition: number;
  /** First offset to apply. */
  start: bigint;
  /** Exclusive end. */
  end: bigint;
}

export interface TopicPlan {
  logical: RequestTopic;
  topic: string;
  partitions: PartitionRange[];
  total: number;
}

export type ReplayFrom = 'earliest' | Date;

/** One pass over one topic's ranges, applying the requests `select` admits. */
export interface ReplayPhase {
  label: string;
  plan: TopicPlan;
  select?: (request: PatternRequest | undefined) => boolean;
}

const isDelete = (request: PatternRequest | undefined) => request?.operation === 'delete';

/**
 * Topics one after another, writes of patterns first and their deletes held back until usage and
 * relationships are in: live, usage of a pattern often comes before the pattern's delete, and replaying
 * the delete first would turn that usage into a dead letter. Analytics come after the deletes, as a
 * computation is normally requested after the writes it summarises.
 */
export function replayPhases(plans: TopicPlan[]): ReplayPhase[] {
  const phases: ReplayPhase[] = [];
  for (const plan of plans) {
    if (plan.logical === 'pattern.insert') {
      phases.push({ label: plan.topic, plan, select: (r) => !isDelete(r) });
    } else if (plan.logical === 'pattern.usage') {
      phases.push({ label: plan.topic, plan });
    }
  }
  for (const plan of plans) {
    if (plan.logical === 'pattern.insert') {
      phases.push({ label: `${plan.topic} deletes`, plan, select: isDelete });
    } else if (plan.logical !== 'pattern.usage') {
      phases.push({ label: plan.topic, plan });
    }
  }
  return phases;
}

export async function planReplay(
  admin: Admin,
  names: TopicNames,
  topics: RequestTopic[],
  from: ReplayFrom,
  to?: Date,
): Promise<TopicPlan[]> {
  const ordered = REPLAY_ORDER.filter((t) => topics.includes(t));
  const plans: TopicPlan[] = [];
  for (const logical of ordered) {
    const topic = names.request(logical);
    const offsets = await admin.fetchTopicOffsets(topic);
    const high = new Map(offsets.map((o) => [o.partition, BigInt(o.high)]));
    const low = new Map(offsets.map((o) => [o.partition, BigInt(o.low)]));
    const starts = from === 'earliest' ? low : await offsetsAt(admin, topic, from, high);
    const ends = to ? await offsetsAt(admin, topic, to, high) : high;
    const partitions = offsets
      .map(({ partition }) => {
        const start = [starts.get(partition) ?? 0n, low.get(partition) ?? 0n].reduce((a, b) =>
          a > b ? a : b,
        );
        const end = ends.get(partition) ?? start;
        return { partition, start, end: end > start ? end : start };
      })
      .sort((a, b) => a.partition - b.partition);
    const total = partitions.reduce((sum, p) => sum + Number(p.end - p.start), 0);
    plans.push({ logical, topic, partitions, total });
  }
  return plans;
}

/** Where a new consumer group starts on each partition (consumer.seek; admin.setOffsets joins the group). */
export function startPositions(plan: TopicPlan): { topic: string; partition: number; offset: string }[] {
  return plan.partitions.map((p) => ({
    topic: plan.topic,
    partition: p.partition,
    offset: p.start.toString(),
  }));
}

export interface ReplayCounts {
  applied: number;
  alreadyApplied: number;
  deadLettered: number;
  /** Failed with an error result but not dead-lettered (reads of something missing, say). */
  failed: number;
}

/** Counts outcomes and tracks, per partition, how far everything is done (effects and results). */
export class ReplayTracker {
  readonly counts: ReplayCounts = { applied: 0, alreadyApplied: 0, deadLettered: 0, failed: 0 };
  readonly #plan: TopicPlan;
  readonly #position = new Map<number, bigint>();
  readonly #end = new Map<number, bigint>();
  done = 0;

  constructor(plan: TopicPlan) {
    this.#plan = plan;
    for (const p of plan.partitions) {
      this.#position.set(p.partition, p.start);
      this.#end.set(p.partition, p.end);
    }
  }

  get plan(): TopicPlan {
    return this.#plan;
  }

  endOffset = (topic: string, partition: number): bigint | undefined =>
    topic === this.#plan.topic ? this.#end.get(partition) : undefined;

  /** Subscribes to the engine's events of this pass. */
  attach(lifecycle: Lifecycle): void {
    lifecycle.on('unit.done', ({ unit }) => {
      if (unit.topic === this.#plan.topic) this.done += unit.messages.length;
    });
    lifecycle.on('partition.progress', ({ topic, partition, position }) => {
      if (topic !== this.#plan.topic) return;
      if (position > (this.#position.get(partition) ?? 0n)) this.#position.set(partition, position);
    });
    lifecycle.on('message.outcome', ({ outcome }) => {
      const { result, deadLettered } = outcome;
      if (deadLettered) this.counts.deadLettered += 1;
      else if (result.metadata.duplicate) this.counts.alreadyApplied += 1;
      else if (result.success) this.counts.applied += 1;
      else this.counts.failed += 1;
    });
  }

  get complete(): boolean {
    for (const [partition, end] of this.#end) {
      if ((this.#position.get(partition) ?? 0n) < end) return false;
    }
    return true;
  }
}
