// The upgrade from one consumer group shared by every lane to a group per lane. Before a lane's group
// has committed anything, the offsets the old group committed on the lane's topics are copied to it once,
// so the upgraded worker goes on where the old one stopped instead of reading its topics again.
//
// Several replicas may start at once: each copies the same offsets while the new group is empty, and the
// broker refuses the copy once a member has joined (kafkajs's setOffsets checks that the group is empty,
// and an offset commit without a generation is refused for a group with members). So a copy can never
// move a running lane back over what it has committed since.
import { AssignerProtocol } from 'kafkajs';
import type { Logger } from '../../telemetry/logger.ts';
import type { KafkaAdmin } from './client.ts';

export type MigrationOutcome =
  | { kind: 'copied'; partitions: number }
  /** The new group has committed offsets already (migrated before, or started fresh). */
  | { kind: 'already' }
  /** The old group has committed nothing on these topics: nothing to carry over. */
  | { kind: 'nothing' }
  /** Another replica's lane joined the new group first; it had copied the same offsets. */
  | { kind: 'raced'; reason: string };

type Committed = { topic: string; partition: number; offset: string }[];

async function committed(admin: KafkaAdmin, groupId: string, topics: string[]): Promise<Committed> {
  const offsets = await admin.fetchOffsets({ groupId, topics });
  return offsets.flatMap((t) =>
    t.partitions
      .filter((p) => Number(p.offset) >= 0)
      .map((p) => ({ topic: t.topic, partition: p.partition, offset: p.offset })),
  );
}

export async function migrateGroupOffsets(
  admin: KafkaAdmin,
  o: { from: string; to: string; topics: string[]; logger: Logger },
): Promise<MigrationOutcome> {
  if (o.from === o.to || o.topics.length === 0) return { kind: 'nothing' };
  if ((await committed(admin, o.to, o.topics)).length > 0) return { kind: 'already' };
  const old = await committed(admin, o.from, o.topics);
  if (old.length === 0) return { kind: 'nothing' };
  try {
    for (const topic of o.topics) {
      const partitions = old.filter((c) => c.topic === topic);
      if (partitions.length === 0) continue;
      await admin.setOffsets({
        groupId: o.to,
        topic,
        partitions: partitions.map(({ partition, offset }) => ({ partition, offset })),
      });
    }
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    o.logger.info({ from: o.from, to: o.to, reason }, 'offsets not copied: the new group is in use already');
    return { kind: 'raced', reason };
  }
  o.logger.info(
    { from: o.from, to: o.to, partitions: old.length },
    'copied committed offsets from the worker group of earlier versions to the lane group',
  );
  return { kind: 'copied', partitions: old.length };
}

export interface GroupMember {
  memberId: string;
  clientId: string;
  host: string;
  partitions: Record<string, number[]>;
}

/** A group as the broker describes it: its state and each member's partitions. */
export async function describeGroup(
  admin: KafkaAdmin,
  groupId: string,
): Promise<{ state: string; members: GroupMember[] }> {
  const [described] = (await admin.describeGroups([groupId])).groups;
  const members = (described?.members ?? []).map((m) => {
    const assigned =
      m.memberAssignment.length > 0 ? AssignerProtocol.MemberAssignment.decode(m.memberAssignment) : null;
    return {
      memberId: m.memberId,
      clientId: m.clientId,
      host: m.clientHost,
      partitions: assigned?.assignment ?? {},
    };
  });
  return { state: described?.state ?? 'Unknown', members };
}
