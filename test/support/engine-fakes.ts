// Fakes of what the lane engine asks for (engine/ports.ts): work whose tries the test settles, a publisher
// whose acks the test gives, a consumer control that records pauses, seeks and commits.
import type { InboundMessage, OutboundRecord } from '../../src/messaging/engine/records.ts';
import type {
  ConsumerControl,
  RecordSink,
  Schedulable,
  UnitOutput,
  UnitWork,
} from '../../src/messaging/engine/ports.ts';
import type { LaneSettings } from '../../src/messaging/engine/settings.ts';
import { LaneEngine } from '../../src/messaging/engine/lane-engine.ts';
import { Lifecycle, type UnitView } from '../../src/messaging/engine/lifecycle.ts';
import { createLogger } from '../../src/telemetry/logger.ts';

export type Kind = 'read' | 'write' | 'usage';

export interface Deferred<T> {
  promise: Promise<T>;
  resolve: (v: T) => void;
  reject: (e: unknown) => void;
}
export function deferred<T>(): Deferred<T> {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

export const flush = () => new Promise<void>((r) => setImmediate(r));

export function message(partition: number, offset: number, kind: Kind, key: string): InboundMessage {
  return {
    topic: 't',
    partition,
    offset: String(offset),
    key: key ? Buffer.from(key) : null,
    value: Buffer.from(kind),
    headers: {},
    timestamp: '0',
  };
}

/** Work whose every try waits for the test to settle it. */
export class FakeWork implements UnitWork {
  readonly runs: { unit: UnitView; items: readonly Schedulable[]; done: Deferred<UnitOutput> }[] = [];
  readonly effectOrder: string[] = [];
  gaveUp: UnitView[] = [];
  /** What a prepared message holds in memory (Schedulable.memoryBytes); undefined: its bytes. */
  memoryOf: (m: InboundMessage) => number | undefined = () => undefined;
  /** The patterns a prepared write touches (Schedulable.touches); none unless set. */
  touchesOf: (m: InboundMessage) => string[] | undefined = () => undefined;

  prepare(m: InboundMessage): Schedulable {
    const kind = m.value?.toString() as Kind;
    return {
      message: m,
      ordering: kind === 'read' ? 'free' : 'key',
      key: m.key?.toString() ?? '',
      batchWith: kind === 'usage' ? 'record_usage' : undefined,
      skip: false,
      correlationId: null,
      memoryBytes: this.memoryOf(m),
      touches: this.touchesOf(m),
    };
  }

  run(unit: UnitView, items: readonly Schedulable[]): Promise<UnitOutput> {
    const done = deferred<UnitOutput>();
    this.runs.push({ unit, items, done });
    return done.promise;
  }

  /** Settles the i-th pending try successfully, with one record per message. */
  succeed(i: number): void {
    const [run] = this.runs.splice(i, 1);
    if (!run) throw new Error('no such run');
    for (const it of run.items)
      this.effectOrder.push(`${it.message.partition}/${it.key}/${it.message.offset}`);
    run.done.resolve(output(run.items));
  }

  fail(i: number, err: unknown): void {
    const [run] = this.runs.splice(i, 1);
    run?.done.reject(err);
  }

  giveUp(unit: UnitView, items: readonly Schedulable[]): UnitOutput {
    this.gaveUp.push(unit);
    return output(items);
  }
}

export function output(items: readonly Schedulable[]): UnitOutput {
  return {
    records: items.map((it) => ({
      topic: 'results',
      key: it.key,
      value: `${it.message.partition}/${it.message.offset}`,
      headers: {},
    })),
    outcomes: [],
  };
}

export class FakePublisher implements RecordSink {
  readonly pending: { records: OutboundRecord[]; acked: Deferred<void> }[] = [];
  pendingBytes = 0;
  readonly order: string[] = [];
  publish(records: OutboundRecord[]): Promise<void> {
    const acked = deferred<void>();
    this.pending.push({ records, acked });
    for (const r of records) this.order.push(`${String(r.key)}/${String(r.value)}`);
    return acked.promise;
  }
  /** Acks the oldest publish (the real publisher acks in order). */
  ack(): void {
    this.pending.shift()?.acked.resolve();
  }
}

export class FakeControl implements ConsumerControl {
  readonly commits: { topic: string; partition: number; offset: string }[][] = [];
  readonly paused = new Set<string>();
  pauses = 0;
  resumes = 0;
  pause(topic: string, partition: number) {
    this.pauses++;
    this.paused.add(`${topic}:${partition}`);
  }
  resume(topic: string, partition: number) {
    this.resumes++;
    this.paused.delete(`${topic}:${partition}`);
  }
  readonly seeks: { topic: string; partition: number; offset: bigint }[] = [];
  seek(topic: string, partition: number, offset: bigint) {
    this.seeks.push({ topic, partition, offset });
  }
  commit(offsets: { topic: string; partition: number; offset: string }[]) {
    this.commits.push(offsets);
    return Promise.resolve();
  }
  committed(partition: number): bigint {
    let best = -1n;
    for (const c of this.commits)
      for (const o of c) if (o.partition === partition && BigInt(o.offset) > best) best = BigInt(o.offset);
    return best;
  }
}

export function testSettings(overrides: Partial<LaneSettings> = {}): LaneSettings {
  return {
    name: 'test',
    groupId: 'g.test',
    topics: ['t'],
    concurrency: 3,
    maxRatePerSecond: 0,
    maxAttempts: 3,
    backoff: { initialMs: 1, maxMs: 2 },
    maxBatch: 4,
    maxBatchBytes: 4 * 1024 * 1024,
    maxBufferedMessages: 1000,
    maxUncommittedMessages: 4000,
    commitIntervalMs: 0,
    maxBufferedBytes: 64 * 1024 * 1024,
    maxPendingPublishBytes: 16 * 1024 * 1024,
    maxBytesPerPartition: 1024 * 1024,
    maxDecompressedBatchBytes: 16 * 1024 * 1024,
    fromBeginning: true,
    startOffsets: [],
    ...overrides,
  };
}

/** An engine over fresh fakes; a lifecycle listener that throws fails the test. */
export function engineSetup(overrides: Partial<LaneSettings> = {}, concurrencyNow?: () => number) {
  const work = new FakeWork();
  const publisher = new FakePublisher();
  const control = new FakeControl();
  const lifecycle = new Lifecycle((_event, err) => {
    throw err;
  });
  const engine = new LaneEngine({
    settings: testSettings(overrides),
    work,
    publisher,
    control,
    lifecycle,
    logger: createLogger('silent'),
    ...(concurrencyNow ? { concurrencyNow } : {}),
  });
  return { work, publisher, control, lifecycle, engine };
}
