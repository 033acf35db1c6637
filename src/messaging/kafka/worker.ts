// The consumer side of the worker: one lane consumer per lane (writes, reads, analytics; or the single
// lane of a replay pass), each in its own consumer group, readiness while every lane is a member of its
// group, and a graceful stop. The
// lanes start together or not at all: a lane that cannot start stops the others and fails the start.
import type { Logger } from '../../telemetry/logger.ts';
import type { Readiness } from '../../telemetry/readiness.ts';
import type { Lifecycle } from '../engine/lifecycle.ts';
import type { RecordCheck, Schedulable, UnitWork } from '../engine/ports.ts';
import type { LaneSettings } from '../engine/settings.ts';
import type { KafkaClient } from './client.ts';
import { LaneConsumer, LaneStartError, type LaneConsumerOptions } from './lane-consumer.ts';

export interface WorkerOptions<P extends Schedulable> {
  kafka: KafkaClient;
  lanes: LaneSettings[];
  work: UnitWork<P>;
  checkRecord: RecordCheck;
  lifecycle: Lifecycle;
  logger: Logger;
  readiness: Readiness;
  /** The Kafka side, replaced by fakes in the in-process tests. */
  ports?: LaneConsumerOptions<P>['ports'];
}

export class Worker<P extends Schedulable> {
  readonly lanes: LaneConsumer<P>[];
  readonly #joined = new Map<string, { ok: boolean; detail: string }>();
  readonly #readiness: Readiness;
  #running = false;

  constructor(options: WorkerOptions<P>) {
    this.#readiness = options.readiness;
    // A lane that yields (settings.yieldTo) runs fewer units while the other lane has work running or
    // queued, and is woken when that lane goes idle.
    const busy = new Map<string, boolean>();
    const yielding = (to: { lane: string; concurrency: number }, concurrency: number) => (): number =>
      busy.get(to.lane) === true ? to.concurrency : concurrency;
    options.lifecycle.on('lane.load', ({ lane, running, queued }) => {
      const now = running + queued > 0;
      if (busy.get(lane) === now) return;
      busy.set(lane, now);
      if (now) return;
      for (const l of this.lanes) if (l.settings.yieldTo?.lane === lane) l.engine.capacityChanged();
    });
    this.lanes = options.lanes.map(
      (settings) =>
        new LaneConsumer<P>({
          kafka: options.kafka,
          settings,
          work: options.work,
          checkRecord: options.checkRecord,
          logger: options.logger,
          lifecycle: options.lifecycle,
          onMembership: (ok, detail) => this.#membership(settings.name, ok, detail),
          ...(settings.yieldTo ? { concurrencyNow: yielding(settings.yieldTo, settings.concurrency) } : {}),
          ...(options.ports ? { ports: options.ports } : {}),
        }),
    );
    for (const lane of options.lanes) this.#joined.set(lane.name, { ok: false, detail: 'not joined yet' });
  }

  /** Ready while every lane is a member of its group. */
  #membership(lane: string, ok: boolean, detail: string): void {
    const before = this.#joined.get(lane);
    if (before?.ok === ok && (ok || before.detail === detail)) return;
    this.#joined.set(lane, { ok, detail });
    const all = [...this.#joined.values()].every((j) => j.ok);
    const summary = [...this.#joined].map(([name, j]) => `${name}: ${j.detail}`).join('; ');
    this.#readiness.set('consumer', all, summary);
  }

  async start(): Promise<void> {
    this.#running = true;
    const started = await Promise.allSettled(this.lanes.map((lane) => lane.start()));
    const failed = started.flatMap((s) => (s.status === 'rejected' ? [s.reason as unknown] : []));
    if (failed.length === 0) return;
    await this.stop(5_000);
    const reasons = failed.map((err) => (err instanceof Error ? err.message : String(err)));
    throw new LaneStartError(reasons.join('; '), { cause: failed[0] });
  }

  /** Stops fetching, lets in-flight units finish and publish, commits offsets, then disconnects. */
  async stop(timeoutMs: number): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    await Promise.all(this.lanes.map((lane) => lane.stop(timeoutMs)));
  }
}
