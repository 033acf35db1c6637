// Replay order (issue 22): over generated histories sent to several partitions of several topics, the
// merged, concurrently scheduled replay applies every two messages that touch the same pattern in the
// order they were sent (their live order), whatever order the running units finish in.
import { batchClassOf } from '../../src/contracts/operations.ts';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TopicNames } from '../../src/contracts/topics.ts';
import type { InboundMessage } from '../../src/messaging/engine/records.ts';
import { prepareMessage } from '../../src/messaging/stages/prepare.ts';
import { PartitionScheduler } from '../../src/messaging/engine/partition-scheduler.ts';
import {
  mergeByTimestamp,
  TimestampMerge,
  writeTieRank,
} from '../../src/messaging/operations/replay-merge.ts';
import { patternLocks, touchedBy, LockSet } from '../../src/messaging/operations/replay-order.ts';
import {
  ReplayScheduler,
  type ReplayItem,
  type ReplayUnit,
} from '../../src/messaging/operations/replay-scheduler.ts';
import { derivedPatternId } from '../../src/nodes/ids.ts';

const names = new TopicNames('');
const PARTITIONS = 3;
const IDS = Array.from({ length: 4 }, (_, i) => `00000000-0000-4000-8000-00000000000${i}`);

type Op =
  | { op: 'insert'; id: number | null }
  | { op: 'update' | 'delete' | 'record_usage' | 'update_stats'; id: number }
  | { op: 'create_relationship'; id: number; other: number }
  | { op: 'compute_analytics'; id: number | null };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ op: fc.constant('insert' as const), id: fc.option(fc.nat(3), { nil: null }) }),
  fc.record({
    op: fc.constantFrom(
      'update' as const,
      'delete' as const,
      'record_usage' as const,
      'update_stats' as const,
    ),
    id: fc.nat(5), // 4 and 5: ids of earlier unkeyed inserts, when there are any
  }),
  fc.record({ op: fc.constant('create_relationship' as const), id: fc.nat(5), other: fc.nat(5) }),
  fc.record({ op: fc.constant('compute_analytics' as const), id: fc.option(fc.nat(3), { nil: null }) }),
);

interface Sent {
  message: InboundMessage;
  seq: number;
}

/** Sends a history: keyed messages go to their key's partition, unkeyed ones to any; times never go back. */
function send(ops: { op: Op; gap: number; partition: number }[]): Sent[] {
  const offsets = new Map<string, number>();
  const derived: string[] = [];
  const sent: Sent[] = [];
  let time = 1_700_000_000_000;
  ops.forEach(({ op, gap, partition }, seq) => {
    time += gap;
    const cid = `00000000-0000-4000-9000-${String(seq).padStart(12, '0')}`;
    const idOf = (n: number): string =>
      (n < IDS.length ? IDS[n] : derived[n - IDS.length]) ?? '00000000-0000-4000-8000-000000000000';
    let topic = 'pattern.insert';
    let body: Record<string, unknown>;
    let key: string | null;
    switch (op.op) {
      case 'insert': {
        const data: Record<string, unknown> = {
          pattern_name: `P${seq}`,
          pattern_type: 'code',
          language: 'go',
        };
        if (op.id !== null) data.pattern_id = idOf(op.id);
        else derived.push(derivedPatternId(`cid:${cid}`));
        body = { operation: 'insert', data };
        key = op.id === null ? null : idOf(op.id);
        break;
      }
      case 'update':
        body = { operation: 'update', pattern_id: idOf(op.id), data: { description: `d${seq}` } };
        key = idOf(op.id);
        break;
      case 'delete':
        body = { operation: 'delete', pattern_id: idOf(op.id) };
        key = idOf(op.id);
        break;
      case 'record_usage':
      case 'update_stats':
        topic = 'pattern.usage';
        body =
          op.op === 'record_usage'
            ? { operation: op.op, pattern_id: idOf(op.id), usage_data: { success: true } }
            : { operation: op.op, pattern_id: idOf(op.id) };
        key = idOf(op.id);
        break;
      case 'create_relationship':
        topic = 'pattern.usage';
        body = {
          operation: op.op,
          relationship_data: {
            source_pattern_id: idOf(op.id),
            target_pattern_id:
              idOf(op.other) === idOf(op.id) ? IDS.find((x) => x !== idOf(op.id)) : idOf(op.other),
            relationship_type: 'similar',
          },
        };
        key = idOf(op.id);
        break;
      case 'compute_analytics':
        topic = 'pattern.analytics.compute';
        body = op.id === null ? { operation: op.op } : { operation: op.op, pattern_id: idOf(op.id) };
        key = op.id === null ? null : idOf(op.id);
        break;
    }
    const p = key === null ? partition : Number.parseInt(key.slice(-4), 16) % PARTITIONS;
    const where = `${topic}:${p}`;
    const offset = offsets.get(where) ?? 0;
    offsets.set(where, offset + 1);
    sent.push({
      seq,
      message: {
        topic,
        partition: p,
        offset: String(offset),
        key: key === null ? null : Buffer.from(key),
        value: Buffer.from(JSON.stringify({ ...body, correlation_id: cid })),
        headers: {},
        timestamp: String(time),
      },
    });
  });
  return sent;
}

const TOPIC_ORDER = ['pattern.insert', 'pattern.usage', 'pattern.analytics.compute'];

interface Item extends ReplayItem {
  seq: number;
  message: InboundMessage;
}

function prepare(sent: Sent): Item {
  const p = prepareMessage(sent.message, { names, maxMessageBytes: 1 << 20 });
  if (!p.request) throw new Error(`generated an invalid request: ${sent.message.value?.toString()}`);
  return {
    seq: sent.seq,
    message: sent.message,
    locks: touchedBy(p.request, p.context.identity as string),
    batchWith: batchClassOf(p.request),
    size: sent.message.value?.length ?? 0,
  };
}

/** Runs the scheduler with `concurrency` units at once, finishing them in the order `pick` chooses. */
function replay(items: Item[], concurrency: number, pick: (n: number) => number, maxBatch: number): number[] {
  const scheduler = new ReplayScheduler<Item>({ maxBatch });
  for (const item of items) scheduler.push(item);
  const running: ReplayUnit<Item>[] = [];
  const applied: number[] = [];
  for (;;) {
    while (running.length < concurrency) {
      const unit = scheduler.next();
      if (!unit) break;
      running.push(unit);
    }
    if (running.length === 0) break;
    // A unit's effects take place when its transaction commits, in its items' order.
    const done = running.splice(pick(running.length), 1)[0] as ReplayUnit<Item>;
    for (const item of done.items) applied.push(item.seq);
    scheduler.release(done);
  }
  return applied;
}

describe('replay order', () => {
  it('applies every two messages touching one pattern in their live order', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({ op: opArb, gap: fc.constantFrom(0, 1, 1, 2, 5), partition: fc.nat(PARTITIONS - 1) }),
          { minLength: 1, maxLength: 60 },
        ),
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 1, max: 5 }),
        fc.infiniteStream(fc.nat()),
        (ops, concurrency, maxBatch, picks) => {
          const sent = send(ops);
          const partitions = new Map<string, InboundMessage[]>();
          for (const s of sent) {
            const k = `${s.message.topic}:${s.message.partition}`;
            partitions.set(k, [...(partitions.get(k) ?? []), s.message]);
          }
          const merged = mergeByTimestamp(
            TOPIC_ORDER,
            writeTieRank,
            [...partitions].map(([k, messages]) => ({
              topic: k.slice(0, k.lastIndexOf(':')),
              partition: Number(k.slice(k.lastIndexOf(':') + 1)),
              messages,
            })),
          );
          expect(merged).toHaveLength(sent.length);
          const bySeq = new Map(sent.map((s) => [s.message, s.seq]));
          const items = merged.map((m) => prepare({ message: m, seq: bySeq.get(m) as number }));
          const pickIt = picks[Symbol.iterator]();
          const applied = replay(items, concurrency, (n) => (pickIt.next().value as number) % n, maxBatch);
          expect([...applied].sort((a, b) => a - b)).toEqual(sent.map((s) => s.seq));
          const position = new Map(applied.map((seq, i) => [seq, i]));
          const prepared = new Map(items.map((i) => [i.seq, i]));
          for (const a of sent) {
            for (const b of sent) {
              if (a.seq >= b.seq) continue;
              const la = prepared.get(a.seq) as Item;
              const lb = prepared.get(b.seq) as Item;
              const samePartition =
                a.message.topic === b.message.topic && a.message.partition === b.message.partition;
              // Sent in the same millisecond to two partitions: no record says which came first.
              if (!samePartition && a.message.timestamp === b.message.timestamp) continue;
              const shared = patternLocks(la.locks).some((l) => lb.locks.includes(l));
              const global = la.locks.includes('*') || lb.locks.includes('*');
              if (!shared && !global) continue;
              expect(
                (position.get(a.seq) as number) < (position.get(b.seq) as number),
                `#${a.seq} ${a.message.value?.toString()} before #${b.seq} ${b.message.value?.toString()}`,
              ).toBe(true);
            }
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('keeps a partition in offset order and waits for partitions that have not delivered yet', () => {
    const m = (topic: string, partition: number, offset: number, timestamp: number): InboundMessage => ({
      topic,
      partition,
      offset: String(offset),
      key: null,
      value: null,
      headers: {},
      timestamp: String(timestamp),
    });
    const merge = new TimestampMerge(TOPIC_ORDER);
    merge.open('pattern.insert', 0);
    merge.open('pattern.usage', 0);
    // A producer clock that went back: offset order still wins within the partition.
    merge.push('pattern.insert', 0, [m('pattern.insert', 0, 0, 10), m('pattern.insert', 0, 1, 5)]);
    expect(merge.take()).toBeUndefined(); // pattern.usage/0 may still hold something earlier
    merge.push('pattern.usage', 0, [m('pattern.usage', 0, 0, 10)]);
    merge.end('pattern.usage', 0);
    // Equal times: pattern writes before usage.
    expect(merge.take()?.topic).toBe('pattern.insert');
    expect(merge.take()?.topic).toBe('pattern.insert');
    expect(merge.take()).toBeUndefined(); // pattern.insert/0 is empty and has not ended
    expect(merge.done).toBe(false);
    merge.end('pattern.insert', 0);
    expect(merge.take()?.topic).toBe('pattern.usage');
    expect(merge.done).toBe(true);
  });

  it('lets a delete and the renames wait for every insert of a name, and global analytics for everything', () => {
    const locks = new LockSet();
    locks.add(['p:a', 'n:go\u0000A']);
    expect(locks.conflicts(['p:b', 'n:*'])).toBe(true);
    expect(locks.conflicts(['p:b', 'n:go\u0000B'])).toBe(false);
    expect(locks.conflicts(['*'])).toBe(true);
    expect(locks.conflicts([])).toBe(false);
    locks.remove(['p:a', 'n:go\u0000A']);
    locks.add(['*']);
    expect(locks.conflicts(['p:z'])).toBe(true);
    locks.remove(['*']);
    expect(locks.empty).toBe(true);
  });

  it('orders an unkeyed insert and a keyed update of its pattern in one live partition by what they touch', () => {
    const cid = '00000000-0000-4000-9000-00000000abcd';
    const id = derivedPatternId(`cid:${cid}`);
    const message = (offset: number, key: string | null, body: Record<string, unknown>): InboundMessage => ({
      topic: 'pattern.insert',
      partition: 0,
      offset: String(offset),
      key: key === null ? null : Buffer.from(key),
      value: Buffer.from(JSON.stringify(body)),
      headers: {},
      timestamp: '1',
    });
    const prepared = [
      message(0, null, {
        operation: 'insert',
        correlation_id: cid,
        data: { pattern_name: 'A', pattern_type: 'code', language: 'go' },
      }),
      message(1, id, { operation: 'update', pattern_id: id, data: { description: 'later' } }),
      message(2, null, {
        operation: 'insert',
        data: { pattern_name: 'B', pattern_type: 'code', language: 'go' },
      }),
    ].map((m) => prepareMessage(m, { names, maxMessageBytes: 1 << 20 }));
    const scheduler = new PartitionScheduler({ maxBatch: 10 });
    for (const p of prepared) scheduler.push(p);
    const first = scheduler.next();
    expect(first?.items[0]?.message.offset).toBe('0');
    scheduler.hold(first?.keys ?? []);
    // The update (another message key) waits for the insert of its pattern; the next unkeyed insert waits
    // for the first (same empty message key), as before.
    expect(scheduler.next()).toBeUndefined();
    scheduler.release(first?.keys ?? []);
    expect(scheduler.next()?.items[0]?.message.offset).toBe('1');
  });

  it('keeps a refused message of a key behind an earlier write of that key that touches patterns', () => {
    const at = (offset: number, value: string): InboundMessage => ({
      topic: 'pattern.insert',
      partition: 0,
      offset: String(offset),
      key: Buffer.from('k'),
      value: Buffer.from(value),
      headers: {},
      timestamp: '1',
    });
    const id = derivedPatternId('cid:00000000-0000-4000-9000-00000000abce');
    const [write, broken] = [
      at(0, JSON.stringify({ operation: 'update', pattern_id: id, data: { description: 'x' } })),
      at(1, '{"data": {"pattern_name": '),
    ].map((m) => prepareMessage(m, { names, maxMessageBytes: 1 << 20 }));
    const scheduler = new PartitionScheduler({ maxBatch: 10 });
    for (const p of [write, broken]) if (p) scheduler.push(p);
    const first = scheduler.next();
    expect(first?.items[0]?.message.offset).toBe('0');
    scheduler.hold(first?.keys ?? []);
    // The undecodable message touches nothing, but it shares the message key: its error result must not
    // overtake the write's result.
    expect(scheduler.next()).toBeUndefined();
  });
});
