// One order for every selected partition of every selected request topic: a k-way merge by record
// timestamp. A partition's messages stay in offset order (the merge only ever takes a partition's
// head); equal timestamps are broken by `tieRank` (replay ranks inserts first and deletes last: of two
// messages appended in the same millisecond to two partitions, nothing says which the live worker saw
// first, and the order in which both succeed is the one to take, since a live refusal is skipped
// anyway), then by topic (in the order given: pattern writes before usage before analytics) and then by
// partition number, so the order is the same in every replay. Streaming: the
// merge gives the next message only once every partition still open has one buffered (or has ended).
// Pure: no I/O.
import { partitionKey, type InboundMessage } from '../engine/records.ts';

interface Lane {
  key: string;
  topicRank: number;
  partition: number;
  buffer: InboundMessage[];
  head: number;
  ended: boolean;
}

export class TimestampMerge {
  readonly #lanes = new Map<string, Lane>();
  readonly #rank: (topic: string) => number;
  readonly #tieRank: ((m: InboundMessage) => number) | undefined;
  readonly #ties = new WeakMap<InboundMessage, number>();
  #buffered = 0;

  /** `topics`: the tie-break order of topics (unknown ones after them, by name); `tieRank` comes first. */
  constructor(topics: readonly string[], tieRank?: (m: InboundMessage) => number) {
    this.#tieRank = tieRank;
    this.#rank = (topic) => {
      const i = topics.indexOf(topic);
      return i < 0 ? topics.length : i;
    };
  }

  /** A partition the merge must wait for until it ends (every partition is added before the first take). */
  open(topic: string, partition: number): void {
    const key = partitionKey(topic, partition);
    if (!this.#lanes.has(key))
      this.#lanes.set(key, {
        key,
        topicRank: this.#rank(topic),
        partition,
        buffer: [],
        head: 0,
        ended: false,
      });
  }

  /** Messages of one partition, in offset order. */
  push(topic: string, partition: number, messages: readonly InboundMessage[]): void {
    this.open(topic, partition);
    const lane = this.#lanes.get(partitionKey(topic, partition)) as Lane;
    for (const m of messages) {
      lane.buffer.push(m);
      if (this.#tieRank) this.#ties.set(m, this.#tieRank(m));
    }
    this.#buffered += messages.length;
  }

  /** Nothing more will come from this partition. */
  end(topic: string, partition: number): void {
    this.open(topic, partition);
    (this.#lanes.get(partitionKey(topic, partition)) as Lane).ended = true;
  }

  buffered(topic: string, partition: number): number {
    const lane = this.#lanes.get(partitionKey(topic, partition));
    return lane ? lane.buffer.length - lane.head : 0;
  }

  get bufferedTotal(): number {
    return this.#buffered;
  }

  /** Every partition has ended and everything was taken. */
  get done(): boolean {
    for (const lane of this.#lanes.values()) if (!lane.ended || lane.head < lane.buffer.length) return false;
    return true;
  }

  /** Open partitions with nothing buffered: the merge waits for them. */
  waitingFor(): { topic: string; partition: number }[] {
    const out: { topic: string; partition: number }[] = [];
    for (const lane of this.#lanes.values()) {
      if (!lane.ended && lane.head >= lane.buffer.length) {
        const topic = lane.key.slice(0, lane.key.lastIndexOf(':'));
        out.push({ topic, partition: lane.partition });
      }
    }
    return out;
  }

  /** The next message in the merged order, or undefined while a partition it may come from is empty. */
  take(): InboundMessage | undefined {
    let best: Lane | undefined;
    let bestMessage: InboundMessage | undefined;
    for (const lane of this.#lanes.values()) {
      const m = lane.buffer[lane.head];
      if (!m) {
        if (lane.ended) continue;
        return undefined;
      }
      if (!bestMessage || !best || this.#before(m, lane, bestMessage, best)) {
        best = lane;
        bestMessage = m;
      }
    }
    if (!best || !bestMessage) return undefined;
    best.head += 1;
    this.#buffered -= 1;
    // Compact now and then, so a long replay does not keep what it took.
    if (best.head > 1024 && best.head * 2 > best.buffer.length) {
      best.buffer.splice(0, best.head);
      best.head = 0;
    }
    return bestMessage;
  }

  #before(a: InboundMessage, la: Lane, b: InboundMessage, lb: Lane): boolean {
    const ta = Number(a.timestamp);
    const tb = Number(b.timestamp);
    if (ta !== tb) return ta < tb;
    const ra = this.#ties.get(a) ?? 0;
    const rb = this.#ties.get(b) ?? 0;
    if (ra !== rb) return ra < rb;
    if (la.topicRank !== lb.topicRank) return la.topicRank < lb.topicRank;
    if (a.topic !== b.topic) return a.topic < b.topic;
    return la.partition < lb.partition;
  }
}

/** The merged order of whole partitions (tests, and small reads). */
export function mergeByTimestamp(
  topics: readonly string[],
  tieRank: ((m: InboundMessage) => number) | undefined,
  partitions: readonly { topic: string; partition: number; messages: readonly InboundMessage[] }[],
): InboundMessage[] {
  const merge = new TimestampMerge(topics, tieRank);
  for (const p of partitions) {
    merge.push(p.topic, p.partition, p.messages);
    merge.end(p.topic, p.partition);
  }
  const out: InboundMessage[] = [];
  for (let m = merge.take(); m; m = merge.take()) out.push(m);
  return out;
}

/** Replay's tie rank: inserts first, deletes last, everything else between (an unreadable value: between). */
export function writeTieRank(m: InboundMessage): number {
  if (!m.value) return 1;
  let operation: unknown;
  try {
    operation = (JSON.parse(m.value.toString('utf8')) as { operation?: unknown } | null)?.operation;
  } catch {
    return 1;
  }
  if (operation === 'insert' || operation === 'batch_insert') return 0;
  // An insert-topic message without an operation is an insert (its default).
  if (operation === undefined && m.topic.endsWith('pattern.insert')) return 0;
  return operation === 'delete' ? 2 : 1;
}
