// Publishes a lane's results and dead letters in the order they are handed over, pipelined: units keep
// running while earlier records wait for their acks. One send is in flight at a time and carries every
// record queued meanwhile (up to MAX_PUBLISH_BYTES), so per key the results keep the order of their
// effects, even across retries. Every record is checked before it is queued, and a record the broker
// refuses for good is isolated and replaced by what its `ifRefused` gives (an error result on the default
// result topic and a dead letter), so nothing unsendable blocks the records behind it. Transient send
// failures are retried with backoff, the same records in the same order, for as long as the broker is away.
import type { Logger } from '../../telemetry/logger.ts';
import { backoffDelay, type BackoffPolicy } from './backoff.ts';
import type { Lifecycle } from './lifecycle.ts';
import { SendError, type RecordCheck, type RecordSender, type RecordSink } from './ports.ts';
import { recordSize } from './record-size.ts';
import type { OutboundRecord } from './records.ts';

/** Largest send: half of Kafka's default message.max.bytes (1 MiB). */
export const MAX_PUBLISH_BYTES = 512 * 1024;

interface Job {
  records: OutboundRecord[];
  bytes: number;
  resolve: () => void;
  reject: (err: Error) => void;
}

/** How long a requested reply topic must stay unknown to the broker before its records are refused. */
const UNKNOWN_TOPIC_CONFIRM_MS = 1_000;

export class PublisherClosedError extends Error {
  override name = 'PublisherClosedError';
}

export interface PublisherOptions {
  sender: RecordSender;
  check: RecordCheck;
  lane: string;
  lifecycle: Lifecycle;
  backoff: BackoffPolicy;
  logger: Logger;
  maxRequestBytes?: number;
}

/** How deep replacements of replacements go: a dead letter that cannot be sent is replaced by a smaller one. */
const MAX_REPLACEMENT_DEPTH = 2;

export class OrderedPublisher implements RecordSink {
  readonly #o: PublisherOptions;
  readonly #max: number;
  readonly #queue: Job[] = [];
  #sending = false;
  #closed = false;
  #failures = 0;
  #pendingBytes = 0;
  /** Records of the current send already acknowledged (or replaced), so a retry does not send them again. */
  readonly #sent = new Set<OutboundRecord>();
  /** Requested reply topics the broker did not know at a send, and since when (cleared by a send that works). */
  readonly #unknownSince = new Map<string, number>();
  #retryTimer: NodeJS.Timeout | undefined;

  constructor(options: PublisherOptions) {
    this.#o = options;
    this.#max = options.maxRequestBytes ?? MAX_PUBLISH_BYTES;
  }

  get queued(): number {
    return this.#queue.length;
  }

  get pendingBytes(): number {
    return this.#pendingBytes;
  }

  publish(records: OutboundRecord[]): Promise<void> {
    if (this.#closed) return Promise.reject(new PublisherClosedError('the publisher is closed'));
    const vetted = this.#vet(records, 0);
    const bytes = vetted.reduce((sum, r) => sum + recordSize(r), 0);
    this.#pendingBytes += bytes;
    return new Promise<void>((resolve, reject) => {
      this.#queue.push({ records: vetted, bytes, resolve, reject });
      if (!this.#sending && !this.#retryTimer) void this.#sendLoop();
    });
  }

  /** Rejects what has not been sent; the engine leaves those offsets uncommitted. */
  close(): void {
    this.#closed = true;
    if (this.#retryTimer) clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    for (const job of this.#queue.splice(0)) job.reject(new PublisherClosedError('the publisher is closed'));
    this.#pendingBytes = 0;
  }

  /** The records as they may be sent: each one checked, a refused one replaced by its `ifRefused`. */
  #vet(records: readonly OutboundRecord[], depth: number): OutboundRecord[] {
    const out: OutboundRecord[] = [];
    for (const record of records) {
      const reason = this.#o.check(record);
      if (reason === undefined) out.push(record);
      else out.push(...this.#replace(record, reason, depth));
    }
    return out;
  }

  #replace(record: OutboundRecord, reason: string, depth: number): OutboundRecord[] {
    let replacement: OutboundRecord[] = [];
    try {
      if (depth < MAX_REPLACEMENT_DEPTH && record.ifRefused) replacement = record.ifRefused(reason);
    } catch (err) {
      this.#o.logger.error(
        { lane: this.#o.lane, err },
        'building the replacement of a refused record failed',
      );
    }
    const vetted = this.#vet(replacement, depth + 1);
    // A reply topic that refuses what it is sent is bad input, logged at debug like other bad input: any
    // producer can name one, once per request.
    this.#o.logger[vetted.length === 0 ? 'error' : record.requestedTopic === true ? 'debug' : 'warn'](
      { lane: this.#o.lane, topic: record.topic, reason, replaced_by: vetted.map((r) => r.topic) },
      vetted.length > 0
        ? 'a record cannot be sent; publishing its replacement'
        : 'a record cannot be sent; dropped',
    );
    this.#o.lifecycle.emit('record.refused', {
      lane: this.#o.lane,
      topic: record.topic,
      reason,
      replaced: vetted.length,
    });
    return vetted;
  }

  /**
   * A reply topic a request named, deleted after the request was checked: once the broker has not known it
   * for UNKNOWN_TOPIC_CONFIRM_MS (a topic just created can be unknown to a broker for a moment), its
   * queued records are replaced where they stand (an error result on the default result topic, a dead
   * letter) and the rest go on. An own topic unknown stays a transient failure, retried.
   */
  #refuseGoneTopic(err: unknown): boolean {
    if (!(err instanceof SendError) || err.refused || err.unknownTopic === undefined) return false;
    const gone = err.unknownTopic;
    const pending = this.#queue.flatMap((j) => j.records).filter((r) => !this.#sent.has(r));
    const stranded = pending.filter((r) => r.topic === gone);
    if (stranded.length === 0 || stranded.some((r) => r.requestedTopic !== true)) return false;
    const since = this.#unknownSince.get(gone);
    if (since === undefined) this.#unknownSince.set(gone, Date.now());
    if (since === undefined || Date.now() - since < UNKNOWN_TOPIC_CONFIRM_MS) return false;
    this.#unknownSince.delete(gone);
    // In place, among what was not sent.
    for (const job of this.#queue) {
      job.records = job.records.flatMap((r) => {
        return !this.#sent.has(r) && r.topic === gone && r.requestedTopic === true
          ? this.#replace(r, `the reply topic ${gone} does not exist`, 0)
          : [r];
      });
    }
    return true;
  }

  /** Jobs from the head whose records fit in one request (at least the first job). */
  #nextJobs(): Job[] {
    const jobs: Job[] = [];
    let size = 0;
    for (const job of this.#queue) {
      if (jobs.length > 0 && size + job.bytes > this.#max) break;
      jobs.push(job);
      size += job.bytes;
    }
    return jobs;
  }

  async #sendLoop(): Promise<void> {
    this.#sending = true;
    try {
      while (!this.#closed && this.#queue.length > 0) {
        const jobs = this.#nextJobs();
        const records = jobs.flatMap((j) => j.records).filter((r) => !this.#sent.has(r));
        try {
          await this.#send(records, 0);
        } catch (err) {
          if (this.#refuseGoneTopic(err)) continue;
          this.#failed(err);
          return;
        }
        this.#unknownSince.clear();
        this.#failures = 0;
        this.#sent.clear();
        this.#queue.splice(0, jobs.length);
        for (const job of jobs) {
          this.#pendingBytes -= job.bytes;
          job.resolve();
        }
      }
    } finally {
      this.#sending = false;
    }
  }

  /**
   * Sends in requests of at most #max bytes. A request the broker refuses for good is split in halves
   * until the refused record is alone, which is then replaced. Throws on a transient failure.
   */
  async #send(records: readonly OutboundRecord[], depth: number): Promise<void> {
    for (const request of this.#requests(records)) {
      try {
        await this.#o.sender.send(request);
      } catch (err) {
        if (!(err instanceof SendError && err.refused)) throw err;
        if (request.length > 1) {
          const half = Math.ceil(request.length / 2);
          await this.#send(request.slice(0, half), depth);
          await this.#send(request.slice(half), depth);
          continue;
        }
        await this.#send(this.#replace(request[0] as OutboundRecord, err.message, depth), depth + 1);
      }
      if (depth === 0) for (const record of request) this.#sent.add(record);
    }
  }

  /**
   * Requests of at most #max bytes (a larger record goes alone), in order within each: the records of the
   * worker's own topics together, and those of each reply topic a request named apart. The broker appends
   * each partition of a request on its own, but a refusal fails the whole send, and what is sent again is
   * written twice: a reply topic that refuses records (compacted, a small max.message.bytes), named by any
   * producer, must not have other callers' results sent again and again.
   */
  *#requests(records: readonly OutboundRecord[]): Generator<OutboundRecord[]> {
    const groups = new Map<string, OutboundRecord[]>();
    for (const record of records) {
      const group = record.requestedTopic === true ? `reply:${record.topic}` : 'own';
      const members = groups.get(group);
      if (members) members.push(record);
      else groups.set(group, [record]);
    }
    for (const members of groups.values()) yield* this.#chunks(members);
  }

  *#chunks(records: readonly OutboundRecord[]): Generator<OutboundRecord[]> {
    let current: OutboundRecord[] = [];
    let size = 0;
    for (const record of records) {
      const n = recordSize(record);
      if (current.length > 0 && size + n > this.#max) {
        yield current;
        current = [];
        size = 0;
      }
      current.push(record);
      size += n;
    }
    if (current.length > 0) yield current;
  }

  #failed(err: unknown): void {
    const delay = backoffDelay(this.#o.backoff, this.#failures);
    this.#failures += 1;
    const reason = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
    this.#o.logger.warn(
      { lane: this.#o.lane, attempt: this.#failures, retry_in_ms: delay, reason },
      'publishing results failed; sending them again',
    );
    this.#o.lifecycle.emit('publish.failed', { lane: this.#o.lane, error: err, retryInMs: delay });
    if (this.#closed) return;
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      void this.#sendLoop();
    }, delay);
  }
}
