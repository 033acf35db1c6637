// The upgrade from one consumer group shared by every lane to a group per lane. Before a lane's group
// has committed anything, the offsets the old group committed on the lane's topics are copied to it once,
// so the upgraded worker goes on where the old one stopped instead of reading its topics again.
//
// Several replicas may start at once: each copies the same offsets while the new group is empty, and the
// copy is refused once a member has joined (alterGroupOffsets checks that the group has no members, and
// the broker refuses an offset commit without a generation or member epoch for a group with members). So
// a copy can never move a running lane back over what it has committed since.
import type { Logger } from '../../telemetry/logger.ts';
import type { DescribedMember, KafkaAdmin } from './admin.ts';

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
    // One commit for every topic: a replica that sees the new group's first commit sees all of it.
    await admin.alterGroupOffsets({
      groupId: o.to,
      topics: o.topics.map((topic) => ({
        topic,
        partitions: old
          .filter((c) => c.topic === topic)
          .map(({ partition, offset }) => ({ partition, offset })),
      })),
    });
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

export type GroupMember = DescribedMember;

/** A group as the broker describes it: its state and each member's partitions, whichever group protocol
 * (classic or KIP-848 consumer) it uses. A group that does not exist is Dead, without members. */
export async function describeGroup(
  admin: KafkaAdmin,
  groupId: string,
): Promise<{ state: string; members: GroupMember[] }> {
  const [described] = await admin.describeGroups([groupId]);
  return { state: described?.state ?? 'Unknown', members: described?.members ?? [] };
}
