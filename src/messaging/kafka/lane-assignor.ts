// The consumer group's partition assignor: every member subscribes to every request topic and names its
// lane in the protocol's user data; a topic's partitions go only to the members of its lane, spread
// evenly. A topic whose lane has no member yet (a worker's lanes join one by one) waits for it: handing
// it to another lane for one generation would change that member's topics and trip a kafkajs race.
// Members that still speak only kafkajs's RoundRobinAssigner (a rolling upgrade) make the group pick
// round robin; each lane then reads what it gets until the last old member is gone.
import { AssignerProtocol, PartitionAssigners, type PartitionAssigner } from 'kafkajs';

export const LANE_PROTOCOL = 'PatternWorkerLanes';

export interface LaneMember {
  memberId: string;
  lane: string;
}

export type LaneAssignment = Map<string, Record<string, number[]>>;

/** Pure: partitions of each topic to the members of the topic's lane, round robin over sorted members;
 * topics of no lane go to every member. */
export function assignByLane(
  members: readonly LaneMember[],
  partitions: readonly { topic: string; partition: number }[],
  laneOfTopic: (topic: string) => string | undefined,
): LaneAssignment {
  const result: LaneAssignment = new Map(members.map((m) => [m.memberId, {}]));
  const everyone = members.map((m) => m.memberId).sort();
  const byLane = new Map<string, string[]>();
  for (const m of members) byLane.set(m.lane, [...(byLane.get(m.lane) ?? []), m.memberId]);
  for (const ids of byLane.values()) ids.sort();
  const groups = new Map<string, { topic: string; partition: number }[]>();
  for (const p of partitions) {
    const group = laneOfTopic(p.topic) ?? '';
    groups.set(group, [...(groups.get(group) ?? []), p]);
  }
  for (const [lane, list] of groups) {
    const ids = lane === '' ? everyone : (byLane.get(lane) ?? []);
    if (ids.length === 0) continue;
    list
      .slice()
      .sort((a, b) => (a.topic === b.topic ? a.partition - b.partition : a.topic < b.topic ? -1 : 1))
      .forEach((p, i) => {
        const assignment = result.get(ids[i % ids.length] as string) as Record<string, number[]>;
        (assignment[p.topic] ??= []).push(p.partition);
      });
  }
  return result;
}

/** The kafkajs assigner for a member of `lane`; round robin stays listed for mixed-version groups. */
export function laneAssigners(
  lane: string,
  laneOfTopic: (topic: string) => string | undefined,
): PartitionAssigner[] {
  const lanes: PartitionAssigner = ({ cluster }) => ({
    name: LANE_PROTOCOL,
    version: 0,
    assign({ members, topics }) {
      const decoded = members.map((m) => ({
        memberId: m.memberId,
        lane: AssignerProtocol.MemberMetadata.decode(m.memberMetadata)?.userData?.toString('utf8') ?? '',
      }));
      const partitions = topics.flatMap((topic) =>
        cluster.findTopicPartitionMetadata(topic).map((p) => ({ topic, partition: p.partitionId })),
      );
      const assignment = assignByLane(decoded, partitions, laneOfTopic);
      const laneOfMember = new Map(decoded.map((m) => [m.memberId, m.lane]));
      return Promise.resolve(
        [...assignment].map(([memberId, topicPartitions]) => ({
          memberId,
          memberAssignment: AssignerProtocol.MemberAssignment.encode({
            version: 0,
            assignment: topicPartitions,
            userData: Buffer.from(laneOfMember.get(memberId) ?? '', 'utf8'),
          }),
        })),
      );
    },
    protocol({ topics }) {
      return {
        name: LANE_PROTOCOL,
        metadata: AssignerProtocol.MemberMetadata.encode({
          version: 0,
          topics,
          userData: Buffer.from(lane, 'utf8'),
        }),
      };
    },
  });
  return [lanes, PartitionAssigners.roundRobin];
}

/** A group member as `patterns status` shows it: the lane it named and the partitions it holds. */
export function describeLaneMember(
  memberMetadata: Buffer,
  memberAssignment: Buffer,
): { lane: string; assignment: Record<string, number[]> } {
  const metadata = memberMetadata.length > 0 ? AssignerProtocol.MemberMetadata.decode(memberMetadata) : null;
  const assigned =
    memberAssignment.length > 0 ? AssignerProtocol.MemberAssignment.decode(memberAssignment) : null;
  return {
    lane: metadata?.userData?.toString('utf8') || '(none)',
    assignment: assigned?.assignment ?? {},
  };
}
