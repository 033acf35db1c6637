// The processing engine of one lane: takes in fetched messages, runs up to `concurrency` units at once
// across the lane's partitions (order rules in partition-scheduler.ts), hands each unit's records to the
// publisher without waiting for the acks of the ones before, and commits each partition's offset only
// below its lowest message whose effect or result is not done (offset-tracker.ts, committer.ts). Where a
// partition may start after a rebalance: partition-registry.ts; what a failure leads to: retry-policy.ts;
// pausing and the rate budget: flow-control.ts.
import type { Logger } from '../../telemetry/logger.ts';
import { Committer } from './committer.ts';
import { classifyFailure, describeFailure } from './failures.ts';
import { mayResume, pauseReason, RateLimiter } from './flow-control.ts';
import type { Lifecycle, UnitView } from './lifecycle.ts';
import { PartitionRegistry, type PartitionState } from './partition-registry.ts';
import { LaneHolds, PartitionScheduler } from './partition-scheduler.ts';
import type {
  ConsumerControl,
  PartitionWait,
  RecordSink,
  Schedulable,
  UnitOutput,
  UnitWork,
} from './ports.ts';
import { messageBytes, partitionKey, type InboundMessage } from './records.ts';
import { decideRetry } from './retry-policy.ts';
import type { LaneSettings } from './settings.ts';

export interface LaneEngineOptions<P extends Schedulable> {
  settings: LaneSettings;
  work: UnitWork<P>;
  publisher: RecordSink;
  control: ConsumerControl;
  lifecycle: Lifecycle;
  logger: Logger;
  random?: () => number;
  /** Units allowed to run now, when lower than the settings' concurrency (settings.yieldTo); at least 1. */
  concurrencyNow?: () => number;
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

/** What an item holds while buffered: the request parsed from it too, where the work says. */
const sizeOf = (item: Schedulable) => item.memoryBytes ?? messageBytes(item.message);

export class LaneEngine<P extends Schedulable> {
  readonly #o: LaneEngineOptions<P>;
  readonly #s: LaneSettings;
  readonly #partitions: PartitionRegistry<P>;
  readonly #committer: Committer<P>;
  readonly #rate: RateLimiter;
  readonly #retryReady: Unit<P>[] = [];
  readonly #timers = new Set<NodeJS.Timeout>();
  readonly #live = new Set<Unit<P>>();
  #running = 0;
  #bytes = 0;
  #nextId = 1;
  #closing = false;
  #idleWaiters: (() => void)[] = [];
  #wake: NodeJS.Timeout | undefined;
  #wakeAt = 0;

  constructor(options: LaneEngineOptions<P>) {
    this.#o = options;
    const s = (this.#s = options.settings);
    const holds = new LaneHolds();
    this.#partitions = new PartitionRegistry<P>(
      () => new PartitionScheduler<P>({ maxBatch: s.maxBatch, maxBatchBytes: s.maxBatchBytes, lane: holds }),
    );
    this.#committer = new Committer<P>(() => this.#partitions.live(), {
      commit: (offsets) => options.control.commit(offsets),
      intervalMs: s.commitIntervalMs,
      committed: (offsets) => options.lifecycle.emit('offsets.committed', { lane: s.name, offsets }),
      // A rebalance or a broker outage; the next finished unit commits again (the offsets only grow).
      failed: (err) =>
        options.logger.warn(
          { lane: s.name, err: describeFailure(classifyFailure(err)) },
          'offset commit failed; will commit again',
        ),
    });
    this.#rate = new RateLimiter(s.maxRatePerSecond);
  }

  get lane(): string {
    return this.#s.name;
  }

  get running(): number {
    return this.#running;
  }

  /** Takes in messages fetched from one partition, in offset order. `fetchedTo`: one past the batch's last offset. */
  accept(topic: string, partition: number, messages: readonly InboundMessage[], fetchedTo?: bigint): void {
    const first = messages[0];
    if (this.#closing || !first) return;
    const opening = this.#partitions.open(topic, partition, BigInt(first.offset));
    if ('seekTo' in opening) {
      // The consumer resumed above messages this lane had not finished: fetch them again.
      this.#o.logger.warn(
        { lane: this.lane, topic, partition, fetched_from: first.offset, restart_at: String(opening.seekTo) },
        'the consumer resumed past unfinished messages; seeking back to them',
      );
      this.#o.control.seek(topic, partition, opening.seekTo);
      return;
    }
    const { state } = opening;
    const wasIdle = state.tracker.unfinished === 0;
    if (opening.gap) {
      this.#o.logger.error(
        { lane: this.lane, topic, partition, from: String(opening.gap.from), to: String(opening.gap.to) },
        'the log no longer holds offsets this lane had not finished (deleted by retention); going on after them',
      );
    }
    let full = false;
    for (const message of messages) {
      const offset = BigInt(message.offset);
      if (offset < state.tracker.fetchedEnd) continue; // fetched again after a retry of the fetch
      if (this.#bytes > this.#s.maxBufferedBytes) {
        // Full: the rest of the fetch is read again once the lane has room (#resumeReady). Parsed, a
        // fetch of 1 MiB of compressed records can hold far more than the lane's bound.
        this.#o.control.seek(topic, partition, offset);
        full = true;
        break;
      }
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
      const size = sizeOf(item);
      state.bytes += size;
      this.#bytes += size;
      state.scheduler.push(item);
    }
    if (fetchedTo !== undefined && !full) state.tracker.fetchedTo(fetchedTo);
    if (wasIdle) state.waitingSince = Date.now();
    this.#progress(state);
    this.#pauseIfFull(state);
    this.#pump();
    // Skipped messages (replay) finish at once: their offsets may commit.
    if (state.tracker.safe > state.committed && state.tracker.unfinished === 0) void this.#committer.commit();
  }

  /** Where each partition of this lane stands: every message below `done` has its effect and result
   * done; `waitingMs`: how long the oldest unfinished message has held that point (0: none unfinished). */
  partitionWaits(now = Date.now()): PartitionWait[] {
    const waits: PartitionWait[] = [];
    for (const s of this.#partitions.live()) {
      if (s.retired) continue;
      const unfinished = s.tracker.unfinished;
      waits.push({
        topic: s.topic,
        partition: s.partition,
        done: s.tracker.safe,
        unfinished,
        waitingMs: unfinished > 0 ? Math.max(0, now - s.waitingSince) : 0,
      });
    }
    return waits;
  }

  /** The partition's done position (see partitionWaits), if this lane has taken in any of it. */
  donePosition(topic: string, partition: number): bigint | undefined {
    const state = this.#partitions.get(topic, partition);
    return state && !state.retired ? state.tracker.safe : undefined;
  }

  /** concurrencyNow() may have risen: start what it now allows. */
  capacityChanged(): void {
    this.#pump();
  }

  /** The consumer is new: every partition starts again from its restart point (queued work is dropped;
   * in-flight units finish and their successors wait for them). */
  reassigned(): void {
    for (const state of this.#partitions.retireAll()) {
      this.#forget(state);
      if (state.paused) {
        state.paused = false;
        this.#o.control.resume(state.topic, state.partition);
      }
      // If the consumer goes on without a fresh assignment, it fetches from here (a partition that is
      // not ours after the rebalance ignores it).
      this.#o.control.seek(state.topic, state.partition, state.tracker.safe);
    }
  }

  /** Partitions that went to other members: their queued work is dropped and nothing more of them is
   * committed here (in-flight units finish; their effects are deduplicated by identity if the new owner
   * runs them again). The other partitions go on as they were. */
  revoked(partitions: readonly { topic: string; partition: number }[]): void {
    const keys = new Set(partitions.map((p) => partitionKey(p.topic, p.partition)));
    for (const state of this.#partitions.revoke(keys)) this.#forget(state);
    this.#o.lifecycle.emit('partitions.revoked', { lane: this.lane, partitions });
    this.#resumeReady();
    this.#pump();
  }

  #forget(state: PartitionState<P>): void {
    for (const item of state.scheduler.clear()) this.#unbuffer(state, item);
    for (let i = this.#retryReady.length - 1; i >= 0; i--) {
      const unit = this.#retryReady[i] as Unit<P>;
      if (unit.state === state) {
        this.#retryReady.splice(i, 1);
        this.#drop(unit);
      }
    }
  }

  /** A fresh assignment (topic, partition pairs): partitions not in it forget their restart points. */
  assigned(partitions: readonly { topic: string; partition: number }[]): void {
    this.#partitions.assigned(new Set(partitions.map((p) => partitionKey(p.topic, p.partition))));
  }

  /** Stops taking new work, lets running units finish and publish, commits, within `timeoutMs`. */
  async drain(timeoutMs: number): Promise<void> {
    this.#closing = true;
    if (this.#wake) clearTimeout(this.#wake);
    for (const state of this.#partitions.live())
      for (const item of state.scheduler.clear()) this.#unbuffer(state, item);
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
    await this.#committer.flush();
  }

  // ---- taking work

  #unbuffer(state: PartitionState<P>, item: P): void {
    const size = sizeOf(item);
    state.bytes -= size;
    this.#bytes -= size;
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

  /** Wakes the pump after `ms` (the rate budget, a partition's backoff); one timer, the earliest asked. */
  #wakeIn(ms: number): void {
    const at = Date.now() + ms;
    if (this.#wake && this.#wakeAt <= at) return;
    if (this.#wake) clearTimeout(this.#wake);
    this.#wakeAt = at;
    this.#wake = setTimeout(() => {
      this.#wake = undefined;
      this.#pump();
    }, ms);
  }

  /** Ms until the first partition that has queued work and is backing off may start again (0: none). */
  #backoffWait(now: number): number {
    let until = Number.POSITIVE_INFINITY;
    for (const s of this.#partitions.states) {
      if (!s.retired && s.backoffUntil > now && s.scheduler.queued > 0)
        until = Math.min(until, s.backoffUntil);
    }
    return until === Number.POSITIVE_INFINITY ? 0 : until - now;
  }

  #pump(): void {
    if (this.#closing) return;
    const now = Date.now();
    const cap = Math.max(1, Math.min(this.#s.concurrency, this.#o.concurrencyNow?.() ?? this.#s.concurrency));
    while (this.#running < cap) {
      // Results waiting for the broker are bounded: new units wait for acks (back-pressure).
      if (this.#o.publisher.pendingBytes > this.#s.maxPendingPublishBytes) break;
      const retry = this.#retryReady.shift();
      if (retry) {
        this.#start(retry);
        continue;
      }
      const wait = this.#rate.waitMs();
      if (wait > 0) {
        if (this.#queued() > 0) this.#wakeIn(wait);
        break;
      }
      const unit = this.#pick(now);
      if (!unit) {
        // A timer set for a backoff's end can fire a little before Date.now() reaches it (timers run on
        // the event loop's cached clock): without this, the partition's queue would wait for an
        // unrelated event, forever on a quiet lane.
        const backoff = this.#backoffWait(now);
        if (backoff > 0) this.#wakeIn(backoff + 1);
        break;
      }
      this.#rate.spend(unit.items.length);
      this.#start(unit);
    }
    this.#o.lifecycle.emit('lane.load', { lane: this.lane, running: this.#running, queued: this.#queued() });
  }

  #queued(): number {
    let n = 0;
    for (const s of this.#partitions.states) n += s.scheduler.queued;
    return n;
  }

  #pick(now: number): Unit<P> | undefined {
    const walk = this.#partitions.roundRobin();
    let next = walk.next();
    while (!next.done) {
      const state = next.value;
      const picked = this.#ready(state, now) ? state.scheduler.next() : undefined;
      if (picked) {
        walk.next(true);
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
      next = walk.next(false);
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
      lane: this.lane,
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
      .catch((err: unknown) => this.#o.logger.error({ err, lane: this.lane }, 'engine bookkeeping failed'));
  }

  #applied(unit: Unit<P>, view: UnitView, output: UnitOutput): void {
    this.#running -= 1;
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
            { err: describeFailure(classifyFailure(err)), lane: this.lane },
            'results not published',
          );
          this.#live.delete(unit);
          this.#unitGone(unit);
        },
      )
      .catch((err: unknown) => this.#o.logger.error({ err, lane: this.lane }, 'engine bookkeeping failed'));
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
      void this.#committer.commit();
    }
  }

  /** The unit is over here. Its messages leave the buffer unless they went back to the queue. */
  #unitGone(unit: Unit<P>, requeued = false): void {
    const { state } = unit;
    state.inFlight -= 1;
    if (!requeued) for (const item of unit.items) this.#unbuffer(state, item);
    this.#partitions.released(state);
    if (this.#live.size === 0) for (const resolve of this.#idleWaiters.splice(0)) resolve();
    // However the unit ended (done, dropped with its partition, its retry given up on a moved partition),
    // the bytes it held are free: a partition paused for the lane's bytes must not wait for a unit that
    // may never come.
    this.#resumeReady();
    this.#pump();
  }

  #failed(unit: Unit<P>, view: UnitView, err: unknown): void {
    this.#running -= 1;
    unit.phase = 'waiting';
    const failure = classifyFailure(err);
    const { state } = unit;
    const { logger, lifecycle } = this.#o;
    const where = {
      lane: this.lane,
      topic: state.topic,
      partition: state.partition,
      offset: view.messages[0]?.offset,
    };
    if (failure.kind === 'transient') state.transientStreak += 1;
    const decision = decideRetry(
      this.#s,
      failure,
      unit.attempt,
      unit.batched,
      state.transientStreak,
      this.#o.random,
    );
    switch (decision.action) {
      case 'retry': {
        if (decision.backOffPartition) {
          state.backoffUntil = Math.max(state.backoffUntil, Date.now() + decision.delayMs);
          logger.warn(
            {
              ...where,
              attempt: unit.attempt,
              retry_in_ms: decision.delayMs,
              reason: describeFailure(failure),
            },
            'transient failure; backing this partition off and retrying',
          );
        } else {
          logger.error(
            {
              ...where,
              attempt: unit.attempt,
              max_attempts: this.#s.maxAttempts,
              retry_in_ms: decision.delayMs,
              err,
            },
            'processing failed; retrying',
          );
        }
        lifecycle.emit('unit.failed', { unit: view, error: err, failure, retryInMs: decision.delayMs });
        this.#retryLater(unit, decision.delayMs);
        return;
      }
      case 'split':
        // One bad event must not fail its whole batch: its events get their own tries, one at a time.
        logger.warn(
          { ...where, size: unit.items.length, reason: describeFailure(failure) },
          'batch failed; trying its messages one at a time',
        );
        lifecycle.emit('unit.failed', { unit: view, error: err, failure, retryInMs: 0 });
        state.scheduler.release(unit.keys);
        this.#live.delete(unit);
        // A partition that moved away meanwhile runs nothing more here: put back, its events would hold
        // their bytes in the lane's bound for good.
        if (state.retired) {
          this.#unitGone(unit);
          return;
        }
        state.scheduler.putBackSolo(unit.items);
        this.#unitGone(unit, true);
        return;
      case 'give-up': {
        const { failure } = decision;
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
          this.#retryLater(unit, this.#s.backoff.maxMs);
          return;
        }
        this.#publish(unit, view, output);
        return;
      }
    }
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
    // Its slot is free until then: other keys' units start now (a partition backing off waits for its
    // backoff's end, which the pump wakes itself for). Without this a lane of one slot sat idle through
    // every retry gap of a failing message, and the cheap reads queued behind it waited for all its tries.
    this.#pump();
  }

  // ---- offsets and flow control

  #progress(state: PartitionState<P>): void {
    if (state.tracker.safe !== state.lastSafe) {
      state.lastSafe = state.tracker.safe;
      state.waitingSince = Date.now();
    }
    this.#o.lifecycle.emit('partition.progress', {
      lane: this.lane,
      topic: state.topic,
      partition: state.partition,
      position: state.tracker.safe,
    });
  }

  #load(state: PartitionState<P>) {
    return { unfinished: state.tracker.unfinished, uncommitted: state.tracker.held };
  }

  #pauseIfFull(state: PartitionState<P>): void {
    if (state.retired || state.paused) return;
    const reason = pauseReason(this.#load(state), this.#bytes, this.#s);
    if (!reason) return;
    state.paused = true;
    this.#o.control.pause(state.topic, state.partition);
    this.#o.lifecycle.emit('partition.paused', {
      lane: this.lane,
      topic: state.topic,
      partition: state.partition,
      reason,
    });
  }

  #resumeReady(): void {
    for (const state of this.#partitions.states) {
      if (!state.paused || state.retired || !mayResume(this.#load(state), this.#bytes, this.#s)) continue;
      state.paused = false;
      this.#o.control.resume(state.topic, state.partition);
      this.#o.lifecycle.emit('partition.resumed', {
        lane: this.lane,
        topic: state.topic,
        partition: state.partition,
      });
    }
  }

  #whenIdle(): Promise<void> {
    if (this.#live.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }
}
