// Engine defects of issue 24, in-process, each with the behaviour that used to go wrong: the replay's rate
// budget that never reached the engine, statement timeouts retried for ever, finished messages piling up
// behind a stuck commit point, results waiting for the broker without bound, a lane that failed to start
// while the others ran on, and a consumer that crashed while a partition was paused. Also: a partition
// held by a transaction left open is named, and keeps its lag current.
import { describe, expect, it } from 'vitest';
import { laneSettings } from '../../src/app.ts';
import { loadConfig } from '../../src/config.ts';
import { RetryableError } from '../../src/contracts/errors.ts';
import { classifyDbError } from '../../src/db/errors.ts';
import { classifyFailure } from '../../src/messaging/engine/failures.ts';
import type { WorkerMetrics } from '../../src/telemetry/metrics.ts';
import { observeMetrics } from '../../src/messaging/stages/observers.ts';
import { Lifecycle } from '../../src/messaging/engine/lifecycle.ts';
import { LaneConsumer } from '../../src/messaging/kafka/lane-consumer.ts';
import { Worker } from '../../src/messaging/kafka/worker.ts';
import { createLogger, type Logger } from '../../src/telemetry/logger.ts';
import { Readiness } from '../../src/telemetry/readiness.ts';
import { engineSetup, FakeWork, flush, message } from '../support/engine-fakes.ts';
import { fakeKafka } from '../support/fake-kafka.ts';
import type { LaneSettings } from '../../src/messaging/engine/settings.ts';

const logger = createLogger('silent');

const env = { KAFKA_BROKERS: '127.0.0.1:9092', DATABASE_URL: 'postgres://localhost/x' };

/** A replay pass's lane over fake Kafka: its settings from `env` and `setup`, a fake unit of work. */
function fakeLane(
  setup: {
    env?: Record<string, string>;
    settings?: Partial<LaneSettings>;
    endOffset?: (topic: string, partition: number) => bigint | undefined;
    logger?: Logger;
    lifecycle?: Lifecycle;
  } = {},
) {
  const { kafka, ports, members } = fakeKafka();
  const config = loadConfig({ ...env, ...setup.env });
  const [settings] = laneSettings(config, {
    config,
    logger,
    topics: ['pattern.usage'],
    ...(setup.endOffset ? { endOffset: setup.endOffset } : {}),
  });
  const work = new FakeWork();
  const lane = new LaneConsumer({
    kafka,
    ports,
    settings: { ...(settings as LaneSettings), ...setup.settings },
    work,
    checkRecord: () => undefined,
    logger: setup.logger ?? logger,
    lifecycle: setup.lifecycle ?? new Lifecycle(),
  });
  return { lane, members, work };
}

describe('the replay rate budget', () => {
  it('reaches the replay lane from WORKER_REPLAY_MAX_RATE', () => {
    const config = loadConfig({ ...env, WORKER_REPLAY_MAX_RATE: '250' });
    const [replay] = laneSettings(config, { config, logger, topics: ['pattern.usage'] });
    expect(replay?.maxRatePerSecond).toBe(250);
    expect(laneSettings(config, { config, logger }).map((l) => l.maxRatePerSecond)).toEqual([0, 0, 0]);
  });

  it('holds the lane to it: 60 messages at 100/s take about 0.6 s', async () => {
    const { work, engine, publisher } = engineSetup({ maxRatePerSecond: 100, concurrency: 8 });
    const started: number[] = [];
    const t0 = performance.now();
    engine.accept(
      't',
      0,
      Array.from({ length: 60 }, (_, i) => message(0, i, 'read', '')),
    );
    while (started.length < 60 && performance.now() - t0 < 5_000) {
      while (work.runs.length > 0) {
        work.succeed(0);
        started.push(performance.now() - t0);
      }
      while (publisher.pending.length > 0) publisher.ack();
      await new Promise((r) => setTimeout(r, 5));
    }
    const elapsed = started[started.length - 1] as number;
    // A tenth of a second's worth may start at once; the rest at the rate.
    expect(started).toHaveLength(60);
    expect(elapsed).toBeGreaterThan(450);
    expect(elapsed).toBeLessThan(1_500);
  });
});

describe('timeouts and resource errors', () => {
  it('are bounded: classified as not transient, with their class', () => {
    for (const [code, errorClass] of [
      ['57014', 'StatementTimeout'],
      ['55P03', 'LockNotAvailable'],
      ['53400', 'InsufficientResources'],
      ['58000', 'SystemError'],
    ] as const) {
      const classified = classifyDbError(Object.assign(new Error('x'), { code }));
      expect(classified).toBeInstanceOf(RetryableError);
      expect(classifyFailure(classified)).toMatchObject({ kind: 'permanent', errorClass });
    }
    for (const code of ['40001', '40P01', '57P01', '08006']) {
      expect(classifyFailure(classifyDbError(Object.assign(new Error('x'), { code })))).toMatchObject({
        kind: 'transient',
      });
    }
  });

  it("are recognised by their text only when they are the driver's own, never when they quote a producer", () => {
    const transient = (err: unknown) => classifyFailure(classifyDbError(err)).kind === 'transient';
    expect(transient(new Error('Connection terminated unexpectedly'))).toBe(true);
    expect(transient(new Error('timeout exceeded when trying to connect'))).toBe(true);
    const closed = 'database "pw_1" is not currently accepting connections';
    expect(transient(Object.assign(new Error(closed), { code: '55000' }))).toBe(true);
    // A SQLSTATE says what it is; the text of these echoes what was sent.
    const echo = 'invalid input syntax for type uuid: "terminating connection"';
    expect(transient(Object.assign(new Error(echo), { code: '22P02' }))).toBe(false);
    expect(transient(new SyntaxError('Unexpected token in "Connection closed" at 4'))).toBe(false);
    expect(transient(new TypeError('cannot read "connection terminated"'))).toBe(false);
  });

  it('a message whose statement always times out is given up on after maxAttempts, and the partition moves on', async () => {
    const { work, engine, publisher, control } = engineSetup({ maxAttempts: 3 });
    engine.accept('t', 0, [message(0, 0, 'write', 'a'), message(0, 1, 'write', 'b')], 2n);
    await flush();
    work.succeed(work.runs.findIndex((r) => r.items[0]?.key === 'b'));
    const timeout = () =>
      new RetryableError('statement timeout or cancel', { bounded: true, errorClass: 'StatementTimeout' });
    for (let attempt = 1; attempt <= 3; attempt++) {
      for (let i = 0; i < 50 && !work.runs.some((r) => r.items[0]?.key === 'a'); i++)
        await new Promise((r) => setTimeout(r, 2));
      work.fail(
        work.runs.findIndex((r) => r.items[0]?.key === 'a'),
        timeout(),
      );
      await flush();
    }
    expect(work.gaveUp).toHaveLength(1);
    expect(work.gaveUp[0]?.attempt).toBe(3);
    while (publisher.pending.length > 0) publisher.ack();
    await flush();
    expect(control.committed(0)).toBe(2n);
  });
});

describe('flow control', () => {
  it('pauses a partition whose commit point is stuck once enough finished messages pile up behind it', async () => {
    const { work, engine, publisher, control } = engineSetup({ maxUncommittedMessages: 10, concurrency: 4 });
    // Offset 0 keeps running; 1..14 finish behind it.
    engine.accept(
      't',
      0,
      Array.from({ length: 15 }, (_, i) => message(0, i, 'read', '')),
    );
    for (let i = 0; i < 30; i++) {
      await flush();
      const next = work.runs.findIndex((r) => r.items[0]?.message.offset !== '0');
      if (next < 0) break;
      work.succeed(next);
      await flush();
      while (publisher.pending.length > 0) publisher.ack();
    }
    expect(control.committed(0)).toBe(-1n);
    expect(control.paused.has('t:0')).toBe(true);
    // The stuck one finishes: everything commits and fetching resumes.
    work.succeed(work.runs.findIndex((r) => r.items[0]?.message.offset === '0'));
    await flush();
    while (publisher.pending.length > 0) publisher.ack();
    await flush();
    expect(control.committed(0)).toBe(15n);
    expect(control.paused.has('t:0')).toBe(false);
  });

  it('starts no new unit while the results waiting for the broker are above their bound', async () => {
    const { work, engine, publisher } = engineSetup({ maxPendingPublishBytes: 1_000, concurrency: 4 });
    publisher.pendingBytes = 5_000;
    engine.accept('t', 0, [message(0, 0, 'read', ''), message(0, 1, 'read', '')]);
    await flush();
    expect(work.runs).toHaveLength(0);
    publisher.pendingBytes = 0;
    // The next ack (here: any finished unit) pumps again; a fresh accept does too.
    engine.accept('t', 0, [message(0, 2, 'read', '')]);
    await flush();
    expect(work.runs).toHaveLength(3);
  });
});

describe('backoff', () => {
  it("starts a backing-off partition's queued messages even when its wake-up timer fires early", async () => {
    const { work, engine } = engineSetup({ concurrency: 1, backoff: { initialMs: 20, maxMs: 20 } });
    engine.assigned([{ topic: 't', partition: 0 }]);
    engine.accept('t', 0, [message(0, 0, 'write', 'a'), message(0, 1, 'read', '')], 2n);
    await flush();
    // Timers run on the event loop's cached clock and can fire before Date.now() reaches the backoff's
    // end: hold Date.now() still, so every timer of the backoff fires "early".
    const frozen = Date.now();
    const realNow = Date.now.bind(Date);
    Date.now = () => frozen;
    try {
      work.fail(0, new RetryableError('deadlock detected'));
      await new Promise((r) => setTimeout(r, 60));
      // The retry runs (it does not wait for the backoff); the read behind it may not start yet.
      expect(work.runs.map((r) => r.unit.messages[0]?.offset)).toEqual(['0']);
      work.succeed(0);
      await flush();
    } finally {
      Date.now = realNow;
    }
    // Nothing else happens on this lane: the pump must wake by itself once the backoff has ended.
    await new Promise((r) => setTimeout(r, 100));
    expect(work.runs.map((r) => r.unit.messages[0]?.offset)).toEqual(['1']);
  });
});

describe('lane start and crash', () => {
  const options = ({ kafka, ports }: ReturnType<typeof fakeKafka>) => {
    const config = loadConfig(env);
    return {
      kafka,
      ports,
      lanes: laneSettings(config, { config, logger }),
      work: new FakeWork(),
      checkRecord: () => undefined,
      lifecycle: new Lifecycle(),
      logger,
      readiness: new Readiness(),
    };
  };

  it('the writes lane runs WORKER_WRITES_CONCURRENCY_WHILE_READS units while the reads lane has work, and fills up when it goes idle', async () => {
    const fake = fakeKafka();
    const config = loadConfig({
      ...env,
      WORKER_WRITES_CONCURRENCY: '3',
      WORKER_WRITES_CONCURRENCY_WHILE_READS: '1',
    });
    const work = new FakeWork();
    const worker = new Worker({ ...options(fake), lanes: laneSettings(config, { config, logger }), work });
    await worker.start();
    const lane = (name: string) => worker.lanes.find((l) => l.lane === name)?.engine;
    const running = () => work.runs.map((r) => r.unit.lane);
    lane('reads')?.accept('pattern.search.request', 0, [message(0, 0, 'read', '')]);
    lane('writes')?.accept(
      'pattern.insert',
      0,
      ['a', 'b', 'c'].map((k, i) => message(0, i, 'write', k)),
    );
    await flush();
    expect(running().sort()).toEqual(['reads', 'writes']);
    // The search is done: the writes lane takes its whole budget.
    work.succeed(running().indexOf('reads'));
    await flush();
    expect(running()).toEqual(['writes', 'writes', 'writes']);
    await worker.stop(100).catch(() => undefined);
  });

  it('WORKER_LANES runs only the lanes it names; writes without a reads lane here take their whole budget', async () => {
    const config = loadConfig({ ...env, WORKER_LANES: 'writes,analytics', WORKER_WRITES_CONCURRENCY: '3' });
    const lanes = laneSettings(config, { config, logger });
    expect(lanes.map((l) => [l.name, l.groupId])).toEqual([
      ['writes', 'pattern-worker.writes'],
      ['analytics', 'pattern-worker.analytics'],
    ]);
    expect(lanes[0]?.yieldTo).toBeUndefined();
    const fake = fakeKafka();
    const work = new FakeWork();
    const worker = new Worker({ ...options(fake), lanes, work });
    await worker.start();
    // Only the two lanes' groups were joined.
    expect(fake.members.map((m) => m.options.groupId)).toEqual([
      'pattern-worker.writes',
      'pattern-worker.analytics',
    ]);
    worker.lanes[0]?.engine.accept(
      'pattern.insert',
      0,
      ['a', 'b', 'c'].map((k, i) => message(0, i, 'write', k)),
    );
    await flush();
    expect(work.runs.map((r) => r.unit.lane)).toEqual(['writes', 'writes', 'writes']);
    await worker.stop(100).catch(() => undefined);
  });

  it('a lane that cannot start stops the lanes that did, and the start fails naming it', async () => {
    const fake = fakeKafka((member, index) => {
      if (index === 1) member.failStart = new Error('SASL authentication failed');
    });
    const worker = new Worker(options(fake));
    await expect(worker.start()).rejects.toThrow(/lane reads could not start: SASL authentication failed/);
    // The lanes that had started left the group again.
    for (const member of [fake.members[0], fake.members[2]]) expect(member?.calls).toContain('close');
  });

  it('a member that loses its group for good while a partition is paused is replaced, the paused partition starting again', async () => {
    const { lane, members } = fakeLane({
      env: { WORKER_RETRY_INITIAL_MS: '1', WORKER_RETRY_MAX_MS: '2' },
      settings: { maxBufferedMessages: 1 },
    });
    await lane.start();
    const first = members[0];
    // Two messages over a buffer of one: the partition pauses.
    lane.engine.accept('pattern.usage', 0, [message(0, 0, 'write', 'a'), message(0, 1, 'write', 'b')]);
    expect(first?.calls).toContain('pause');
    expect(() => first?.options.hooks.onFatal(new Error('no heartbeat accepted for 30000 ms'))).not.toThrow();
    for (let i = 0; i < 100 && !members[1]?.calls.includes('start'); i++)
      await new Promise((r) => setTimeout(r, 5));
    expect(members).toHaveLength(2);
    expect(first?.calls).toContain('close');
    expect(members[1]?.calls).toContain('start');
    // A late record from the old member is not taken.
    first?.options.hooks.onRecords('pattern.usage', 1, [], 5n, 5n);
    await lane.stop(100);
  });

  it('a revocation drops only the revoked partition: the kept one goes on with its queued work', async () => {
    const { lane, members, work } = fakeLane({ settings: { concurrency: 2 } });
    await lane.start();
    const hooks = members[0]?.options.hooks;
    const both = [
      { topic: 't', partition: 0 },
      { topic: 't', partition: 1 },
    ];
    hooks?.onAssignment(both, []);
    lane.engine.accept('t', 0, [message(0, 0, 'write', 'a'), message(0, 1, 'write', 'a')]);
    lane.engine.accept('t', 1, [message(1, 0, 'write', 'b'), message(1, 1, 'write', 'b')]);
    await flush();
    // Each partition's first message runs; the second waits for it (same key).
    expect(work.runs).toHaveLength(2);
    hooks?.onAssignment([], [{ topic: 't', partition: 1 }]);
    for (let i = 0; i < 10 && work.runs.length > 0; i++) {
      work.succeed(0);
      await flush();
      await flush();
    }
    // The in-flight message of the revoked partition finished; its queued one was dropped (its new owner
    // takes it from the committed offset); the kept partition went on with its queue.
    expect(work.effectOrder).toEqual(expect.arrayContaining(['0/a/0', '0/a/1', '1/b/0']));
    expect(work.effectOrder).not.toContain('1/b/1');
    await lane.stop(100);
  });

  it('a replay pass ends at its end offset, but takes an unreadable batch that starts below it', async () => {
    const { lane, members, work } = fakeLane({ endOffset: () => 3n });
    await lane.start();
    const hooks = members[0]?.options.hooks;
    hooks?.onAssignment([{ topic: 'pattern.usage', partition: 0 }], []);
    const record = (offset: bigint, value: string | null) => ({
      topic: 'pattern.usage',
      partition: 0,
      offset,
      timestamp: 1_780_000_000_000n,
      key: null,
      value: value === null ? null : Buffer.from(value),
      headers: [],
    });
    // Offsets 0-1 readable; 2-4 one batch too large to read, standing at 4; then 5, past the end.
    hooks?.onRecords(
      'pattern.usage',
      0,
      [
        record(0n, '{}'),
        record(1n, '{}'),
        { ...record(4n, null), unreadable: { tooLarge: true, message: 'm', records: 3, firstOffset: 2n } },
        record(5n, '{}'),
      ],
      6n,
      6n,
    );
    await flush();
    for (let i = 0; i < 10 && work.runs.length > 0; i++) {
      work.succeed(0);
      await flush();
    }
    const offsets = work.effectOrder.map((e) => e.split('/').at(-1));
    expect(offsets).toEqual(['0', '1', '4']);
    await lane.stop(100);
  });
});

describe('a partition held by an open transaction', () => {
  it('keeps its lag current without records, and is named once held for 30 s, then its release', async () => {
    const lines: { level: number; msg: string; records_behind?: string }[] = [];
    const sink = { write: (line: string) => void lines.push(JSON.parse(line) as (typeof lines)[number]) };
    const lifecycle = new Lifecycle();
    const lags: number[] = [];
    lifecycle.on('partition.fetched', ({ lag }) => lags.push(lag));
    const { lane, members } = fakeLane({ logger: createLogger('info', {}, sink), lifecycle });
    await lane.start();
    const hooks = members[0]?.options.hooks;
    hooks?.onAssignment([{ topic: 'pattern.usage', partition: 0 }], []);
    const realNow = Date.now;
    let now = realNow();
    Date.now = () => now;
    try {
      // A producer's transaction opened at offset 4; records up to 10 wait behind it.
      hooks?.onEnds?.('pattern.usage', 0, { position: 4n, stableOffset: 4n, highWatermark: 10n });
      now += 29_000;
      hooks?.onEnds?.('pattern.usage', 0, { position: 4n, stableOffset: 4n, highWatermark: 11n });
      expect(lines.filter((l) => l.level === 40)).toEqual([]);
      now += 1_000;
      hooks?.onEnds?.('pattern.usage', 0, { position: 4n, stableOffset: 4n, highWatermark: 11n });
      hooks?.onEnds?.('pattern.usage', 0, { position: 4n, stableOffset: 4n, highWatermark: 11n });
      const warned = lines.filter((l) => l.level === 40);
      expect(warned).toHaveLength(1);
      expect(warned[0]?.msg).toMatch(
        /pattern.usage\/0 is held at offset 4 by a transaction .* 7 records wait .*transaction.max.timeout.ms/,
      );
      expect(warned[0]?.records_behind).toBe('7');
      // The broker aborts it.
      hooks?.onEnds?.('pattern.usage', 0, { position: 4n, stableOffset: 12n, highWatermark: 12n });
      expect(lines.at(-1)?.msg).toBe('pattern.usage/0 is no longer held');
      expect(lags).toEqual([6, 7, 7, 7, 8]);
    } finally {
      Date.now = realNow;
      await lane.stop(100);
    }
  });
});

describe("a partition's lag", () => {
  it('is counted from the highest end said: a fetch answer handed over late says an older one', async () => {
    const lifecycle = new Lifecycle();
    const lags: [number, bigint][] = [];
    lifecycle.on('partition.fetched', ({ lag, highWatermark }) => lags.push([lag, highWatermark]));
    const { lane, members } = fakeLane({ lifecycle });
    await lane.start();
    const hooks = members[0]?.options.hooks;
    hooks?.onAssignment([{ topic: 'pattern.usage', partition: 0 }], []);
    // Read apart from fetching while paused behind a backlog, then a fetch answer of seconds before.
    hooks?.onHighWatermark?.('pattern.usage', 0, 142n, 4_177n);
    hooks?.onEnds?.('pattern.usage', 0, { position: 3_072n, stableOffset: 3_072n, highWatermark: 3_072n });
    expect(lags).toEqual([
      [4_035, 4_177n],
      [1_105, 4_177n],
    ]);
    // A partition assigned again starts afresh (its log may have been truncated or recreated meanwhile).
    hooks?.onAssignment([], [{ topic: 'pattern.usage', partition: 0 }]);
    hooks?.onAssignment([{ topic: 'pattern.usage', partition: 0 }], []);
    hooks?.onEnds?.('pattern.usage', 0, { position: 10n, stableOffset: 12n, highWatermark: 12n });
    expect(lags.at(-1)).toEqual([2, 12n]);
    await lane.stop(100);
  });

  it('is no longer said once the partition went to another member', async () => {
    const lifecycle = new Lifecycle();
    const said = new Map<string, number>();
    const metrics = {
      lag: (topic: string, partition: number, lag: number) => said.set(`${topic}/${partition}`, lag),
      forgetLag: (topic: string, partition: number) => said.delete(`${topic}/${partition}`),
      skipped: () => undefined,
    } as unknown as WorkerMetrics;
    observeMetrics(lifecycle, metrics);
    const { lane, members } = fakeLane({ lifecycle });
    await lane.start();
    const hooks = members[0]?.options.hooks;
    const partitions = [0, 1].map((partition) => ({ topic: 'pattern.usage', partition }));
    hooks?.onAssignment(partitions, []);
    hooks?.onHighWatermark?.('pattern.usage', 0, 0n, 3_087n);
    hooks?.onHighWatermark?.('pattern.usage', 1, 0n, 40n);
    expect([...said]).toEqual([
      ['pattern.usage/0', 3_087],
      ['pattern.usage/1', 40],
    ]);
    // A series frozen at its last value over-counted the group's lag by 57% after a worker joined.
    hooks?.onAssignment([], [partitions[0] as (typeof partitions)[number]]);
    expect([...said]).toEqual([['pattern.usage/1', 40]]);
    await lane.stop(100);
  });
});
