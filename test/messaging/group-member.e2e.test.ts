// The lane's group membership on the real broker (KIP-848): when a second member joins, the first one
// loses only the partitions that move and keeps fetching the others from where it was; records of a
// partition come in offset order from the committed offset; a member that leaves hands its partitions
// over at once.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KafkaClient } from '../../src/messaging/kafka/client.ts';
import type { TopicPartition } from '../../src/messaging/kafka/fetcher.ts';
import { createGroupMember, type GroupMember } from '../../src/messaging/kafka/group-member.ts';
import { brokers, testKafka, uniquePrefix } from '../support/kafka.ts';

const kafka = testKafka();
const prefix = uniquePrefix();
const topic = `${prefix}lane`;
const groupId = `${prefix}group`;
const client = new KafkaClient('group-member-test', { brokers: brokers() });

interface Seen {
  member: GroupMember;
  assigned: Set<number>;
  removedEver: number[];
  offsets: Map<number, bigint[]>;
}

function member(name: string): Seen {
  const seen: Seen = { assigned: new Set(), removedEver: [], offsets: new Map() } as unknown as Seen;
  seen.member = createGroupMember({
    client,
    groupId,
    topics: [topic],
    name,
    reset: 'earliest',
    maxBytesPerPartition: 1_048_576,
    stallTimeoutMs: 30_000,
    hooks: {
      onRecords: (_t, partition, records) => {
        const list = seen.offsets.get(partition) ?? [];
        for (const r of records) list.push(r.offset);
        seen.offsets.set(partition, list);
      },
      onAssignment: (added: TopicPartition[], removed: TopicPartition[]) => {
        for (const p of added) seen.assigned.add(p.partition);
        for (const p of removed) {
          seen.assigned.delete(p.partition);
          seen.removedEver.push(p.partition);
        }
      },
      onMembership: () => undefined,
      onFatal: (err) => {
        throw err;
      },
      onError: () => undefined,
    },
  });
  return seen;
}

async function until(what: string, check: () => boolean, ms = 40_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const producer = kafka.producer();
const produce = async (perPartition: number) => {
  const messages = [];
  for (let p = 0; p < 4; p++)
    for (let i = 0; i < perPartition; i++) messages.push({ partition: p, value: `${p}/${i}` });
  await producer.send({ topic, messages });
};

beforeAll(async () => {
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: 4 }], waitForLeaders: true });
  await admin.disconnect();
  await producer.connect();
});
afterAll(async () => {
  await producer.disconnect();
});

describe('a lane group member (KIP-848)', () => {
  it('keeps its other partitions flowing when a member joins, and hands over at once when it leaves', async () => {
    await produce(5);
    const a = member('a');
    await a.member.start();
    await until('a to own all 4 partitions', () => a.assigned.size === 4);
    await until('a to fetch every record', () => [0, 1, 2, 3].every((p) => a.offsets.get(p)?.length === 5));
    // Offsets of each partition arrive in order, from the start (no committed offset yet).
    for (const p of [0, 1, 2, 3]) expect(a.offsets.get(p)).toEqual([0n, 1n, 2n, 3n, 4n]);
    await a.member.commit([0, 1, 2, 3].map((partition) => ({ topic, partition, offset: '5' })));

    const b = member('b');
    await b.member.start();
    await until('the partitions to be split', () => a.assigned.size === 2 && b.assigned.size === 2);
    // Only the moved partitions were revoked from a; the kept ones were never removed.
    const kept = [...a.assigned];
    expect(a.removedEver.sort()).toEqual([0, 1, 2, 3].filter((p) => !kept.includes(p)).sort());
    // b starts its partitions from the committed offset: it fetches nothing old.
    await produce(2);
    await until('both to fetch the new records', () =>
      [0, 1, 2, 3].every((p) => (a.assigned.has(p) ? a : b).offsets.get(p)?.includes(6n)),
    );
    for (const p of b.assigned) expect(b.offsets.get(p)).toEqual([5n, 6n]);
    // a kept fetching its partitions from where it was, with no rewind.
    for (const p of kept) expect(a.offsets.get(p)).toEqual([0n, 1n, 2n, 3n, 4n, 5n, 6n]);

    // a leaves: b gets everything without waiting out a session timeout.
    const left = Date.now();
    await a.member.close();
    await until('b to own all 4 partitions', () => b.assigned.size === 4, 8_000);
    expect(Date.now() - left).toBeLessThan(8_000);
    await b.member.close();
  }, 90_000);
});
