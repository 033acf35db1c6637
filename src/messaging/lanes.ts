// Lanes: the request topics split into kinds of work that cannot starve each other. Each lane has its
// own consumer group (`<KAFKA_GROUP_ID>.<lane>`), its own producer and its own concurrency budget, so a
// burst of slow searches never takes the slots that usage ingestion needs, and a member joining or
// leaving one lane never moves the partitions of another.
import type { RequestTopic } from '../contracts/topics.ts';

export const LANES = {
  writes: { topics: ['pattern.insert', 'pattern.usage'], concurrencyVariable: 'WORKER_WRITES_CONCURRENCY' },
  reads: { topics: ['pattern.search.request'], concurrencyVariable: 'WORKER_READS_CONCURRENCY' },
  analytics: { topics: ['pattern.analytics.compute'], concurrencyVariable: 'WORKER_ANALYTICS_CONCURRENCY' },
} as const satisfies Record<string, { topics: readonly RequestTopic[]; concurrencyVariable: string }>;

export type LaneName = keyof typeof LANES;
export const LANE_NAMES = Object.keys(LANES) as LaneName[];

const LANE_OF = new Map<RequestTopic, LaneName>(
  LANE_NAMES.flatMap((lane) => LANES[lane].topics.map((t) => [t, lane] as const)),
);

export function laneOf(topic: RequestTopic): LaneName {
  return LANE_OF.get(topic) as LaneName;
}

/** A lane's consumer group: the worker's group name with the lane after a dot. */
export function laneGroupId(baseGroupId: string, lane: string): string {
  return `${baseGroupId}.${lane}`;
}

/** Compile-time check that every request topic belongs to a lane. */
type Covered = (typeof LANES)[LaneName]['topics'][number];
const everyTopicHasALane: Record<RequestTopic, true> = {
  'pattern.insert': true,
  'pattern.usage': true,
  'pattern.search.request': true,
  'pattern.analytics.compute': true,
} satisfies Record<Covered, true>;
void everyTopicHasALane;
