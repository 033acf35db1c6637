// Replay in one order (issue 22): messages come from the timestamp merge of every selected partition of
// every selected request topic, and run through the same stages as live (prepare, dispatch to the
// effect nodes, outcomes) under the replay scheduler's locks, so that two messages touching the same
// pattern are applied in the merged order while the rest run at once. A message the live worker refused
// (live-outcomes.ts) is not applied; one it applied and this order refuses is deferred until something
// touching the same things is applied. Reads are not run. Retries follow the live worker's policy.
import { asError } from '../../contracts/errors.ts';
import { isWriteOperation } from '../../contracts/operations.ts';
import type { Logger } from '../../telemetry/logger.ts';
import { classifyFailure, describeFailure } from '../engine/failures.ts';
import { RateLimiter } from '../engine/flow-control.ts';
import { outcomeLabel, type Lifecycle, type UnitView } from '../engine/lifecycle.ts';
import type { RecordSink, UnitOutput, UnitWork } from '../engine/ports.ts';
import type { InboundMessage } from '../engine/records.ts';
import { decideRetry, type RetryPolicy } from '../engine/retry-policy.ts';
import type { Prepared } from '../stages/prepare.ts';
import type { AppliedLive } from './live-outcomes.ts';
import { touchedBy } from './replay-order.ts';
import { ReplayScheduler, type ReplayItem, type ReplayUnit } from './replay-scheduler.ts';

/** Where replayed messages come from, in the merged order. */
export interface ReplaySource {
  /** The next message, or undefined while the merge waits (or when done). */
  take(): InboundMessage | undefined;
  readonly done: boolean;
  /** Resolves when more may be taken, or after `ms`. */
  wait(ms: number): Promise<void>;
}

export interface ReplaySummary {
  /** Messages taken from the request topics. */
  messages: number;
  applied: number;
  alreadyApplied: number;
  /** Not applied, by error code: refused live (and skipped here), or refused again by this replay. */
  refused: Record<string, number>;
  /** Of those refused, how many the live outcome said so (not run here). */
  refusedAsLive: number;
  /** Refused by this replay and dead-lettered again (the live outcome was unknown). */
  deadLettered: number;
  /** Times a message the live worker applied was refused here and deferred (deferrals, not messages). */
  deferred: number;
  readsSkipped: number;
  /** Per topic, messages done. */
  done: Record<string, number>;
}

export interface ReplayDriverOptions {
  source: ReplaySource;
  work: UnitWork<Prepared>;
  publisher: RecordSink;
  lifecycle: Lifecycle;
  logger: Logger;
  /** Request records refused live: coordinates to error code. */
  refusedLive: {
    get(topic: string, partition: number, offset: string, timestamp?: string): string | undefined;
  };
  /** Request records the live worker applied (none known by default). */
  appliedLive?: AppliedLive;
  concurrency: number;
  /** Messages started per second at most (0: no limit); a function is asked again before each unit
   * (replay-budget.ts: the budget follows the live worker). */
  maxRatePerSecond: number | (() => number);
  maxBatch: number;
  maxBatchBytes: number;
  retry: RetryPolicy;
  /** Filled in as the replay goes (progress); a new one by default. */
  summary?: ReplaySummary;
  /** Messages queued in the scheduler at most (default 5,000; under a rate, a second's budget). */
  maxQueued?: number;
  /** Nor more than this held in memory by the messages taken in and not done (Prepared.memoryBytes):
   * default 16 MiB. Parsed, a request can take many times its bytes. */
  maxQueuedBytes?: number;
  /** New units wait while more bytes than this are handed to the publisher and not acknowledged. */
  maxPendingPublishBytes?: number;
  /** Deferred messages held at most (default MAX_WAITING). */
  maxWaiting?: number;
}

export function emptySummary(): ReplaySummary {
  return {
    messages: 0,
    applied: 0,
    alreadyApplied: 0,
    refused: {},
    refusedAsLive: 0,
    deadLettered: 0,
    deferred: 0,
    readsSkipped: 0,
    done: {},
  };
}

/** `applied 5, already applied 0, dead-lettered 1, refused 3 (NOT_FOUND 2, VALIDATION_ERROR 1; 2 as live),
 * reads skipped 4`, and `, deferred 1 (…)` when there were deferrals. */
export function describeSummary(s: ReplaySummary): string {
  const codes = Object.entries(s.refused).sort(([a], [b]) => a.localeCompare(b));
  const refused = codes.reduce((n, [, c]) => n + c, 0);
  const detail = codes.map(([code, n]) => `${code} ${n}`).join(', ');
  return (
    `applied ${s.applied}, already applied ${s.alreadyApplied}, dead-lettered ${s.deadLettered}, ` +
    `refused ${refused}${refused > 0 ? ` (${detail}; ${s.refusedAsLive} as live)` : ''}, reads skipped ${s.readsSkipped}` +
    (s.deferred > 0
      ? `, deferred ${s.deferred} (applied live, refused in the merged order: retried after a later message about the same patterns)`
      : '')
  );
}

interface Item extends ReplayItem {
  prepared: Prepared;
  /** Times it was refused here though applied live, and deferred. */
  deferrals: number;
}

/** A message applied live but refused here is deferred this many times at most, then refused as any other:
 * the live worker saw it at most a few messages about the same patterns away from the merged order. */
export const MAX_DEFERRALS = 8;

/** Deferred messages held at most (each keeps its request in memory); past it, the oldest are refused. */
export const MAX_WAITING = 10_000;

interface Running {
  id: number;
  unit: ReplayUnit<Item>;
  attempt: number;
  streak: number;
}

export async function runReplay(o: ReplayDriverOptions): Promise<ReplaySummary> {
  const summary = o.summary ?? emptySummary();
  const refuse = (code: string) => (summary.refused[code] = (summary.refused[code] ?? 0) + 1);
  const finished = (m: InboundMessage) => (summary.done[m.topic] = (summary.done[m.topic] ?? 0) + 1);
  const scheduler = new ReplayScheduler<Item>({ maxBatch: o.maxBatch, maxBatchBytes: o.maxBatchBytes });
  const budget = o.maxRatePerSecond;
  const rateNow = (): number => (typeof budget === 'function' ? budget() : budget);
  let rateLimit = rateNow();
  let rate = new RateLimiter(rateLimit);
  const maxQueued = o.maxQueued ?? 5000;
  const maxQueuedBytes = o.maxQueuedBytes ?? 16 * 1024 * 1024;
  /** What the messages taken in and not yet done hold (Prepared.memoryBytes). */
  let heldBytes = 0;
  const maxPending = o.maxPendingPublishBytes ?? 16 * 1024 * 1024;
  const maxWaiting = o.maxWaiting ?? MAX_WAITING;
  const publishing = new Set<Promise<void>>();
  let running = 0;
  let nextId = 1;
  let failure: unknown;
  let sourceWaiting = false;
  let overflowed = false;
  let wake: (() => void) | undefined;
  const signal = () => {
    const w = wake;
    wake = undefined;
    w?.();
  };

  // Under a rate, a second's budget queued is look-ahead enough for batching: decoding maxQueued messages
  // at once is a burst of CPU beside the live worker the budget is there to spare.
  const queueLimit = () => (rateLimit > 0 ? Math.min(maxQueued, Math.max(rateLimit, 100)) : maxQueued);
  const take = () => {
    // Past the bytes bound, one at a time while nothing runs: deferred messages count, and they wait for
    // what is behind them.
    while (
      scheduler.queued < queueLimit() &&
      (heldBytes <= maxQueuedBytes || (scheduler.queued === 0 && running === 0))
    ) {
      const message = o.source.take();
      if (!message) return;
      summary.messages += 1;
      const p = o.work.prepare(message);
      const operation = p.request?.operation;
      if (p.logical === 'pattern.search.request' || (operation && !isWriteOperation(operation))) {
        summary.readsSkipped += 1;
        finished(message);
        continue;
      }
      const live = o.refusedLive.get(message.topic, message.partition, message.offset, message.timestamp);
      if (live !== undefined) {
        refuse(live);
        summary.refusedAsLive += 1;
        finished(message);
        continue;
      }
      heldBytes += p.memoryBytes;
      scheduler.push({
        prepared: p,
        // A refused or undecodable message touches nothing: it is refused again whatever the order.
        locks: p.request && !p.error ? touchedBy(p.request, p.context.identity as string) : [],
        batchWith: p.batchWith,
        size: message.value?.length ?? 0,
        deferrals: 0,
      });
    }
  };

  const view = (r: Running): UnitView => {
    const items = r.unit.items.map((i) => i.prepared);
    const first = items[0]?.message;
    return {
      id: r.id,
      lane: 'replay',
      topic: first?.topic ?? '',
      partition: first?.partition ?? 0,
      messages: items.map((p) => p.message),
      items: items.map((p) => ({ correlationId: p.correlationId, operation: p.request?.operation })),
      batched: r.unit.batched,
      attempt: r.attempt,
      startedAt: performance.now(),
    };
  };

  const count = (output: UnitOutput) => {
    for (const outcome of output.outcomes) {
      finished(outcome.message);
      const label = outcomeLabel(outcome.result, outcome.deadLettered);
      if (label === 'success') summary.applied += 1;
      else if (label === 'duplicate') summary.alreadyApplied += 1;
      else {
        refuse(outcome.result.error?.code ?? 'INTERNAL');
        if (label === 'dead_letter') summary.deadLettered += 1;
      }
    }
  };

  /** The locks of the unit's items applied here (while something is deferred), and the items refused
   * here that the live worker applied. */
  const sortOut = (r: Running, output: UnitOutput) => {
    const applied: string[] = [];
    const deferred: Item[] = [];
    const waking = scheduler.waiting > 0;
    let items: Map<InboundMessage, Item> | undefined;
    const itemOf = (m: InboundMessage) =>
      (items ??= new Map(r.unit.items.map((i) => [i.prepared.message, i]))).get(m);
    for (const { message: m, result, deadLettered } of output.outcomes) {
      const label = outcomeLabel(result, deadLettered);
      if (label === 'success') {
        if (waking) applied.push(...(itemOf(m)?.locks ?? []));
      } else if (label !== 'duplicate' && o.appliedLive?.has(m.topic, m.partition, m.offset)) {
        const item = itemOf(m);
        if (item && item.deferrals < MAX_DEFERRALS) deferred.push(item);
      }
    }
    return { applied, deferred };
  };

  const publish = (r: Running, ran: UnitOutput, mayDefer: boolean) => {
    const { applied, deferred } = mayDefer ? sortOut(r, ran) : { applied: [], deferred: [] };
    // What is not deferred is done here, and no longer held.
    for (const item of r.unit.items) if (!deferred.includes(item)) heldBytes -= item.prepared.memoryBytes;
    let output = ran;
    if (deferred.length > 0) {
      // Its result and dead letter are not published: it is not done.
      const held = new Set(deferred.map((i) => i.prepared.message));
      output = {
        records: ran.records.filter((rec) => !rec.answers || !held.has(rec.answers)),
        outcomes: ran.outcomes.filter((oc) => !held.has(oc.message)),
      };
      for (const item of deferred) {
        const m = item.prepared.message;
        o.logger.info(
          { topic: m.topic, partition: m.partition, offset: m.offset, deferrals: item.deferrals + 1 },
          'replay: refused a message the live worker applied; deferred until something about the same patterns is applied',
        );
      }
    }
    count(output);
    if (output.records.length > 0) {
      const sent: Promise<void> = o.publisher
        .publish(output.records)
        .catch((err: unknown) => {
          failure ??= err;
        })
        .finally(() => {
          publishing.delete(sent);
          signal();
        });
      publishing.add(sent);
    }
    // The publisher keeps the order records are handed over in: the next unit may start now.
    scheduler.release(r.unit);
    scheduler.applied(applied);
    for (const item of deferred) {
      item.deferrals += 1;
      summary.deferred += 1;
      scheduler.defer(item);
    }
    if (scheduler.waiting > maxWaiting) {
      if (!overflowed)
        o.logger.warn(
          { held: scheduler.waiting },
          'replay: more messages the live worker applied are refused in the merged order than it holds back; ' +
            'the oldest are refused now. The database lacks what they refer to: a replay --from a time needs ' +
            'the database as it was then (a restored backup), not an empty one',
        );
      overflowed = true;
      const excess = scheduler.waiting - maxWaiting;
      for (const item of scheduler.releaseWaiting(excess)) item.deferrals = MAX_DEFERRALS;
    }
    running -= 1;
    signal();
  };

  const start = (r: Running) => {
    running += 1;
    const v = view(r);
    o.lifecycle
      .run(v, () =>
        o.work.run(
          v,
          r.unit.items.map((i) => i.prepared),
        ),
      )
      .then(
        (output) => publish(r, output, true),
        (err: unknown) => failed(r, v, err),
      )
      .catch((err: unknown) => {
        failure ??= err;
        signal();
      });
  };

  const failed = (r: Running, v: UnitView, err: unknown) => {
    const f = classifyFailure(err);
    r.streak = f.kind === 'transient' ? r.streak + 1 : 0;
    const decision = decideRetry(o.retry, f, r.attempt, r.unit.batched, Math.max(1, r.streak));
    const where = { offset: v.messages[0]?.offset, topic: v.topic, partition: v.partition };
    if (decision.action === 'retry') {
      o.logger.warn(
        { ...where, attempt: r.attempt, retry_in_ms: decision.delayMs, reason: describeFailure(f) },
        'replay: try failed; retrying',
      );
      r.attempt += 1;
      // Its locks stay held: nothing touching the same patterns overtakes it.
      setTimeout(() => {
        running -= 1;
        start(r);
      }, decision.delayMs);
      return;
    }
    if (decision.action === 'split') {
      scheduler.putBackSolo(r.unit);
      running -= 1;
      signal();
      return;
    }
    o.logger.error({ ...where, attempts: r.attempt, err }, 'replay: giving up on the message');
    publish(
      r,
      o.work.giveUp(
        v,
        r.unit.items.map((i) => i.prepared),
        decision.failure,
      ),
      false,
    );
  };

  for (;;) {
    if (failure !== undefined) throw asError(failure);
    take();
    while (running < o.concurrency && o.publisher.pendingBytes <= maxPending) {
      const limit = rateNow();
      if (limit !== rateLimit) {
        rateLimit = limit;
        rate = new RateLimiter(limit);
      }
      const wait = rate.waitMs();
      if (wait > 0) {
        setTimeout(signal, wait);
        break;
      }
      // Under a rate, a unit holds a tenth of a second's budget at most (the limiter's burst), so the
      // replay's database work comes in small transactions spread over each second, not one batch a second.
      const unit = scheduler.next(rateLimit > 0 ? Math.ceil(rateLimit / 10) : undefined);
      if (!unit) break;
      rate.spend(unit.items.length);
      start({ id: nextId++, unit, attempt: 1, streak: 0 });
    }
    if (o.source.done && scheduler.queued === 0 && running === 0) {
      if (scheduler.waiting === 0) break;
      // Nothing left to apply could change their verdict: one last run each, in their order, refuses them
      // and publishes what was held back.
      for (const item of scheduler.releaseWaiting()) item.deferrals = MAX_DEFERRALS;
      continue;
    }
    await new Promise<void>((resolve) => {
      wake = resolve;
      // New messages from the source wake the loop too (one wait on it at a time).
      if (!o.source.done && !sourceWaiting) {
        sourceWaiting = true;
        void o.source.wait(1000).then(() => {
          sourceWaiting = false;
          signal();
        });
      }
    });
  }
  await Promise.all([...publishing]);
  if (failure !== undefined) throw asError(failure);
  return summary;
}
