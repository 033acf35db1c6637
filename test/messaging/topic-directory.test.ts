// The topic directory answers which reply topics exist without a request, or a cache entry, per name a
// producer chose: a flood of distinct names once ran the worker out of memory.
import { describe, expect, it } from 'vitest';
import { KafkaAdminError, type KafkaAdmin } from '../../src/messaging/kafka/admin.ts';
import { TopicDirectory } from '../../src/messaging/kafka/topic-directory.ts';

function fakeAdmin(topics: Map<string, number>) {
  const calls = { listTopics: 0, metadata: [] as string[] };
  const admin = {
    listTopics: () => {
      calls.listTopics++;
      return Promise.resolve([...topics.keys()]);
    },
    fetchTopicMetadata: ({ topics: [name = ''] }: { topics: string[] }) => {
      calls.metadata.push(name);
      const partitions = topics.get(name);
      if (partitions === undefined) {
        return Promise.reject(
          new KafkaAdminError(`no metadata for topic ${name}`, 'UNKNOWN_TOPIC_OR_PARTITION'),
        );
      }
      return Promise.resolve({
        topics: [
          { name, partitions: Array.from({ length: partitions }, (_, partitionId) => ({ partitionId })) },
        ],
      });
    },
  };
  return { admin: admin as unknown as KafkaAdmin, calls };
}

/** A clock whose sleeps pass at once and move it on. */
function fakeClock() {
  const clock = {
    time: 0,
    now: () => clock.time,
    sleep: (ms: number) => {
      clock.time += Math.max(0, ms);
      return Promise.resolve();
    },
  };
  return clock;
}

describe('TopicDirectory', () => {
  it('answers distinct unknown names from one listing a second, and keeps nothing of them', async () => {
    const { admin, calls } = fakeAdmin(new Map([['p.replies', 3]]));
    const clock = fakeClock();
    const directory = new TopicDirectory(admin, clock);
    const names = Array.from({ length: 10_000 }, (_, i) => `p.reply-${i}`);
    const answers = await Promise.all(names.map((n) => directory.partitions(n, 0)));
    expect(answers.every((a) => a === undefined)).toBe(true);
    for (const n of names.slice(0, 100)) expect(await directory.partitions(n, 0)).toBeUndefined();
    expect(calls.listTopics).toBe(1);
    expect(calls.metadata).toEqual([]);
    expect(directory.size).toBe(0);
    // Names received after that listing began wait for the next, a second after it, and share it.
    clock.time = 400;
    const later = await Promise.all(names.slice(0, 1_000).map((n) => directory.partitions(n, 400)));
    expect(later.every((a) => a === undefined)).toBe(true);
    expect(calls.listTopics).toBe(2);
    expect(clock.time).toBe(1_001);
  });

  it('never refuses a reply topic created before its request came in', async () => {
    const topics = new Map([['p.replies', 3]]);
    const { admin, calls } = fakeAdmin(topics);
    const clock = fakeClock();
    const directory = new TopicDirectory(admin, clock);
    expect(await directory.partitions('p.gone', 0)).toBeUndefined();
    // The client creates its topic and sends its request within the second after that listing.
    clock.time = 300;
    topics.set('p.new', 2);
    clock.time = 350;
    expect(await directory.partitions('p.new', 350)).toBe(2);
    expect(calls.listTopics).toBe(2);
    // A message received before the newest listing began is answered from it.
    expect(await directory.partitions('p.gone', 900)).toBeUndefined();
    expect(calls.listTopics).toBe(2);
  });

  it('a name received while a listing runs waits for the one after it', async () => {
    const topics = new Map([['p.replies', 3]]);
    const { admin, calls } = fakeAdmin(topics);
    const clock = fakeClock();
    const directory = new TopicDirectory(admin, clock);
    const first = directory.partitions('p.a', 0);
    await new Promise(setImmediate);
    clock.time = 10;
    topics.set('p.a', 1);
    expect(await directory.partitions('p.a', 10)).toBe(1);
    expect(await first).toBeUndefined();
    expect(calls.listTopics).toBe(2);
    expect(clock.time).toBe(1_001);
  });

  it('answers a name received while a listing runs from that listing when it shows the topic', async () => {
    // A worker just started: its first messages start a listing, and the messages behind them, received
    // while it runs, must not wait a second for the next one to find a topic that exists.
    const { admin, calls } = fakeAdmin(new Map([['p.replies', 3]]));
    const clock = fakeClock();
    const directory = new TopicDirectory(admin, clock);
    const first = directory.partitions('p.replies', 0);
    clock.time = 5;
    const behind = Array.from({ length: 50 }, () => directory.partitions('p.replies', 5));
    expect(await Promise.all([first, ...behind])).toEqual(Array(51).fill(3));
    expect(calls.listTopics).toBe(1);
    expect(clock.time).toBe(5);
  });

  it('looks up an existing topic once, and forgets one deleted', async () => {
    const topics = new Map([['p.replies', 3]]);
    const { admin, calls } = fakeAdmin(topics);
    const clock = fakeClock();
    const directory = new TopicDirectory(admin, clock);
    expect(await Promise.all([directory.partitions('p.replies'), directory.partitions('p.replies')])).toEqual(
      [3, 3],
    );
    expect(calls.metadata).toEqual(['p.replies']);
    clock.time = 5;
    topics.set('p.new', 2);
    expect(await directory.partitions('p.new')).toBe(2);
    expect(directory.size).toBe(2);
    // A topic gone from the listing leaves the cache once its entry is old.
    topics.delete('p.new');
    clock.time += 60_000;
    expect(await directory.partitions('p.new')).toBeUndefined();
    expect(directory.size).toBe(1);
  });
  it('refuses a partition past the cached count only by a lookup begun after the request was written', async () => {
    // Partitions added to a reply topic were refused for up to a minute (the cache's life): 6 of 8 writes
    // asking for a new partition were dead-lettered in the audit's run.
    const topics = new Map([['p.replies', 12]]);
    const { admin, calls } = fakeAdmin(topics);
    const clock = fakeClock();
    const directory = new TopicDirectory(admin, clock);
    expect(await directory.partitions('p.replies', 0, 3)).toBe(12);
    expect(calls.metadata).toEqual(['p.replies']);
    // The operator adds partitions; a client asks for partition 20 at once.
    clock.time = 100;
    topics.set('p.replies', 24);
    expect(await directory.partitions('p.replies', 100, 20)).toBe(24);
    // A lookup a second after the one before, then answered from the cache.
    expect(calls.metadata).toEqual(['p.replies', 'p.replies']);
    expect(clock.time).toBe(1_001);
    expect(await directory.partitions('p.replies', 1_500, 20)).toBe(24);
    // Partitions that do not exist: refused by that lookup for what was written before it began, and a
    // flood written after it costs one lookup a second.
    expect(await directory.partitions('p.replies', 900, 99)).toBe(24);
    const flood = await Promise.all(
      Array.from({ length: 1_000 }, () => directory.partitions('p.replies', 1_500, 99)),
    );
    expect(flood.every((n) => n === 24)).toBe(true);
    expect(calls.metadata).toHaveLength(3);
    expect(clock.time).toBe(2_001);
  });
});
