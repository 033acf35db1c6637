// The processing engine of one lane: takes in fetched messages, runs up to `concurrency` units at once
// across the lane's partitions (order rules in partition-scheduler.ts), hands each unit's records to the
// publisher without waiting for the acks of the ones before, and commits each partition's offset only
// below its lowest message whose effect or result is not done (offset-tracker.ts). Failures: transient
// ones back the partition off and retry for as long as they last; any other error is retried
// `maxAttempts` times, then its message is answered with INTERNAL and dead-lettered.
import type { Logger } from '../../telemetry/logger.ts';
import { backoffDelay, type BackoffPolicy } from './backoff.ts';
import { classifyFailure, describeFailure, type Failure } from './failures.ts';
import type { InboundMessage, OutboundRecord } from './records.ts';
import type { Lifecycle, UnitView } from './lifecycle.ts';
import { OffsetTracker } from './offset-tracker.ts';
import type { UnitOutput } from '../stages/outcomes.ts';
import { PartitionScheduler } from './partition-scheduler.ts';
import type { Schedulable, UnitWork } from '../stages/unit-pipeline.ts';

/** What the engine asks of its consumer: flow control and commits. */
export interface ConsumerControl {
  pause(topic: string, partition: number): void;
  resume(topic: string, partition: number): void;
  commit(offsets: { topic: string; partition: number; offset: string }[]): Promise<void>;
}

/** Publishes records in the order they are handed over; resolves once the broker has acknowledged them. */
export interface RecordSink {
  publish(records: OutboundRecord[]): Promise<void>;
}

export interface LaneEngineOptions<P extends Schedulable> {
  lane: string;
  work: UnitWork<P>;
  publisher: RecordSink;
  control: ConsumerControl;
  lifecycle: Lifecycle;
  logger: Logger;
  /** Units running at once in this lane. */
  concurrency: number;
  /** Tries of a message that fails with an error that is not transient. */
  maxAttempts: number;
  backoff: BackoffPolicy;
  /** Most usage events in one transaction. */
  maxBatch: number;
  /** A partition's fetching pauses above this many unfinished messages, and resumes below half. */
  maxBufferedMessages: number;
  /** The lane's fetching pauses above this many buffered bytes, per partition that receives. */
  maxBufferedBytes: number;
  /** Messages started per second at most (replay's budget); unlimited when absent. */
  maxRatePerSecond?: number | undefined;
  random?: () => number;
}

interface PartitionState<P extends Schedulable> {
  topic: string;
  partition: number;
  tracker: OffsetTracker;
  scheduler: PartitionScheduler<P>;
  /** Units picked and not done (running, waiting to retry, or waiting for their publish acks). */
  inFlight: number;
  retired: boolean;
  predecessor: PartitionState<P> | undefined;
  backoffUntil: number;
  transientStreak: number;
  paused: boolean;
  bytes: number;
  committed: bigint;
}

interface Unit<P extends Schedulable> {
  id: number;
  phase: 'running' | 'waiting' | 'publishing';
  state: PartitionState<P>;
  items: P[];
  batched: boolean;
  keys: string[];
  attempt: number;
  startedAt: number;
}

/** Most bytes of request values in one usage batch: with WORKER_BATCH_SIZE events of up to 1 MiB each, a
 * batch could otherwise need hundreds of MiB, more than the shipped heap settings allow. */
const MAX_BATCH_BYTES = 4 * 1024 * 1024;

const sizeOf = (m: InboundMessage) => (m.value?.length ?? 0) + (m.key?.length ?? 0) + 64;
const keyOf = (topic: string, partition: number) => `${topic}\u0000${partition}`;

export class LaneEngine<P extends Schedulable> {
  readonly #o: LaneEngineOptions<P>;
  readonly #states = new Map<string, PartitionState<P>>();
  /** Partitions in the order units are taken from them (round robin). */
  #order: PartitionState<P>[] = [];
  #cursor = 0;
  readonly #retryReady: Unit<P>[] = [];
  readonly #timers = new Set<NodeJS.Timeout>();
  readonly #live = new Set<Unit<P>>();
  #running = 0;
  #bytes = 0;
  #nextId = 1;
  #closing = false;
  #committing: Promise<void> | undefined;
  #commitAgain = false;
  #idleWaiters: (() => void)[] = [];
  /** Rate budget: messages that may still start; refilled at maxRatePerSecond, may run into debt. */
  #tokens = 0;
  #tokensAt = performance.now();
  #rateWake: NodeJS.Timeout | undefined;

  constructor(options: LaneEngineOptions<P>) {
    this.#o = options;
  }

  get lane(): string {
    return this.#o.lane;
  }

  get running(): number {
    return this.#running;
  }

  /** Takes in messages fetched from one partition, in offset order. `fetchedTo`: one past the batch's last offset. */
  accept(topic: string, partition: number, messages: readonly InboundMessage[], fetchedTo?: bigint): void {
    if (this.#closing || messages.length === 0) return;
    const state = this.#state(topic, partition, BigInt((messages[0] as InboundMessage).offset));
    for (const message of messages) {
      const offset = BigInt(message.offset);
      if (offset < state.tracker.fetchedEnd) continue; // fetched again after a retry of the fetch
      state.tracker.add(offset);
      const item = this.#o.work.prepare(message);
      if (item.skip) {
        state.tracker.finish(offset);
        this.#o.lifecycle.emit('unit.done', {
          unit: this.#view(state, [item], false, 1, 0),
          durationMs: 0,
          skipped: true,
        });
        continue;
      }
      const size = sizeOf(message);
      state.bytes += size;
      this.#bytes += size;
      state.scheduler.push(item);
    }
    if (fetchedTo !== undefined) state.tracker.fetchedTo(fetchedTo);
    this.#progress(state);
    this.#pauseIfFull(state);
    this.#pump();
  }

  /** The group's assignment changed: every partition starts again from its committed offset. */
  reassigned(): void {
    for (const state of this.#states.values()) this.#retire(state);
    this.#states.clear();
    this.#order = [];
    this.#cursor = 0;
  }

  /** Stops taking new work, lets running units finish and publish, commits, within `timeoutMs`. */
  async drain(timeoutMs: number): Promise<void> {
    this.#closing = true;
    if (this.#rateWake) clearTimeout(this.#rateWake);
    for (const state of this.#states.values()) this.#dropQueued(state);
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    for (const unit of this.#retryReady.splice(0)) this.#drop(unit);
    // Units waiting to retry stop here; running and publishing ones are waited for.
    for (const unit of [...this.#live]) if (unit.phase === 'waiting') this.#drop(unit);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.#whenIdle(),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, timeoutMs);
      }),
    ]);
    clearTimeout(timer);
    // The last commit, after one that may still be in flight.
    await this.#commit();
    if (this.#commitAgain || this.#hasUncommitted()) await this.#commit();
  }

  #hasUncommitted(): boolean {
    for (const state of this.#states.values()) if (state.tracker.safe > state.committed) return true;
    return false;
  }

  // ---- taking work

  #state(topic: string, partition: number, start: bigint): PartitionState<P> {
    const key = keyOf(topic, partition);
    let state = this.#states.get(key);
    if (state) return state;
    const predecessor = this.#retiredStates.get(key);
    state = {
      topic,
      partition,
      tracker: new OffsetTracker(start),
      scheduler: new PartitionScheduler<P>({ maxBatch: this.#o.maxBatch, maxBatchBytes: MAX_BATCH_BYTES }),
      inFlight: 0,
      retired: false,
      predecessor: predecessor && predecessor.inFlight > 0 ? predecessor : undefined,
      backoffUntil: 0,
      transientStreak: 0,
      paused: false,
      bytes: 0,
      committed: start,
    };
    this.#states.set(key, state);
    this.#order.push(state);
    return state;
  }

  /** Retired states with work still in flight: their successors wait for them. */
  readonly #retiredStates = new Map<string, PartitionState<P>>();

  #retire(state: PartitionState<P>): void {
    state.retired = true;
    this.#dropQueued(state);
    for (let i = this.#retryReady.length - 1; i >= 0; i--) {
      const unit = this.#retryReady[i] as Unit<P>;
      if (unit.state === state) {
        this.#retryReady.splice(i, 1);
        this.#drop(unit);
      }
    }
    if (state.paused) {
      state.paused = false;
      this.#o.control.resume(state.topic, state.partition);
    }
    const key = keyOf(state.topic, state.partition);
    if (state.inFlight > 0) this.#retiredStates.set(key, state);
    else this.#retiredStates.delete(key);
  }

  #dropQueued(state: PartitionState<P>): void {
    for (const item of state.scheduler.clear()) {
      const size = sizeOf(item.message);
      state.bytes -= size;
      this.#bytes -= size;
    }
  }

  /** A unit that will not run again here (its partition moved, or the lane stops). */
  #drop(unit: Unit<P>): void {
    this.#live.delete(unit);
    unit.state.scheduler.release(unit.keys);
    this.#unitGone(unit);
  }

  #ready(state: PartitionState<P>, now: number): boolean {
    if (state.retired || now < state.backoffUntil) return false;
    return !state.predecessor || state.predecessor.inFlight === 0;
  }

  /** False when the rate budget is spent; then wakes the pump once it is positive again. */
  #withinRate(): boolean {
    const rate = this.#o.maxRatePerSecond;
    if (!rate) return true;
    const now = performance.now();
    const burst = Math.max(this.#o.maxBatch, rate / 10);
    this.#tokens = Math.min(burst, this.#tokens + ((now - this.#tokensAt) / 1000) * rate);
    this.#tokensAt = now;
    if (this.#tokens > 0) return true;
    if (!this.#rateWake) {
      this.#rateWake = setTimeout(
        () => {
          this.#rateWake = undefined;
          this.#pump();
        },
        Math.ceil(((1 - this.#tokens) / rate) * 1000),
      );
    }
    return false;
  }

  #pump(): void {
    if (this.#closing) return;
    const now = Date.now();
    while (this.#running < this.#o.concurrency) {
      const retry = this.#retryReady.shift();
      if (retry) {
        this.#start(retry);
        continue;
      }
      if (!this.#withinRate()) break;
      const unit = this.#pick(now);
      if (!unit) break;
      if (this.#o.maxRatePerSecond) this.#tokens -= unit.items.length;
      this.#start(unit);
    }
    this.#o.lifecycle.emit('lane.load', {
      lane: this.#o.lane,
      running: this.#running,
      queued: this.#queued(),
    });
  }

  #queued(): number {
    let n = 0;
    for (const s of this.#order) n += s.scheduler.queued;
    return n;
  }

  #pick(now: number): Unit<P> | undefined {
    const count = this.#order.length;
    for (let i = 0; i < count; i++) {
      const index = (this.#cursor + i) % count;
      const state = this.#order[index] as PartitionState<P>;
      if (!this.#ready(state, now)) continue;
      const picked = state.scheduler.next();
      if (!picked) continue;
      this.#cursor = (index + 1) % count;
      state.scheduler.hold(picked.keys);
      state.inFlight += 1;
      const unit: Unit<P> = {
        id: this.#nextId++,
        state,
        items: picked.items,
        batched: picked.batched,
        keys: picked.keys,
        attempt: 1,
        startedAt: performance.now(),
        phase: 'waiting',
      };
      this.#live.add(unit);
      return unit;
    }
    return undefined;
  }

  // ---- running a unit

  #view(
    state: PartitionState<P>,
    items: readonly P[],
    batched: boolean,
    attempt: number,
    id: number,
  ): UnitView {
    return {
      id,
      lane: this.#o.lane,
      topic: state.topic,
      partition: state.partition,
      messages: items.map((i) => i.message),
      items: items.map((i) => ({ correlationId: i.correlationId, operation: i.request?.operation })),
      batched,
      attempt,
      startedAt: performance.now(),
    };
  }

  #start(unit: Unit<P>): void {
    this.#running += 1;
    unit.phase = 'running';
    const view = this.#view(unit.state, unit.items, unit.batched, unit.attempt, unit.id);
    const { lifecycle, work } = this.#o;
    lifecycle.emit('unit.started', { unit: view });
    Promise.resolve()
      .then(() => lifecycle.run(view, () => work.run(view, unit.items)))
      .then(
        (output) => this.#applied(unit, view, output),
        (err: unknown) => this.#failed(unit, view, err),
      )
      .catch((err: unknown) =>
        this.#o.logger.error({ err, lane: this.#o.lane }, 'engine bookkeeping failed'),
      );
  }

  #stopRunning(unit: Unit<P>): void {
    this.#running -= 1;
    unit.phase = 'waiting';
  }

  #applied(unit: Unit<P>, view: UnitView, output: UnitOutput): void {
    this.#stopRunning(unit);
    unit.state.transientStreak = 0;
    this.#o.lifecycle.emit('unit.applied', { unit: view });
    this.#publish(unit, view, output);
  }

  /** Hands the records over in effect order, then frees the unit's keys for the next write of each. */
  #publish(unit: Unit<P>, view: UnitView, output: UnitOutput): void {
    unit.phase = 'publishing';
    const published =
      output.records.length > 0 ? this.#o.publisher.publish(output.records) : Promise.resolve();
    unit.state.scheduler.release(unit.keys);
    this.#pump();
    published
      .then(
        () => this.#done(unit, view),
        (err: unknown) => {
          // Only a closed publisher rejects: the offsets stay uncommitted and the messages come again.
          this.#o.logger.warn(
            { err: describeFailure(classifyFailure(err)), lane: this.#o.lane },
            'results not published',
          );
          this.#live.delete(unit);
          this.#unitGone(unit);
        },
      )
      .catch((err: unknown) =>
        this.#o.logger.error({ err, lane: this.#o.lane }, 'engine bookkeeping failed'),
      );
  }

  #done(unit: Unit<P>, view: UnitView): void {
    this.#live.delete(unit);
    const { state } = unit;
    if (!state.retired) {
      for (const item of unit.items) state.tracker.finish(BigInt(item.message.offset));
    }
    this.#o.lifecycle.emit('unit.done', {
      unit: view,
      durationMs: performance.now() - unit.startedAt,
      skipped: false,
    });
    this.#unitGone(unit);
    if (!state.retired) {
      this.#progress(state);
      void this.#commit();
    }
    this.#resumeReady();
  }

  /** The unit is over here. Its messages leave the buffer unless they went back to the queue. */
  #unitGone(unit: Unit<P>, requeued = false): void {
    const { state } = unit;
    state.inFlight -= 1;
    if (!requeued) {
      for (const item of unit.items) {
        const size = sizeOf(item.message);
        state.bytes -= size;
        this.#bytes -= size;
      }
    }
    if (state.retired && state.inFlight === 0) {
      const key = keyOf(state.topic, state.partition);
      if (this.#retiredStates.get(key) === state) this.#retiredStates.delete(key);
    }
    if (this.#live.size === 0) for (const resolve of this.#idleWaiters.splice(0)) resolve();
    this.#pump();
  }

  #failed(unit: Unit<P>, view: UnitView, err: unknown): void {
    this.#stopRunning(unit);
    const failure = classifyFailure(err);
    const { state } = unit;
    const { logger, lifecycle, maxAttempts, backoff } = this.#o;
    const where = {
      lane: this.#o.lane,
      topic: state.topic,
      partition: state.partition,
      offset: view.messages[0]?.offset,
    };
    if (failure.kind === 'transient') {
      state.transientStreak += 1;
      const delay = backoffDelay(backoff, state.transientStreak - 1, this.#o.random);
      state.backoffUntil = Math.max(state.backoffUntil, Date.now() + delay);
      logger.warn(
        { ...where, attempt: unit.attempt, retry_in_ms: delay, reason: describeFailure(failure) },
        'transient failure; backing this partition off and retrying',
      );
      lifecycle.emit('unit.failed', { unit: view, error: err, failure, retryInMs: delay });
      this.#retryLater(unit, delay);
      return;
    }
    if (unit.attempt >= maxAttempts) {
      logger.error(
        { ...where, attempts: unit.attempt, err, error_class: failure.errorClass },
        'giving up on the message after its last attempt; answering INTERNAL and dead-lettering it',
      );
      lifecycle.emit('unit.failed', { unit: view, error: err, failure, retryInMs: null });
      let output: UnitOutput;
      try {
        output = this.#o.work.giveUp(view, unit.items, failure);
      } catch (giveUpErr) {
        logger.error(
          { ...where, err: giveUpErr },
          'could not build the INTERNAL results; retrying the message later',
        );
        this.#retryLater(unit, backoffDelay(backoff, unit.attempt, this.#o.random));
        return;
      }
      this.#publish(unit, view, output);
      return;
    }
    if (unit.batched) {
      // One bad event must not fail its whole batch: its events get their own tries, one at a time.
      logger.warn(
        { ...where, size: unit.items.length, reason: describeFailure(failure) },
        'usage batch failed; trying its events one at a time',
      );
      lifecycle.emit('unit.failed', { unit: view, error: err, failure, retryInMs: 0 });
      state.scheduler.release(unit.keys);
      state.scheduler.putBackSolo(unit.items);
      this.#live.delete(unit);
      this.#unitGone(unit, true);
      return;
    }
    const delay = backoffDelay(backoff, unit.attempt - 1, this.#o.random);
    logger.error(
      { ...where, attempt: unit.attempt, max_attempts: maxAttempts, retry_in_ms: delay, err },
      'processing failed; retrying',
    );
    lifecycle.emit('unit.failed', { unit: view, error: err, failure, retryInMs: delay });
    this.#retryLater(unit, delay);
  }

  #retryLater(unit: Unit<P>, delay: number): void {
    unit.attempt += 1;
    if (this.#closing) {
      this.#drop(unit);
      return;
    }
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      if (unit.state.retired || this.#closing) {
        this.#drop(unit);
        return;
      }
      this.#retryReady.push(unit);
      this.#pump();
    }, delay);
    this.#timers.add(timer);
    if (unit.state.backoffUntil > Date.now()) {
      // Pump again when the partition's backoff ends, for the units queued behind it.
      const wake = setTimeout(() => {
        this.#timers.delete(wake);
        this.#pump();
      }, unit.state.backoffUntil - Date.now());
      this.#timers.add(wake);
    }
  }

  // ---- offsets and flow control

  #progress(state: PartitionState<P>): void {
    this.#o.lifecycle.emit('partition.progress', {
      lane: this.#o.lane,
      topic: state.topic,
      partition: state.partition,
      position: state.tracker.safe,
    });
  }

  /** A partition that just received stops fetching while it, or the lane, holds too much. */
  #pauseIfFull(state: PartitionState<P>): void {
    const { maxBufferedMessages, maxBufferedBytes, control, lifecycle, lane } = this.#o;
    if (state.retired || state.paused) return;
    if (state.tracker.unfinished <= maxBufferedMessages && this.#bytes <= maxBufferedBytes) return;
    state.paused = true;
    control.pause(state.topic, state.partition);
    lifecycle.emit('partition.paused', {
      lane,
      topic: state.topic,
      partition: state.partition,
      reason: 'buffer',
    });
  }

  /** Paused partitions fetch again once the lane is below half its bytes and each below half its messages. */
  #resumeReady(): void {
    const { maxBufferedMessages, maxBufferedBytes, control, lifecycle, lane } = this.#o;
    if (this.#bytes > maxBufferedBytes / 2) return;
    for (const state of this.#order) {
      if (!state.paused || state.retired || state.tracker.unfinished > maxBufferedMessages / 2) continue;
      state.paused = false;
      control.resume(state.topic, state.partition);
      lifecycle.emit('partition.resumed', { lane, topic: state.topic, partition: state.partition });
    }
  }

  /** Commits every partition whose safe offset moved; one commit request at a time, coalescing the rest. */
  #commit(): Promise<void> {
    if (this.#committing) {
      this.#commitAgain = true;
      return this.#committing;
    }
    const offsets: {
      topic: string;
      partition: number;
      offset: string;
      state: PartitionState<P>;
      safe: bigint;
    }[] = [];
    for (const state of this.#states.values()) {
      const safe = state.tracker.safe;
      if (safe > state.committed)
        offsets.push({
          topic: state.topic,
          partition: state.partition,
          offset: safe.toString(),
          state,
          safe,
        });
    }
    if (offsets.length === 0) return Promise.resolve();
    const request = offsets.map(({ topic, partition, offset }) => ({ topic, partition, offset }));
    this.#committing = this.#o.control
      .commit(request)
      .then(
        () => {
          for (const o of offsets) if (o.safe > o.state.committed) o.state.committed = o.safe;
          this.#o.lifecycle.emit('offsets.committed', { lane: this.#o.lane, offsets: request });
        },
        (err: unknown) => {
          // A rebalance or a broker outage; the next finished unit commits again (the offsets only grow).
          this.#o.logger.warn(
            { lane: this.#o.lane, err: describeFailure(classifyFailure(err)) },
            'offset commit failed; will commit again',
          );
        },
      )
      .finally(() => {
        this.#committing = undefined;
        if (this.#commitAgain) {
          this.#commitAgain = false;
          void this.#commit();
        }
      });
    return this.#committing;
  }

  #whenIdle(): Promise<void> {
    if (this.#live.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }
}

export type { Failure };
