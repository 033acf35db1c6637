// Gathers the messages sent in one turn of the event loop into one produce request: thousands of
// concurrent calls cost a handful of round trips instead of one each. Order per key is kept because
// the producer is idempotent with one request in flight.
import type { Message, Producer } from 'kafkajs';

interface Queued {
  message: Message;
  resolve(): void;
  reject(err: Error): void;
}

export class SendQueue {
  readonly #producer: Producer;
  readonly #maxBatch: number;
  #queued = new Map<string, Queued[]>();
  #size = 0;
  #scheduled = false;

  constructor(producer: Producer, maxBatch = 1000) {
    this.#producer = producer;
    this.#maxBatch = maxBatch;
  }

  enqueue(topic: string, message: Message): Promise<void> {
    return new Promise((resolve, reject) => {
      const list = this.#queued.get(topic) ?? [];
      list.push({ message, resolve, reject });
      this.#queued.set(topic, list);
      this.#size += 1;
      if (this.#size >= this.#maxBatch) this.#flush();
      else if (!this.#scheduled) {
        this.#scheduled = true;
        setImmediate(() => this.#flush());
      }
    });
  }

  #flush(): void {
    this.#scheduled = false;
    if (this.#size === 0) return;
    const batch = this.#queued;
    this.#queued = new Map();
    this.#size = 0;
    const waiters = [...batch.values()].flat();
    this.#producer
      .sendBatch({
        acks: -1,
        topicMessages: [...batch].map(([topic, items]) => ({ topic, messages: items.map((q) => q.message) })),
      })
      .then(
        () => waiters.forEach((q) => q.resolve()),
        (err: unknown) => {
          const error = err instanceof Error ? err : new Error(String(err));
          waiters.forEach((q) => q.reject(error));
        },
      );
  }
}
