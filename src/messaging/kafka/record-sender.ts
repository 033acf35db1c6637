// The engine's RecordSender over a kafkajs producer: records to one sendBatch, and the broker's answer
// classified once: refused for good (the records will never be accepted as they are) or transient. An
// idempotent producer that keeps failing after a broker restart can be left answering "out of order
// sequence number" for ever, so after three failed sends in a row it is replaced by a new one.
import type { Producer } from 'kafkajs';
import { SendError, type RecordSender } from '../engine/ports.ts';
import type { OutboundRecord } from '../engine/records.ts';
import type { Logger } from '../../telemetry/logger.ts';

/** Broker answers that a record or a topic will never accept, whatever the retries. */
const REFUSALS = new Set([
  'MESSAGE_TOO_LARGE',
  'RECORD_LIST_TOO_LARGE',
  'INVALID_RECORD',
  'CORRUPT_MESSAGE',
  'INVALID_TOPIC_EXCEPTION',
  'TOPIC_AUTHORIZATION_FAILED',
  'CLUSTER_AUTHORIZATION_FAILED',
  'POLICY_VIOLATION',
  'UNSUPPORTED_FOR_MESSAGE_FORMAT',
  'INVALID_PARTITIONS',
]);

const REPLACE_PRODUCER_AFTER = 3;

/** Whether kafkajs's error (or one it wraps) says the records are refused for good. */
export function isRefusal(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 5; depth++) {
    const type = (e as { type?: unknown }).type;
    if (typeof type === 'string' && REFUSALS.has(type)) return true;
    // Anything that is not kafkajs's own is its encoder refusing a value (a bad header, a bad key).
    if (!e.name.startsWith('KafkaJS')) return true;
    e =
      (e as { cause?: unknown; originalError?: unknown }).cause ??
      (e as { originalError?: unknown }).originalError;
  }
  return false;
}

type KafkaMessage = {
  key: Buffer | string | null;
  value: Buffer | string | null;
  headers: OutboundRecord['headers'];
  partition?: number;
};

function topicMessages(records: readonly OutboundRecord[]): { topic: string; messages: KafkaMessage[] }[] {
  const byTopic = new Map<string, KafkaMessage[]>();
  for (const r of records) {
    const message: KafkaMessage = { key: r.key, value: r.value, headers: r.headers };
    if (r.partition !== undefined) message.partition = r.partition;
    const list = byTopic.get(r.topic);
    if (list) list.push(message);
    else byTopic.set(r.topic, [message]);
  }
  return [...byTopic].map(([topic, messages]) => ({ topic, messages }));
}

export class KafkaRecordSender implements RecordSender {
  #producer: Producer;
  readonly #newProducer: () => Producer;
  readonly #logger: Logger;
  #failures = 0;

  constructor(newProducer: () => Producer, logger: Logger) {
    this.#newProducer = newProducer;
    this.#producer = newProducer();
    this.#logger = logger;
  }

  connect(): Promise<void> {
    return this.#producer.connect();
  }

  disconnect(): Promise<void> {
    return this.#producer.disconnect();
  }

  async send(records: readonly OutboundRecord[]): Promise<void> {
    try {
      await this.#producer.sendBatch({ topicMessages: topicMessages(records), acks: -1 });
      this.#failures = 0;
    } catch (err) {
      const refused = isRefusal(err);
      if (!refused && ++this.#failures % REPLACE_PRODUCER_AFTER === 0) await this.#replace();
      const reason = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
      throw new SendError(reason, refused, { cause: err });
    }
  }

  async #replace(): Promise<void> {
    try {
      const fresh = this.#newProducer();
      await fresh.connect();
      const old = this.#producer;
      this.#producer = fresh;
      void old.disconnect().catch(() => undefined);
      this.#logger.warn({ failures: this.#failures }, 'replaced the producer after repeated failures');
    } catch (err) {
      this.#logger.warn({ err }, 'could not replace the producer');
    }
  }
}
