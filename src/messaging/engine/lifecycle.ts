// Typed lifecycle events of the processing engine. Replay, metrics, tracing and the crash hook subscribe
// here instead of being threaded through constructors as optional callbacks (as KafkaJS's
// instrumentation events and Karafka's notifications do). Listeners run synchronously, in the order
// they subscribed; a listener that throws is logged by the engine and never stops processing.
import type { ModelResult } from '../../contracts/results.ts';
import type { RequestTopic } from '../../contracts/topics.ts';
import type { Failure } from './failures.ts';
import type { InboundMessage } from './records.ts';

/** What subscribers may know of a unit: its lane, messages, and what prepare learned of each. */
export interface UnitView {
  readonly id: number;
  readonly lane: string;
  readonly topic: string;
  readonly partition: number;
  readonly messages: readonly InboundMessage[];
  /** One entry per message: the body correlation id and operation, when the body could be read. */
  readonly items: readonly { correlationId: string | null; operation: string | undefined }[];
  /** A batch: several record_usage events, or update_stats of one pattern, applied in one transaction. */
  readonly batched: boolean;
  /** 1 on the first try. */
  readonly attempt: number;
  /** performance.now() when this try started. */
  readonly startedAt: number;
}

/** What became of a message, as metrics, spans and replay's summary name it. */
export type OutcomeLabel = 'success' | 'error' | 'duplicate' | 'dead_letter';

export function outcomeLabel(result: ModelResult, deadLettered: boolean): OutcomeLabel {
  if (deadLettered) return 'dead_letter';
  if (result.metadata.duplicate === true) return 'duplicate';
  return result.success ? 'success' : 'error';
}

export interface MessageOutcome {
  message: InboundMessage;
  logical: RequestTopic;
  operation: string;
  result: ModelResult;
  deadLettered: boolean;
}

export interface EngineEvents {
  /** A unit starts a try: its messages are about to be applied. */
  'unit.started': { unit: UnitView };
  /** The unit's effects are committed in the database; its results are not published yet. */
  'unit.applied': { unit: UnitView };
  /** A result record is about to be encoded; subscribers may set its traceparent. */
  'result.encoding': {
    unit: UnitView;
    index: number;
    topic: string;
    partition: number | undefined;
    headers: { traceparent?: string };
  };
  /** The outcome of one message of the unit (emitted before the unit is published). */
  'message.outcome': { unit: UnitView; index: number; outcome: MessageOutcome };
  /** The unit's results (and dead letters) are acknowledged by the broker; its offsets may commit. */
  'unit.done': { unit: UnitView; durationMs: number; skipped: boolean };
  /** A try failed. `retryInMs` is when it runs again, or null when it gave up (dead-lettered). */
  'unit.failed': { unit: UnitView; error: unknown; failure: Failure; retryInMs: number | null };
  /** Publishing failed; the same records are sent again after `retryInMs`. */
  'publish.failed': { lane: string; error: unknown; retryInMs: number };
  /** Partitions that went to other members: this lane no longer reads or commits them. */
  'partitions.revoked': { lane: string; partitions: readonly { topic: string; partition: number }[] };
  /** A partition's safe position moved: every message below `position` has its effect and result done. */
  'partition.progress': { lane: string; topic: string; partition: number; position: bigint };
  /** Offsets committed for the worker's consumer group. */
  'offsets.committed': { lane: string; offsets: { topic: string; partition: number; offset: string }[] };
  /** A fetch answer: the partition's end (`highWatermark`), and the messages between the first one not
   * done and that end (`lag`). */
  'partition.fetched': { lane: string; topic: string; partition: number; lag: number; highWatermark: bigint };
  /** Fetching a partition stopped (buffer full, too much finished above a stuck commit point, the end of
   * a replay's range) or started again. */
  'partition.paused': {
    lane: string;
    topic: string;
    partition: number;
    reason: 'buffer' | 'uncommitted' | 'end';
  };
  /** A record could not be sent (it failed the check before queueing, or the broker refused it for good);
   * `replaced`: what was published instead. */
  'record.refused': { lane: string; topic: string; reason: string; replaced: number };
  'partition.resumed': { lane: string; topic: string; partition: number };
  /** The log no longer held a partition's position (retention, an operator's delete-records): the
   * `count` records from `from` up to `to` were never read; nothing answers them. */
  'partition.skipped': {
    lane: string;
    topic: string;
    partition: number;
    from: bigint;
    to: bigint;
    count: number;
  };
  /** Units running now in a lane, after a change. */
  'lane.load': { lane: string; running: number; queued: number };
}

export type EngineEvent = keyof EngineEvents;
type Listener<E extends EngineEvent> = (payload: EngineEvents[E]) => void;

/** Wraps the work of one try, e.g. to make a span active around it. */
export type UnitScope = <T>(unit: UnitView, work: () => Promise<T>) => Promise<T>;

export class Lifecycle {
  readonly #listeners = new Map<EngineEvent, Listener<never>[]>();
  readonly #scopes: UnitScope[] = [];
  readonly #onListenerError: (event: EngineEvent, err: unknown) => void;

  constructor(onListenerError: (event: EngineEvent, err: unknown) => void = () => undefined) {
    this.#onListenerError = onListenerError;
  }

  on<E extends EngineEvent>(event: E, listener: Listener<E>): () => void {
    const list = this.#listeners.get(event) ?? [];
    list.push(listener);
    this.#listeners.set(event, list);
    return () => {
      const current = this.#listeners.get(event) ?? [];
      this.#listeners.set(
        event,
        current.filter((l) => l !== (listener as Listener<never>)),
      );
    };
  }

  emit<E extends EngineEvent>(event: E, payload: EngineEvents[E]): void {
    const list = this.#listeners.get(event);
    if (!list) return;
    for (const listener of list) {
      try {
        (listener as Listener<E>)(payload);
      } catch (err) {
        this.#onListenerError(event, err);
      }
    }
  }

  /** Adds a scope around every try; scopes nest in the order they were added (first is outermost). */
  scope(scope: UnitScope): void {
    this.#scopes.push(scope);
  }

  run<T>(unit: UnitView, work: () => Promise<T>): Promise<T> {
    let wrapped = work;
    for (const scope of [...this.#scopes].reverse()) {
      const inner = wrapped;
      wrapped = () => scope(unit, inner);
    }
    return wrapped();
  }
}
