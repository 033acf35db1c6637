// A message the live worker applied but the replay's merged order refuses (an update whose insert was
// appended to another partition just after it, though the live worker applied the insert first) is
// deferred until something touching the same patterns is applied, not dead-lettered: the replay then
// rebuilds what the live worker built. In-process, with a fake database of pattern ids.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { PatternRequest } from '../../src/contracts/requests.ts';
import type { ModelResult } from '../../src/contracts/results.ts';
import { Lifecycle } from '../../src/messaging/engine/lifecycle.ts';
import type { UnitOutput, UnitWork } from '../../src/messaging/engine/ports.ts';
import type { InboundMessage, OutboundRecord } from '../../src/messaging/engine/records.ts';
import { AppliedLive, RefusedLive } from '../../src/messaging/operations/live-outcomes.ts';
import { mergeByTimestamp, writeTieRank } from '../../src/messaging/operations/replay-merge.ts';
import {
  describeSummary,
  MAX_DEFERRALS,
  runReplay,
  type ReplaySource,
} from '../../src/messaging/operations/replay-driver.ts';
import { LockSet, touchedBy } from '../../src/messaging/operations/replay-order.ts';
import { ReplayScheduler, type ReplayItem } from '../../src/messaging/operations/replay-scheduler.ts';
import type { Prepared } from '../../src/messaging/stages/prepare.ts';
import { createLogger } from '../../src/telemetry/logger.ts';

const X = '00000000-0000-4000-8000-00000000000a';
const Y = '00000000-0000-4000-8000-00000000000b';

describe('replay scheduler: deferred messages', () => {
  const item = (name: string, ...locks: string[]): ReplayItem & { name: string } => ({
    name,
    locks,
    batchWith: undefined,
    size: 1,
  });
  const drain = (s: ReplayScheduler<ReplayItem & { name: string }>) => {
    const out: string[] = [];
    for (let u = s.next(); u; u = s.next()) {
      out.push(...u.items.map((i) => i.name));
      s.release(u);
    }
    return out;
  };

  it('waits out of the queue until a message touching the same things is applied, then goes first', () => {
    const s = new ReplayScheduler<ReplayItem & { name: string }>({ maxBatch: 10 });
    const update = item('update X', 'p:x');
    const usage = item('usage X', 'p:x');
    s.push(update);
    const first = s.next();
    expect(first?.items).toEqual([update]);
    s.push(usage);
    s.push(item('insert X', 'p:x'));
    s.push(item('insert Y', 'p:y'));
    s.release(first as never);
    s.defer(update); // refused here, applied live
    expect(s.waiting).toBe(1);
    // Nothing touching X was applied yet: what comes after runs, the update stays out.
    const next = s.next();
    expect(next?.items.map((i) => i.name)).toEqual(['usage X']);
    s.release(next as never);
    s.applied(['p:y']); // about something else: it stays out
    expect(s.waiting).toBe(1);
    s.applied(['i:1', 'p:x']);
    expect(s.waiting).toBe(0);
    // Back in front of everything queued that touches X (all of it came after it in the merged order).
    expect(drain(s)).toEqual(['update X', 'insert X', 'insert Y']);
  });

  it('wakes what overlaps what it wakes, in the order they were deferred, and releases the rest at the end', () => {
    const s = new ReplayScheduler<ReplayItem & { name: string }>({ maxBatch: 10 });
    const a = item('relationship X-Y', 'p:x', 'p:y');
    const b = item('usage Y', 'p:y');
    const c = item('usage Z', 'p:z');
    const d = item('update X', 'p:x');
    for (const i of [a, b, c, d]) s.defer(i);
    s.applied(['p:y']);
    expect(drain(s)).toEqual(['relationship X-Y', 'usage Y', 'update X']);
    expect(s.releaseWaiting()).toEqual([c]);
    expect(drain(s)).toEqual(['usage Z']);
  });

  it('wakes exactly what a scan of every deferred message would, class locks and `*` included (property)', () => {
    const lock = fc.constantFrom('p:a', 'p:b', 'p:c', 'n:go\u0000x', 'n:go\u0000y', 'n:*', '*', 'i:1');
    fc.assert(
      fc.property(
        fc.array(fc.array(lock, { maxLength: 3 }), { maxLength: 12 }),
        fc.array(lock, { maxLength: 3 }),
        (deferredLocks, appliedLocks) => {
          const s = new ReplayScheduler<ReplayItem & { name: string }>({ maxBatch: 10 });
          const items = deferredLocks.map((locks, i) => item(String(i), ...locks));
          for (const i of items) s.defer(i);
          s.applied(appliedLocks);
          // The definition: what conflicts with the applied locks or with what was woken, to a fixpoint.
          const touched = new LockSet();
          touched.add(appliedLocks);
          const woken = new Set<string>();
          for (let grew = appliedLocks.length > 0; grew;) {
            grew = false;
            for (const i of items)
              if (!woken.has(i.name) && touched.conflicts(i.locks)) {
                woken.add(i.name);
                touched.add(i.locks);
                grew = true;
              }
          }
          expect(s.waiting).toBe(items.length - woken.size);
          expect(drain(s)).toEqual(items.filter((i) => woken.has(i.name)).map((i) => i.name));
          // The rest are still held, and still come back at the end, in order.
          expect(s.releaseWaiting().map((i) => i.name)).toEqual(
            items.filter((i) => !woken.has(i.name)).map((i) => i.name),
          );
          expect(s.waiting).toBe(0);
        },
      ),
      { numRuns: 2000 },
    );
  });
});

// A fake database: pattern ids that exist. insert creates, update and record_usage need the pattern.
interface FakeRequest {
  operation: 'insert' | 'update' | 'record_usage';
  id: string;
  parent?: string;
  /** An update's new description. */
  v?: string;
}

function message(partition: number, offset: number, timestamp: number, r: FakeRequest): InboundMessage {
  return {
    topic: r.operation === 'record_usage' ? 'pattern.usage' : 'pattern.insert',
    partition,
    offset: String(offset),
    key: null,
    value: Buffer.from(JSON.stringify(r)),
    headers: {},
    timestamp: String(timestamp),
  };
}

const requestOf = (r: FakeRequest): PatternRequest =>
  (r.operation === 'insert'
    ? {
        operation: 'insert',
        data: { pattern_id: r.id, pattern_name: `n${r.id}`, language: 'go', parent_pattern_id: r.parent },
      }
    : r.operation === 'update'
      ? { operation: 'update', pattern_id: r.id, data: { description: 'd' } }
      : { operation: 'record_usage', pattern_id: r.id, usage_data: { success: true } }) as PatternRequest;

function fakeWork(existing: Set<string>) {
  const applied: string[] = [];
  const work: UnitWork<Prepared> = {
    prepare: (m) => {
      const r = JSON.parse(m.value?.toString() ?? '{}') as FakeRequest;
      return {
        message: m,
        logical: m.topic,
        request: requestOf(r),
        error: undefined,
        context: { identity: `${m.topic}/${m.partition}/${m.offset}` },
        batchWith: undefined,
        correlationId: null,
        key: null,
        memoryBytes: 100,
      } as unknown as Prepared;
    },
    run: (_unit, items) => {
      const records: OutboundRecord[] = [];
      const outcomes = items.map((p) => {
        const r = JSON.parse(p.message.value?.toString() ?? '{}') as FakeRequest;
        const ok = r.operation === 'insert' || existing.has(r.id);
        if (r.operation === 'insert') existing.add(r.id);
        if (ok) applied.push(`${r.operation} ${r.id.slice(-1)}`);
        const result = (
          ok
            ? { success: true, data: {}, error: null, metadata: {} }
            : { success: false, data: null, error: { code: 'NOT_FOUND', message: 'no' }, metadata: {} }
        ) as ModelResult;
        if (!ok)
          records.push({ topic: 'dlq', key: null, value: p.message.value, headers: {}, answers: p.message });
        return {
          message: p.message,
          logical: p.logical,
          operation: r.operation,
          result,
          deadLettered: !ok,
        };
      });
      return Promise.resolve<UnitOutput>({ records, outcomes });
    },
    giveUp: () => ({ records: [], outcomes: [] }),
  };
  return { work, applied };
}

function sourceOf(messages: InboundMessage[]): ReplaySource {
  let next = 0;
  return {
    get done() {
      return next >= messages.length;
    },
    take: () => messages[next++],
    wait: () => new Promise<void>((resolve) => setTimeout(resolve, 1)),
  };
}

async function replay(messages: InboundMessage[], appliedLive: AppliedLive, maxWaiting?: number) {
  const { work, applied } = fakeWork(new Set());
  const published: OutboundRecord[] = [];
  const summary = await runReplay({
    source: sourceOf(messages),
    work,
    publisher: {
      publish: (records) => {
        published.push(...records);
        return Promise.resolve();
      },
      pendingBytes: 0,
    },
    lifecycle: new Lifecycle(() => undefined),
    logger: createLogger('silent'),
    refusedLive: new Map(),
    appliedLive,
    concurrency: 4,
    maxRatePerSecond: 0,
    maxBatch: 10,
    maxBatchBytes: 1_000_000,
    retry: { maxAttempts: 3, backoff: { initialMs: 1, maxMs: 2 } },
    ...(maxWaiting === undefined ? {} : { maxWaiting }),
  });
  return { summary, applied, published };
}

const everyOffset = [
  { topic: 'pattern.insert', partition: 0, start: 0n, end: 100n },
  { topic: 'pattern.insert', partition: 1, start: 0n, end: 100n },
  { topic: 'pattern.usage', partition: 0, start: 0n, end: 100n },
];

describe('replay driver: messages applied live that the merged order refuses', () => {
  // Merged order: update X (p0, appended first), usage X, insert X (p1, appended 1 ms later), update Y.
  const history = () => [
    message(0, 0, 100, { operation: 'update', id: X }),
    message(0, 0, 100, { operation: 'record_usage', id: X }),
    message(1, 0, 101, { operation: 'insert', id: X }),
    message(0, 1, 102, { operation: 'update', id: Y }),
  ];

  it('applies them after the message that makes them apply, in their order, and publishes no dead letter for them', async () => {
    const live = new AppliedLive(everyOffset);
    const [update, usage, insert] = history();
    for (const m of [update, usage, insert]) live.add(m!.topic, m!.partition, m!.offset);
    const { summary, applied, published } = await replay(history(), live);
    expect(applied.slice(0, 3)).toEqual(['insert a', 'update a', 'record_usage a']);
    expect(summary).toMatchObject({ applied: 3, deadLettered: 1, deferred: 2 });
    // The update of Y was refused live too (nothing says it was applied): dead-lettered at once.
    expect(published.map((r) => JSON.parse(String(r.value)) as FakeRequest)).toEqual([
      { operation: 'update', id: Y },
    ]);
    expect(describeSummary(summary)).toContain('deferred 2 (applied live, refused in the merged order');
  });

  it('without a live success, refuses them in the merged order as before', async () => {
    const { summary, applied } = await replay(history(), new AppliedLive(everyOffset));
    expect(applied).toEqual(['insert a']);
    expect(summary).toMatchObject({ applied: 1, deadLettered: 3, deferred: 0 });
  });

  it(`gives up after ${MAX_DEFERRALS} deferrals, or at the end, and then publishes what it held back once`, async () => {
    // An update of Z that nothing creates, woken again and again by inserts naming Z (the fake applies
    // them): refused for good after its last deferral.
    const Z = '00000000-0000-4000-8000-00000000000c';
    const woken = [
      message(0, 0, 100, { operation: 'update', id: Z }),
      ...Array.from({ length: 20 }, (_, i) =>
        message(1, i, 101 + i, { operation: 'insert', id: `${X.slice(0, -2)}${10 + i}`, parent: Z }),
      ),
    ];
    const live = new AppliedLive(everyOffset);
    live.add('pattern.insert', 0, '0');
    const once = await replay(woken, live);
    expect(once.summary).toMatchObject({ applied: 20, deadLettered: 1, deferred: MAX_DEFERRALS });
    expect(once.published.map((r) => r.answers?.offset)).toEqual(['0']);
    // The inserts name Z as their parent: each touches Z, and wakes the update once applied.
    expect(touchedBy(requestOf({ operation: 'insert', id: X, parent: Z }), 'i')).toContain(`p:${Z}`);

    // Nothing touching it comes: one deferral, then refused at the end.
    const alone = await replay([message(0, 0, 100, { operation: 'update', id: Z })], live);
    expect(alone.summary).toMatchObject({ applied: 0, deadLettered: 1, deferred: 1 });
    expect(alone.published).toHaveLength(1);
  });
});

describe('replay driver: a bounded number of deferred messages', () => {
  it('refuses the oldest once more are held back than the bound (a replay into a database without their patterns)', async () => {
    const Z = '00000000-0000-4000-8000-00000000000c';
    const updates = Array.from({ length: 6 }, (_, i) =>
      message(0, i, 100 + i, { operation: 'update', id: Z }),
    );
    const live = new AppliedLive(everyOffset);
    for (const m of updates) live.add(m.topic, m.partition, m.offset);
    const { summary, published } = await replay(
      [...updates, message(1, 0, 200, { operation: 'insert', id: Z })],
      live,
      2,
    );
    // Four were refused to keep two held; the two held back are applied after the insert.
    expect(summary).toMatchObject({ applied: 3, deadLettered: 4, deferred: 6 });
    expect(published.map((r) => r.answers?.offset)).toEqual(['0', '1', '2', '3']);
  });
});

describe('applied live', () => {
  it('keeps one bit per offset of the replayed ranges and nothing outside them', () => {
    const live = new AppliedLive([{ topic: 't', partition: 0, start: 10n, end: 20n }]);
    live.add('t', 0, '10');
    live.add('t', 0, '10');
    live.add('t', 0, '19');
    for (const [p, o] of [
      [0, '9'],
      [0, '20'],
      [1, '12'],
      [0, '-1'],
      [0, 'x'],
      [0, '99999999999999999999'],
    ] as const)
      live.add('t', p, o);
    expect(live.size).toBe(2);
    expect(['9', '10', '11', '19', '20'].map((o) => live.has('t', 0, o))).toEqual([
      false,
      true,
      false,
      true,
      false,
    ]);
    expect(live.has('u', 0, '10')).toBe(false);
  });
});

describe('replay driver: deferral reproduces any live order (property)', () => {
  // Histories of inserts (unkeyed: any partition), updates and usage events (keyed by pattern: one
  // partition per pattern). The live worker takes the partitions in any interleaving, the broker stamps
  // them in another; the replay, given only the live verdicts, must rebuild the live state exactly.
  const P = 3;
  const IDS = [X, Y, '00000000-0000-4000-8000-00000000000c', '00000000-0000-4000-8000-00000000000d'];
  type Op = { op: 'insert'; id: number; partition: number } | { op: 'update' | 'record_usage'; id: number };
  const opArb: fc.Arbitrary<Op> = fc.oneof(
    fc.record({ op: fc.constant('insert' as const), id: fc.nat(3), partition: fc.nat(P - 1) }),
    fc.record({ op: fc.constantFrom('update' as const, 'record_usage' as const), id: fc.nat(3) }),
  );
  interface State {
    description: string | null;
    uses: number;
  }
  /** Applies one request to a state; false: refused (a second insert, or a write of a missing pattern). */
  const apply = (state: Map<string, State>, r: FakeRequest & { v?: string }): boolean => {
    const row = state.get(r.id);
    if (r.operation === 'insert') {
      if (row) return false;
      state.set(r.id, { description: null, uses: 0 });
      return true;
    }
    if (!row) return false;
    if (r.operation === 'update') row.description = r.v ?? null;
    else row.uses += 1;
    return true;
  };

  it('applies what the live worker applied, refuses nothing else, and ends in the live state', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ op: opArb, gap: fc.nat(1) }), { minLength: 1, maxLength: 30 }),
        fc.array(fc.nat(P - 1), { minLength: 60, maxLength: 60 }),
        fc.array(fc.nat(3), { minLength: 1, maxLength: 20 }),
        fc.integer({ min: 1, max: 4 }),
        async (ops, liveTurns, delays, concurrency) => {
          // Appended in generation order, stamped by the broker (gaps of 0 ms give ties).
          const partitions = Array.from({ length: P }, () => [] as InboundMessage[]);
          let time = 1000;
          ops.forEach(({ op, gap }, seq) => {
            time += gap;
            const partition = op.op === 'insert' ? op.partition : op.id % P;
            const request = { operation: op.op, id: IDS[op.id] as string, v: `v${seq}` };
            const m = message(partition, partitions[partition]!.length, time, request);
            partitions[partition]!.push({ ...m, topic: 'pattern.insert' });
          });
          // The live worker: partitions in an interleaving of its own, each in offset order.
          const liveState = new Map<string, State>();
          const applied = new AppliedLive(
            partitions.map((_, p) => ({ topic: 'pattern.insert', partition: p, start: 0n, end: 1000n })),
          );
          const refusedLive = new RefusedLive(
            partitions.map((_, p) => ({ topic: 'pattern.insert', partition: p, start: 0n, end: 1000n })),
          );
          const heads = partitions.map(() => 0);
          for (let turn = 0; heads.some((h, p) => h < partitions[p]!.length); turn++) {
            let p = liveTurns[turn % liveTurns.length] as number;
            while ((heads[p] as number) >= partitions[p]!.length) p = (p + 1) % P;
            const m = partitions[p]![heads[p]!++] as InboundMessage;
            if (apply(liveState, JSON.parse(String(m.value)) as FakeRequest))
              applied.add(m.topic, p, m.offset);
            else refusedLive.refuse(m.topic, p, m.offset, 'NOT_FOUND');
          }

          // The replay: merged by timestamp, run by the driver against a fake database.
          const merged = mergeByTimestamp(
            ['pattern.insert'],
            writeTieRank,
            partitions.map((messages, partition) => ({ topic: 'pattern.insert', partition, messages })),
          );
          const replayState = new Map<string, State>();
          let call = 0;
          const work: UnitWork<Prepared> = {
            prepare: (m) =>
              ({
                message: m,
                logical: 'pattern.insert',
                request: requestOf(JSON.parse(String(m.value)) as FakeRequest),
                error: undefined,
                context: { identity: `${m.partition}/${m.offset}` },
                batchWith: undefined,
                correlationId: null,
                key: null,
                memoryBytes: 100,
              }) as unknown as Prepared,
            run: async (_unit, items) => {
              // Units finish in an order of the property's choosing.
              for (let d = delays[call++ % delays.length] as number; d > 0; d--)
                await new Promise((r) => setImmediate(r));
              return {
                records: [],
                outcomes: items.map((p) => {
                  const r = JSON.parse(String(p.message.value)) as FakeRequest;
                  const ok = apply(replayState, r);
                  return {
                    message: p.message,
                    logical: p.logical,
                    operation: r.operation,
                    result: (ok
                      ? { success: true, metadata: {} }
                      : { success: false, error: { code: 'NOT_FOUND' }, metadata: {} }) as ModelResult,
                    deadLettered: !ok,
                  };
                }),
              };
            },
            giveUp: () => ({ records: [], outcomes: [] }),
          };
          const summary = await runReplay({
            source: sourceOf(merged),
            work,
            publisher: { publish: () => Promise.resolve(), pendingBytes: 0 },
            lifecycle: new Lifecycle(() => undefined),
            logger: createLogger('silent'),
            refusedLive,
            appliedLive: applied,
            concurrency,
            maxRatePerSecond: 0,
            maxBatch: 10,
            maxBatchBytes: 1_000_000,
            retry: { maxAttempts: 3, backoff: { initialMs: 1, maxMs: 2 } },
          });
          expect(summary.deadLettered).toBe(0);
          expect(summary.applied).toBe(applied.size);
          expect(Object.fromEntries(replayState)).toEqual(Object.fromEntries(liveState));
        },
      ),
      { numRuns: 300 },
    );
  });
});
