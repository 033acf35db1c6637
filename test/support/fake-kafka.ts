// A stand-in for the kafkajs client, for the lane consumer's own logic in-process (start failures, crash
// handling): consumers whose calls can be made to fail, and events the test emits. The engine and the
// messages themselves are tested against the real broker elsewhere.
import type { Kafka } from 'kafkajs';

export class FakeConsumer {
  readonly events = {
    GROUP_JOIN: 'consumer.group_join',
    REBALANCING: 'consumer.rebalancing',
    HEARTBEAT: 'consumer.heartbeat',
    CRASH: 'consumer.crash',
    STOP: 'consumer.stop',
  } as const;
  readonly #listeners = new Map<string, ((e: unknown) => void)[]>();
  failConnect: Error | undefined;
  /** After a crash kafkajs's consumer throws on pause and resume. */
  crashed = false;
  readonly calls: string[] = [];

  on(event: string, listener: (e: unknown) => void) {
    this.#listeners.set(event, [...(this.#listeners.get(event) ?? []), listener]);
    return () => undefined;
  }
  emit(event: string, payload: unknown) {
    for (const l of this.#listeners.get(event) ?? []) l({ payload });
  }
  connect() {
    this.calls.push('connect');
    return this.failConnect ? Promise.reject(this.failConnect) : Promise.resolve();
  }
  subscribe() {
    return Promise.resolve();
  }
  run() {
    this.calls.push('run');
    return Promise.resolve();
  }
  #maybeThrow(what: string) {
    this.calls.push(what);
    if (this.crashed) throw new Error(`Consumer group was not initialized (${what})`);
  }
  pause() {
    this.#maybeThrow('pause');
  }
  resume() {
    this.#maybeThrow('resume');
  }
  seek() {
    this.#maybeThrow('seek');
  }
  commitOffsets() {
    return Promise.resolve();
  }
  disconnect() {
    this.calls.push('disconnect');
    return Promise.resolve();
  }
}

class FakeProducer {
  connect() {
    return Promise.resolve();
  }
  disconnect() {
    return Promise.resolve();
  }
  sendBatch() {
    return Promise.resolve([]);
  }
}

/** `consumerFor(n)`: the n-th consumer asked for (0-based), to set its failures before it is used. */
export function fakeKafka(prepare: (consumer: FakeConsumer, index: number) => void = () => undefined) {
  const consumers: FakeConsumer[] = [];
  const kafka = {
    consumer: () => {
      const consumer = new FakeConsumer();
      prepare(consumer, consumers.length);
      consumers.push(consumer);
      return consumer;
    },
    producer: () => new FakeProducer(),
    // A broker where no group has committed anything: the lanes' offset migration has nothing to do.
    admin: () => ({
      connect: () => Promise.resolve(),
      disconnect: () => Promise.resolve(),
      fetchOffsets: ({ topics }: { topics: string[] }) =>
        Promise.resolve(topics.map((topic) => ({ topic, partitions: [] }))),
    }),
  };
  return { kafka: kafka as unknown as Kafka, consumers };
}
