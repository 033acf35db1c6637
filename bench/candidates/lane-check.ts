// Checks of the candidate adapter (platformatic-lane.ts) against the real broker, one after another, each
// printed with what it saw: control batches skipped with the position past them, pause, resume, seek, a
// kept partition keeping its position across an assignment change (no rewind), a new one starting from its
// committed offset, what the broker answers to a commit of a partition no longer assigned, and how fast a
// graceful close hands partitions over.
//   node bench/candidates/lane-check.ts
import { randomBytes } from 'node:crypto';
import { Admin, Producer } from '@platformatic/kafka';
import { PlatformaticLane, type LaneRecord } from './platformatic-lane.ts';

const brokers = (process.env.KAFKA_BROKERS || '127.0.0.1:9092').split(',');
const id = `cand.check.${randomBytes(3).toString('hex')}`;
const topic = `${id}.t`;
const groupId = `${id}.g`;
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
let failures = 0;
const check = (what: string, ok: boolean, detail: unknown) => {
  if (!ok) failures += 1;
  console.log(
    `${ok ? 'ok  ' : 'FAIL'} ${what}: ${JSON.stringify(detail, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))}`,
  );
};
async function until(cond: () => boolean, ms = 15_000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (cond()) return true;
    await sleep(20);
  }
  return cond();
}

const admin = new Admin({ clientId: 'cand-check', bootstrapBrokers: brokers });
await admin.createTopics({ topics: [topic], partitions: 2, replicas: 1 });
const producer = new Producer({
  clientId: 'cand-check-p',
  bootstrapBrokers: brokers,
  autocreateTopics: false,
});
const send = (partition: number, values: string[]) =>
  producer.send({ messages: values.map((v) => ({ topic, partition, value: Buffer.from(v) })) });
// Partition 0: ten plain records. Partition 1: three records in a committed transaction (its marker is a
// control batch at offset 3), then two plain ones.
await send(
  0,
  Array.from({ length: 10 }, (_, i) => `a${i}`),
);
const tx = new Producer({
  clientId: 'cand-check-tx',
  bootstrapBrokers: brokers,
  transactionalId: `${id}.tx`,
  idempotent: true,
  autocreateTopics: false,
});
const transaction = await tx.beginTransaction();
await transaction.send({
  messages: ['t0', 't1', 't2'].map((v) => ({ topic, partition: 1, value: Buffer.from(v) })),
});
await transaction.commit();
await tx.close();
await send(1, ['b0', 'b1']);

const got = new Map<string, { offset: bigint; value: string }[]>();
const nexts = new Map<string, bigint>();
const mk = (name: string) => {
  const seen = (p: number) => `${name}/${p}`;
  return new PlatformaticLane({
    brokers,
    clientId: name,
    groupId,
    topics: [topic],
    onRecords: (_t, partition, records: LaneRecord[], next) => {
      const list = got.get(seen(partition)) ?? [];
      list.push(...records.map((r) => ({ offset: r.offset, value: r.value?.toString() ?? '' })));
      got.set(seen(partition), list);
      nexts.set(seen(partition), next);
    },
    onError: (what, err) =>
      console.log(`  (${name} ${what}: ${err instanceof Error ? err.message : String(err)})`),
  });
};

const a = mk('A');
let t0 = Date.now();
await a.start();
await until(() => a.assigned.length === 2);
const joinMs = Date.now() - t0;
await until(() => (got.get('A/0')?.length ?? 0) >= 10 && (got.get('A/1')?.length ?? 0) >= 5);
check('A joined and got both partitions', a.assigned.length === 2, { ms: joinMs });
check(
  'partition 0: offsets 0..9 once',
  got
    .get('A/0')
    ?.map((r) => Number(r.offset))
    .join() === '0,1,2,3,4,5,6,7,8,9',
  got.get('A/0')?.map((r) => Number(r.offset)),
);
// The transaction's commit marker is written after EndTxn answers, so it may land behind b0 and b1.
const p1 = got.get('A/1') ?? [];
check(
  'partition 1: the control batch is skipped and the position moves past it (next = 6, the high watermark)',
  p1.map((r) => r.value).join() === 't0,t1,t2,b0,b1' &&
    nexts.get('A/1') === 6n &&
    a.stats.controlBatches === 1,
  {
    offsets: p1.map((r) => Number(r.offset)),
    next: nexts.get('A/1'),
    controlBatches: a.stats.controlBatches,
  },
);

// Pause and resume.
a.pause(topic, 0);
await send(0, ['p0', 'p1', 'p2']);
await sleep(1_000);
check('paused partition 0 delivers nothing', got.get('A/0')?.length === 10, {
  records: got.get('A/0')?.length,
});
a.resume(topic, 0);
t0 = Date.now();
await until(() => got.get('A/0')?.length === 13);
check(
  'resumed partition 0 delivers 10..12',
  got
    .get('A/0')
    ?.slice(10)
    .map((r) => Number(r.offset))
    .join() === '10,11,12',
  {
    offsets: got
      .get('A/0')
      ?.slice(10)
      .map((r) => Number(r.offset)),
    ms: Date.now() - t0,
  },
);

// Seek.
a.seek(topic, 0, 4n);
await until(() => got.get('A/0')?.length === 22);
check(
  'seek partition 0 to 4 delivers 4..12 again',
  got
    .get('A/0')
    ?.slice(13)
    .map((r) => Number(r.offset))
    .join() === '4,5,6,7,8,9,10,11,12',
  {
    offsets: got
      .get('A/0')
      ?.slice(13)
      .map((r) => Number(r.offset)),
  },
);

// Seek while a fetch may be bringing a new record: whatever was in flight for the partition is dropped, the
// next delivery starts at the sought offset.
for (let round = 0; round < 5; round++) {
  await send(0, [`s${round}`]);
  // Records delivered before the seek (the fetch can beat the producer's ack) are not looked at.
  const mark = got.get('A/0')?.length ?? 0;
  a.seek(topic, 0, 13n);
  await until(
    () =>
      got
        .get('A/0')
        ?.slice(mark)
        .some((r) => r.value === `s${round}`) ?? false,
  );
  const first = got.get('A/0')?.slice(mark)[0];
  if (first?.offset !== 13n) {
    check('after a seek the next delivery starts at the sought offset', false, { first });
    break;
  }
}
check('after a seek the next delivery starts at the sought offset (5 rounds)', true, {
  droppedInFlight: a.stats.droppedSought,
});

// Commit 0 -> 13 and 1 -> 3 (below what A has), then a second member joins.
await a.commit([
  { topic, partition: 0, offset: '18' },
  { topic, partition: 1, offset: '3' },
]);
const b = mk('B');
t0 = Date.now();
await b.start();
await until(() => b.assigned.length === 1 && a.assigned.length === 1, 30_000);
const moveMs = Date.now() - t0;
const kept = a.assigned[0]?.partition;
const moved = b.assigned[0]?.partition;
check('B joined: one partition each', kept !== undefined && moved !== undefined && kept !== moved, {
  kept,
  moved,
  ms: moveMs,
});
const before = got.get(`A/${kept}`)?.length ?? 0;
await send(0, ['c0']);
await send(1, ['c1']);
await until(() => (got.get(`B/${moved}`)?.length ?? 0) > 0 && (got.get(`A/${kept}`)?.length ?? 0) > before);
const keptNew = got
  .get(`A/${kept}`)
  ?.slice(before)
  .map((r) => Number(r.offset));
check(`A kept partition ${kept} at its position (no rewind to its commit)`, keptNew?.length === 1, {
  delivered: keptNew,
});
const movedOffsets = got.get(`B/${moved}`)?.map((r) => Number(r.offset));
check(
  `B started partition ${moved} from its committed offset`,
  movedOffsets?.[0] === (moved === 0 ? 18 : p1.map((r) => Number(r.offset)).find((o) => o >= 3)),
  {
    offsets: movedOffsets,
    committed: moved === 0 ? 18 : 3,
    note: 'the first record at or above the commit (the marker may sit at 3)',
  },
);

// What the broker answers to a commit of a partition this member no longer owns (straight to the library).
try {
  await a.consumer.commit({ offsets: [{ topic, partition: moved ?? 0, offset: 1n, leaderEpoch: -1 }] });
  check(
    'the broker accepts a commit by A of a partition no longer assigned (KIP-848 checks the member epoch only)',
    true,
    'accepted',
  );
} catch (err) {
  check('the broker refuses a commit by A of a partition no longer assigned', true, {
    refused: err instanceof Error ? err.message : String(err),
  });
}
const committed = await a.consumer.listCommittedOffsets({ topics: [{ topic, partitions: [0, 1] }] });
console.log(
  `     committed now (partition 0, 1): ${committed.get(topic)?.join()} (the former owner's commit replaced the new owner's)`,
);
// Through the adapter, after the grace period, such a commit is dropped.
await b.commit([{ topic, partition: moved ?? 0, offset: moved === 0 ? '18' : '3' }]);
await sleep(1_100);
await a.commit([{ topic, partition: moved ?? 0, offset: '2' }]);
const after = await a.consumer.listCommittedOffsets({ topics: [{ topic, partitions: [moved ?? 0] }] });
check(
  'the adapter drops a commit of a partition revoked more than 1 s ago',
  after.get(topic)?.[moved ?? 0] === (moved === 0 ? 18n : 3n) && a.stats.commitsDropped === 1,
  {
    committed: after.get(topic)?.[moved ?? 0],
    dropped: a.stats.commitsDropped,
  },
);

// Graceful close of B: how soon A owns both again.
t0 = Date.now();
await b.close();
const closeMs = Date.now() - t0;
await until(() => a.assigned.length === 2, 30_000);
check('B closed; A owns both again', a.assigned.length === 2, { closeMs, handOverMs: Date.now() - t0 });

t0 = Date.now();
await a.close();
console.log(`     A closed in ${Date.now() - t0} ms; stats ${JSON.stringify(a.stats)}`);
await producer.close();
await admin.deleteTopics({ topics: [topic] });
await admin.close();
console.log(failures === 0 ? 'all checks passed' : `${failures} check(s) failed`);
process.exit(failures === 0 ? 0 : 1);
