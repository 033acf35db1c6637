// The once-only offset copy from the single worker group of earlier versions to a lane's own group.
import { describe, expect, it } from 'vitest';
import type { KafkaAdmin } from '../../src/messaging/kafka/client.ts';
import { migrateGroupOffsets } from '../../src/messaging/kafka/groups.ts';
import { createLogger } from '../../src/telemetry/logger.ts';

const logger = createLogger('silent');

/** Committed offsets per group and topic; a group with members refuses setOffsets as kafkajs does. */
function fakeAdmin(committed: Record<string, Record<string, number[]>>, busy = new Set<string>()) {
  const sets: { groupId: string; topic: string }[] = [];
  const admin = {
    fetchOffsets: ({ groupId, topics }: { groupId: string; topics: string[] }) =>
      Promise.resolve(
        topics.map((topic) => ({
          topic,
          partitions: (committed[groupId]?.[topic] ?? [-1, -1]).map((offset, partition) => ({
            partition,
            offset: String(offset),
          })),
        })),
      ),
    setOffsets: ({
      groupId,
      topic,
      partitions,
    }: {
      groupId: string;
      topic: string;
      partitions: { partition: number; offset: string }[];
    }) => {
      if (busy.has(groupId))
        return Promise.reject(new Error('The consumer group must have no running instances'));
      sets.push({ groupId, topic });
      const offsets = ((committed[groupId] ??= {})[topic] ??= [-1, -1]);
      for (const p of partitions) offsets[p.partition] = Number(p.offset);
      return Promise.resolve();
    },
  };
  return { admin: admin as unknown as KafkaAdmin, sets, committed };
}

const o = { from: 'w', to: 'w.writes', topics: ['insert', 'usage'], logger };

describe('migrateGroupOffsets', () => {
  it('copies the old group offsets of the lane topics to a new group', async () => {
    const { admin, committed } = fakeAdmin({ w: { insert: [4, 7], usage: [-1, 2], search: [9, 9] } });
    expect(await migrateGroupOffsets(admin, o)).toEqual({ kind: 'copied', partitions: 3 });
    expect(committed['w.writes']).toEqual({ insert: [4, 7], usage: [-1, 2] });
  });

  it('leaves a group that has committed anything alone', async () => {
    const { admin, sets } = fakeAdmin({ w: { insert: [4, 7] }, 'w.writes': { usage: [1, -1] } });
    expect(await migrateGroupOffsets(admin, o)).toEqual({ kind: 'already' });
    expect(sets).toEqual([]);
  });

  it('has nothing to do when the old group committed nothing there', async () => {
    const { admin } = fakeAdmin({ w: { search: [3, 3] } });
    expect(await migrateGroupOffsets(admin, o)).toEqual({ kind: 'nothing' });
  });

  it('gives way to a replica whose lane joined the new group first', async () => {
    const { admin } = fakeAdmin({ w: { insert: [4, 7] } }, new Set(['w.writes']));
    const outcome = await migrateGroupOffsets(admin, o);
    expect(outcome.kind).toBe('raced');
    expect(outcome.kind === 'raced' && outcome.reason).toMatch(/no running instances/);
  });
});
