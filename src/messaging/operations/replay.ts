// Replay for backfill: which offsets of which partitions to re-apply, and how far along it is.
// The end of each partition is fixed when the replay starts (or by --to), so a replay always finishes
// even while producers keep writing.
import type { KafkaAdmin as Admin } from '../kafka/admin.ts';
import type { PatternRequest } from '../../contracts/requests.ts';
import {
  isWriteOperation,
  OPERATIONS,
  REPLAY_PHASES,
  TOPIC_SPECS,
  type ReplayPhase,
} from '../../contracts/operations.ts';
import { REQUEST_TOPICS, type RequestTopic, type TopicNames } from '../../contracts/topics.ts';
import { outcomeLabel, type Lifecycle, type OutcomeLabel } from '../engine/lifecycle.ts';
import { planRanges, type PartitionRange } from '../kafka/operator-io.ts';

/** The replay phases of a topic's operations (operations.ts), in replay order. */
function phasesOf(topic: RequestTopic): ReplayPhase[] {
  return REPLAY_PHASES.filter((phase) =>
    TOPIC_SPECS[topic].operations.some((o) => OPERATIONS[o].replay === phase),
  );
}
const firstPhase = (topic: RequestTopic) => REPLAY_PHASES.indexOf(phasesOf(topic)[0] ?? 'reads');

/** Writes first, so that usage finds its patterns: the order topics are replayed in. */
export const REPLAY_ORDER: RequestTopic[] = [...REQUEST_TOPICS].sort((a, b) => firstPhase(a) - firstPhase(b));

/** Topics with something to rebuild; reads have no effect and are replayed only when asked for. */
export const DEFAULT_REPLAY_TOPICS: RequestTopic[] = REPLAY_ORDER.filter((t) =>
  TOPIC_SPECS[t].operations.some((o) => isWriteOperation(o)),
);

export interface TopicPlan {
  logical: RequestTopic;
  topic: string;
  /** Per partition, the first offset to apply and the exclusive end. */
  partitions: Omit<PartitionRange, 'topic'>[];
  total: number;
}

export type ReplayFrom = 'earliest' | Date;

/** One pass over one topic's ranges, applying the requests `select` admits. */
export interface ReplayPass {
  label: string;
  plan: TopicPlan;
  select?: (request: PatternRequest | undefined) => boolean;
}

/**
 * One pass per replay phase and topic, phases in order (operations.ts): patterns first, then usage and
 * relationships, then deletes of patterns (live, usage of a pattern often comes before its delete, and
 * replaying the delete first would turn that usage into a dead letter), then analytics and reads. A
 * message that cannot be decoded goes with its topic's first pass (to be dead-lettered again).
 */
export function replayPhases(plans: TopicPlan[]): ReplayPass[] {
  const passes: ReplayPass[] = [];
  for (const phase of REPLAY_PHASES) {
    for (const plan of plans) {
      const phases = phasesOf(plan.logical);
      if (!phases.includes(phase)) continue;
      const first = phases[0] === phase;
      const pass: ReplayPass = { label: first ? plan.topic : `${plan.topic} ${phase}`, plan };
      if (phases.length > 1) {
        pass.select = (r) => (r ? OPERATIONS[r.operation].replay === phase : first);
      }
      passes.push(pass);
    }
  }
  return passes;
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
    const ranges = await planRanges(admin, [topic], {
      since: from === 'earliest' ? undefined : from,
      until: to,
    });
    const partitions = ranges.map(({ partition, start, end, heldBack }) => ({
      partition,
      start,
      end,
      ...(heldBack ? { heldBack } : {}),
    }));
    const total = partitions.reduce((sum, p) => sum + Number(p.end - p.start), 0);
    plans.push({ logical, topic, partitions, total });
  }
  return plans;
}

/** The partitions whose plan stops short of their end at a transaction still open, and what it holds back. */
export function heldBackRanges(
  plans: readonly TopicPlan[],
): { topic: string; partition: number; from: bigint; records: bigint }[] {
  return plans.flatMap((plan) =>
    plan.partitions.flatMap(({ partition, heldBack }) =>
      heldBack ? [{ topic: plan.topic, partition, ...heldBack }] : [],
    ),
  );
}

/** A line per partition whose plan stops short of its end at a transaction still open: what is left out
 * and what to do. */
export function heldBackNotes(plans: readonly TopicPlan[]): string[] {
  return heldBackRanges(plans).map(
    ({ topic, partition, from, records }) =>
      `${topic}/${partition}: ${records} records from offset ${from} are ` +
      'behind a transaction a producer opened and has not ended, so not readable yet; they are not ' +
      'in this replay. Replay again once the transaction ends (the broker aborts it after at most ' +
      'transaction.max.timeout.ms): what this replay applied is skipped then',
  );
}

/** Where a new consumer group starts on each partition (the reader seeks there; nothing is committed for the group). */
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

const COUNTED_AS = {
  success: 'applied',
  duplicate: 'alreadyApplied',
  dead_letter: 'deadLettered',
  error: 'failed',
} as const satisfies Record<OutcomeLabel, keyof ReplayCounts>;

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
      this.counts[COUNTED_AS[outcomeLabel(outcome.result, outcome.deadLettered)]] += 1;
    });
  }

  get complete(): boolean {
    for (const [partition, end] of this.#end) {
      if ((this.#position.get(partition) ?? 0n) < end) return false;
    }
    return true;
  }
}
