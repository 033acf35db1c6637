// What `patterns status` reports, gathered from the broker alone: each lane's consumer group and its
// members, committed and end offsets with the lag per partition, the topics and their partitions, and the
// dead letters of the last hour per code. Nothing here joins or moves the worker's group.
import type { KafkaClient as Kafka } from '../kafka/client.ts';
import type { TopicNames, TopicRole } from '../../contracts/topics.ts';
import { countCode, decodeDeadLetter, sortedCounts } from './dead-letters.ts';
import { describeGroup } from '../kafka/groups.ts';
import { LANE_NAMES, LANES, laneGroupId } from '../lanes.ts';
import { planRanges, readRanges } from '../kafka/operator-io.ts';

export interface StatusMember {
  memberId: string;
  clientId: string;
  host: string;
  lane: string;
  partitions: Record<string, number[]>;
}

export interface StatusTopic {
  name: string;
  role: TopicRole | 'reply';
  exists: boolean;
  partitions: number | null;
  /** Set when the topic's partition count is not what was expected. */
  expected?: number;
}

export interface PartitionLag {
  topic: string;
  partition: number;
  /** Null when the group has committed nothing there yet (it starts at the earliest offset). */
  committed: string | null;
  end: string;
  lag: number;
  /** A transaction a producer opened at `at` and has not ended holds `records` back from every reader. */
  held?: { at: string; records: number };
  /** Offsets from the committed one up to the log start were deleted before the workers read them. */
  deleted?: { from: string; to: string; records: number };
}

export interface LaneGroup {
  lane: string;
  id: string;
  state: string;
  members: StatusMember[];
}

export interface WorkerStatus {
  at: string;
  /** One consumer group per lane (`<KAFKA_GROUP_ID>.<lane>`). */
  groups: LaneGroup[];
  topics: StatusTopic[];
  lag: PartitionLag[];
  totalLag: number;
  lagByTopic: Record<string, number>;
  deadLettersLastHour: { total: number; byCode: Record<string, number> };
  /** Why the exit code is non-zero; empty when all is well. */
  problems: string[];
}

export interface StatusOptions {
  kafka: Kafka;
  names: TopicNames;
  groupId: string;
  /** Partitions every request topic should have; default: whatever they have, as long as they agree. */
  requestPartitions?: number | undefined;
  clientId: string;
}

export async function gatherStatus(o: StatusOptions): Promise<WorkerStatus> {
  const admin = o.kafka.admin();
  await admin.connect();
  const problems: string[] = [];
  try {
    const existing = new Set(await admin.listTopics());
    const wanted = [
      ...o.names.all().map((t) => ({ name: t.name, role: t.role })),
      { name: o.names.reply(), role: 'reply' as const },
    ];
    const present = wanted.filter((t) => existing.has(t.name)).map((t) => t.name);
    const metadata =
      present.length > 0 ? await admin.fetchTopicMetadata({ topics: present }) : { topics: [] };
    const partitionsOf = new Map(metadata.topics.map((t) => [t.name, t.partitions.length]));
    const idOf = new Map(metadata.topics.map((t) => [t.name, t.id]));
    const requestCounts = wanted
      .filter((t) => t.role === 'request')
      .map((t) => partitionsOf.get(t.name))
      .filter((n): n is number => n !== undefined);
    const expectedRequest = o.requestPartitions ?? Math.max(0, ...requestCounts);
    const topics: StatusTopic[] = wanted.map((t) => {
      const partitions = partitionsOf.get(t.name) ?? null;
      const topic: StatusTopic = { name: t.name, role: t.role, exists: partitions !== null, partitions };
      if (partitions === null)
        problems.push(`topic ${t.name} is missing (create it: patterns topics create)`);
      else if (t.role === 'request' && partitions !== expectedRequest) {
        topic.expected = expectedRequest;
        problems.push(`topic ${t.name} has ${partitions} partitions, expected ${expectedRequest}`);
      }
      return topic;
    });

    const groups: LaneGroup[] = [];
    const committed = new Map<string, { offset: string; topicId?: string | undefined }>();
    for (const lane of LANE_NAMES) {
      const id = laneGroupId(o.groupId, lane);
      const described = await describeGroup(admin, id);
      const members = described.members.map((m) => ({ ...m, lane }));
      groups.push({ lane, id, state: described.state, members });
      if (members.length === 0) {
        problems.push(
          `consumer group ${id} (lane ${lane}) has no members: no worker is running (is KAFKA_GROUP_ID right?)`,
        );
      }
      const topics = LANES[lane].topics.map((t) => o.names.request(t)).filter((t) => existing.has(t));
      if (topics.length === 0) continue;
      for (const t of await admin.fetchOffsets({ groupId: id, topics })) {
        for (const p of t.partitions) committed.set(`${t.topic}/${p.partition}`, p);
      }
    }
    // Workers of earlier versions read in one group named KAFKA_GROUP_ID.
    const earlier = await describeGroup(admin, o.groupId);
    if (earlier.members.length > 0) {
      problems.push(
        `consumer group ${o.groupId} of earlier worker versions still has ${earlier.members.length} ` +
          'member(s): until they stop, they and the upgraded lanes both read the request topics ' +
          '(effects are applied once; results may be published twice)',
      );
    }

    const requestTopics = o.names.requests().filter((t) => existing.has(t));
    const lag: PartitionLag[] = [];
    for (const topic of requestTopics) {
      for (const p of await admin.fetchTopicOffsets(topic)) {
        const entry = committed.get(`${topic}/${p.partition}`);
        const at = entry?.offset;
        const low = BigInt(p.low);
        const high = BigInt(p.high);
        // Committed by a worker that read a topic of this name since deleted: a worker started now reads
        // the partition from its log start (commit-tags.ts).
        const current = idOf.get(topic);
        const earlierTopic =
          entry?.topicId !== undefined && current !== undefined && entry.topicId !== current;
        const has = at !== undefined && Number(at) >= 0 && !earlierTopic;
        if (earlierTopic && at !== undefined) {
          problems.push(
            `${topic}/${p.partition}: the committed offset ${at} was committed by a worker reading a topic of ` +
              `this name since deleted (topic id ${entry.topicId}, now ${current}): a worker started now reads ` +
              `the partition from its log start, ${p.low}`,
          );
        }
        const committedAt = has ? BigInt(at) : low;
        // What is left to read starts at the log start: records below it are gone.
        const from = committedAt > low ? committedAt : low;
        const behind = high - from;
        const heldBack = high - BigInt(p.stable);
        const gone = committedAt < low ? low - committedAt : 0n;
        if (gone > 0n) {
          problems.push(
            `${topic}/${p.partition}: offsets ${committedAt} to ${low - 1n} (${gone} messages) were deleted ` +
              'before the workers read them (retention.ms or retention.bytes shorter than the backlog, or ' +
              'kafka-delete-records): they will get no result and no dead letter',
          );
        }
        if (committedAt > high) {
          problems.push(
            `${topic}/${p.partition}: the committed offset ${committedAt} is past the partition's end ${high} ` +
              '(its log was truncated, or the topic deleted and created again): a worker started now finds ' +
              "it out of range and starts the partition again from the log's start or end, as the broker " +
              'answers; if records have been written since the topic was created again, check they were read',
          );
        }
        lag.push({
          topic,
          partition: p.partition,
          committed: has ? at : null,
          end: p.high,
          lag: Number(behind > 0n ? behind : 0n),
          ...(heldBack > 0n ? { held: { at: p.stable, records: Number(heldBack) } } : {}),
          ...(gone > 0n ? { deleted: { from: String(committedAt), to: p.low, records: Number(gone) } } : {}),
        });
      }
    }
    lag.sort(
      (a, b) => requestTopics.indexOf(a.topic) - requestTopics.indexOf(b.topic) || a.partition - b.partition,
    );
    const lagByTopic: Record<string, number> = {};
    for (const l of lag) lagByTopic[l.topic] = (lagByTopic[l.topic] ?? 0) + l.lag;

    const since = new Date(Date.now() - 3_600_000);
    const dlqTopics = o.names
      .all()
      .filter((t) => t.role === 'dlq' && existing.has(t.name))
      .map((t) => t.name);
    const ranges = await planRanges(admin, dlqTopics, { since });
    // Counted as they are read: a flood of dead letters (450,000 in an hour) kept whole ran the command
    // out of memory when an operator needed it most.
    const byCode = new Map<string, number>();
    let lettersLastHour = 0;
    await readRanges(
      o.kafka,
      ranges,
      (m) => {
        lettersLastHour += 1;
        countCode(byCode, decodeDeadLetter(m).code);
      },
      { groupPrefix: `${o.clientId}-status` },
    );
    return {
      at: new Date().toISOString(),
      groups,
      topics,
      lag,
      totalLag: lag.reduce((sum, l) => sum + l.lag, 0),
      lagByTopic,
      deadLettersLastHour: { total: lettersLastHour, byCode: sortedCounts(byCode) },
      problems,
    };
  } finally {
    await admin.disconnect();
  }
}
