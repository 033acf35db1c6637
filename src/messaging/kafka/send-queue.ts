// Gathers the messages sent in one turn of the event loop into one produce request: thousands of
// concurrent calls cost a handful of round trips instead of one each. One request is in flight at a time
// (what arrives meanwhile goes in the next), so the idempotent producer keeps the order of the calls.
// A request the broker refuses for good is split in halves until the refused message is alone, so one
// caller's bad message (too large, say) fails only that caller's call.
import type { Logger } from '../../telemetry/logger.ts';
import type { KafkaClient } from './client.ts';
import { SendError } from '../engine/ports.ts';
import {
  DEFAULT_SEND_DEADLINE_MS,
  DeadlineProducer,
  producerMessage,
  type ProducerMessage,
} from './record-sender.ts';

/** A message to send: a null or absent key is none; an array header value repeats the header, in order;
 * an undefined header value is a header that is not there. A string is sent as its UTF-8 bytes. */
export interface QueuedMessage {
  key?: Buffer | string | null | undefined;
  value: Buffer | string | null;
  headers?: Readonly<Record<string, Buffer | string | (Buffer | string)[] | undefined>> | undefined;
  partition?: number | undefined;
}

interface Queued {
  message: ProducerMessage;
  resolve(): void;
  reject(err: Error): void;
}

export class SendQueue {
  readonly #producer: DeadlineProducer;
  readonly #maxBatch: number;
  #queued: Queued[] = [];
  #scheduled = false;
  #sending = false;
  #closed = false;

  /**
   * `maxBatch`: most messages in one request; `deadlineMs`: how long one request may take before its calls
   * reject with a retriable SendError naming the topics.
   */
  constructor(client: KafkaClient, maxBatch = 1000, deadlineMs = DEFAULT_SEND_DEADLINE_MS) {
    const logger: Logger | undefined = client.logger;
    this.#producer = new DeadlineProducer(client, logger, '-producer', deadlineMs);
    this.#maxBatch = maxBatch;
  }

  /** Reaches the brokers and gets a producer id; rejects (SendError) when they cannot be reached. */
  connect(): Promise<void> {
    return this.#producer.connect();
  }

  /** Resolves once the broker has the message; rejects with a SendError (`refused`: it never will). */
  enqueue(topic: string, message: QueuedMessage): Promise<void> {
    if (this.#closed) return Promise.reject(new SendError('the send queue is closed', false));
    let converted: ProducerMessage;
    try {
      converted = producerMessage(topic, message, true);
    } catch (err) {
      const e = err as Error;
      return Promise.reject(new SendError(`${e.name}: ${e.message}`, true, { cause: err }));
    }
    return new Promise((resolve, reject) => {
      this.#queued.push({ message: converted, resolve, reject });
      if (this.#queued.length >= this.#maxBatch) this.#flush();
      else if (!this.#scheduled) {
        this.#scheduled = true;
        setImmediate(() => {
          this.#scheduled = false;
          this.#flush();
        });
      }
    });
  }

  /** Rejects the calls not sent yet and closes the producer (a request in flight fails). */
  async close(): Promise<void> {
    this.#closed = true;
    const left = this.#queued;
    this.#queued = [];
    const error = new SendError('the send queue is closed', false);
    for (const q of left) q.reject(error);
    await this.#producer.close();
  }

  #flush(): void {
    if (this.#sending || this.#queued.length === 0) return;
    this.#sending = true;
    const batch = this.#queued.splice(0, this.#maxBatch);
    void this.#send(batch).finally(() => {
      this.#sending = false;
      this.#flush();
    });
  }

  /** Sends the batch; a refused one in halves, so that only the refused message's call rejects. */
  async #send(batch: Queued[]): Promise<void> {
    try {
      await this.#producer.send(batch.map((q) => q.message));
      for (const q of batch) q.resolve();
    } catch (err) {
      const error = err instanceof Error ? err : new Error(String(err));
      if (!(error instanceof SendError && error.refused && batch.length > 1) || this.#closed) {
        for (const q of batch) q.reject(error);
        return;
      }
      const half = Math.ceil(batch.length / 2);
      await this.#send(batch.slice(0, half));
      await this.#send(batch.slice(half));
    }
  }
}
