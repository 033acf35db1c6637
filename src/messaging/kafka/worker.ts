// The consumer side of the worker: one lane consumer per lane (writes, reads, analytics; or the single
// lane of a replay pass), each in its own consumer group, readiness while every lane is a member of its
// group (from the start, once each lane holds the partitions the broker means it to have), and a graceful
// stop. The lanes start together or not at all: a lane that cannot start stops the others and fails the
// start.
import type { Logger } from '../../telemetry/logger.ts';
import type { Readiness } from '../../telemetry/readiness.ts';
import type { Lifecycle } from '../engine/lifecycle.ts';
import type { RecordCheck, Schedulable, UnitWork } from '../engine/ports.ts';
import type { LaneSettings } from '../engine/settings.ts';
import type { DescribedGroup, KafkaAdmin } from './admin.ts';
import type { KafkaClient } from './client.ts';
import { awaitSettled } from './settle.ts';
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
  /** How long, at most, readiness waits after the start for every lane to hold its target assignment
   * (ms; 0: it does not wait); `describe` stands in for the broker in the in-process tests. */
  settle?: { timeoutMs: number; describe?: (groupIds: string[]) => Promise<DescribedGroup[]> };
}

export class Worker<P extends Schedulable> {
  readonly lanes: LaneConsumer<P>[];
  readonly #joined = new Map<string, { ok: boolean; detail: string }>();
  readonly #o: WorkerOptions<P>;
  #settled = { ok: false, detail: 'assignment: not joined yet' };
  #running = false;

  constructor(options: WorkerOptions<P>) {
    this.#o = options;
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

  /** Ready while every lane is a member of its group, once the lanes' first assignments have settled. */
  #membership(lane: string, ok: boolean, detail: string): void {
    const before = this.#joined.get(lane);
    if (before?.ok === ok && (ok || before.detail === detail)) return;
    this.#joined.set(lane, { ok, detail });
    this.#publish();
  }

  #publish(): void {
    const all = [...this.#joined.values()].every((j) => j.ok) && this.#settled.ok;
    const summary = [...this.#joined].map(([name, j]) => `${name}: ${j.detail}`);
    if (!this.#settled.ok) summary.push(this.#settled.detail);
    this.#o.readiness.set('consumer', all, summary.join('; '));
  }

  /** Waits (in the background) for every lane to hold its target assignment, then counts as settled for
   * good: later rebalances are other members' business and do not take this worker out of service. */
  async #settle(): Promise<void> {
    const { settle, kafka, logger } = this.#o;
    const timeoutMs = settle?.timeoutMs ?? 0;
    if (timeoutMs <= 0) {
      this.#settled = { ok: true, detail: 'assignment: not waited for' };
      this.#publish();
      return;
    }
    let admin: KafkaAdmin | undefined;
    let describe = settle?.describe;
    try {
      if (!describe) {
        const connected = kafka.admin();
        admin = connected;
        await connected.connect();
        describe = (ids) => connected.describeGroups(ids);
      }
      const outcome = await awaitSettled({
        lanes: this.lanes.map((l) => ({
          name: l.lane,
          groupId: l.settings.groupId,
          memberId: () => l.member.memberId,
          isAssigned: (topic, partition) => l.member.isAssigned(topic, partition),
        })),
        describe,
        timeoutMs,
        running: () => this.#running,
        onProgress: (detail) => {
          this.#settled = { ok: false, detail: `assignment: ${detail}` };
          this.#publish();
        },
      });
      if (outcome.settled) logger.info({ ms: outcome.ms }, 'every lane holds its assignment');
      else if (outcome.reason === 'timeout')
        logger.warn(
          { ms: outcome.ms, detail: outcome.detail },
          "the lanes' assignments did not settle in time; ready anyway",
        );
    } catch (err) {
      logger.warn({ err }, "could not wait for the lanes' assignments to settle; ready anyway");
    } finally {
      await admin?.disconnect().catch(() => undefined);
      this.#settled = { ok: true, detail: 'assignment: settled' };
      this.#publish();
    }
  }

  async start(): Promise<void> {
    this.#running = true;
    const started = await Promise.allSettled(this.lanes.map((lane) => lane.start()));
    const failed = started.flatMap((s) => (s.status === 'rejected' ? [s.reason as unknown] : []));
    if (failed.length === 0) {
      void this.#settle();
      return;
    }
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
