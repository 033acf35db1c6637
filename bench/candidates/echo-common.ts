// What both echo processes share: the reply to a request record, and the per-partition answering order.
// A reply goes to the reply topic's partition of the same number, carries the request's value and its
// kafka_correlationId header; the roll measurement's reader takes the send time and sequence from the value.

export interface EchoEnv {
  brokers: string[];
  requestTopic: string;
  replyTopic: string;
  groupId: string;
  name: string;
}

export function echoEnv(): EchoEnv {
  const need = (k: string) => {
    const v = process.env[k];
    if (!v) throw new Error(`${k} is required`);
    return v;
  };
  return {
    brokers: (process.env.KAFKA_BROKERS || '127.0.0.1:9092').split(','),
    requestTopic: need('REQUEST_TOPIC'),
    replyTopic: need('REPLY_TOPIC'),
    groupId: need('KAFKA_GROUP_ID'),
    name: process.env.ECHO_NAME ?? `echo-${process.pid}`,
  };
}

export const CORRELATION_HEADER = 'kafka_correlationId';

/** Runs work for one partition after the partition's earlier work, so replies and commits stay in order. */
export class PartitionChains {
  readonly #chains = new Map<string, Promise<void>>();
  #pending = 0;

  add(partitionKey: string, work: () => Promise<void>, onError: (err: unknown) => void): void {
    this.#pending += 1;
    const next = (this.#chains.get(partitionKey) ?? Promise.resolve())
      .then(work)
      .catch(onError)
      .finally(() => {
        this.#pending -= 1;
        if (this.#chains.get(partitionKey) === next) this.#chains.delete(partitionKey);
      });
    this.#chains.set(partitionKey, next);
  }

  get pending(): number {
    return this.#pending;
  }

  async drain(): Promise<void> {
    while (this.#chains.size > 0) await Promise.allSettled([...this.#chains.values()]);
  }
}

export function log(name: string, msg: string, extra?: unknown): void {
  const detail =
    extra instanceof Error ? `: ${extra.message}` : extra === undefined ? '' : ` ${JSON.stringify(extra)}`;
  process.stderr.write(`${new Date().toISOString()} ${name} ${msg}${detail}\n`);
}
