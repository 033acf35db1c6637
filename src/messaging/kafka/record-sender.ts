// The engine's RecordSender over an @platformatic/kafka producer: records to one send, and the broker's
// answer classified once: refused for good (the records will never be accepted as they are) or transient.
//
// What the library does not do the way the rest of the code (and Java producers) expect is done here:
// - bytes: without serializers the library writes keys, values and headers as given, and a string would be
//   written with its length in characters, so every string is encoded to UTF-8 bytes here;
// - repeated headers: the library writes every entry of a Map, so a header that repeats gets one Buffer key
//   per value (distinct Buffer objects are distinct keys), in order; a null value goes out as a header
//   without a value;
// - partitions: its default partitioner takes murmur2 >>> 0, Java's producer murmur2 & 0x7fffffff, which
//   differ for half of all keys (unless the partition count is a power of two); javaPartitioner is Java's;
// - a send that does not finish is bounded by a deadline (the send then rejects, retriable, naming the
//   topics), and the producer behind it is replaced; a producer is also replaced after three failed sends
//   in a row.
import { ProduceAcks, Producer, type MessageToProduce, type Partitioner } from '@platformatic/kafka';
import { SendError, type RecordSender } from '../engine/ports.ts';
import { headerEntries, type OutboundHeaders, type OutboundRecord } from '../engine/records.ts';
import type { Logger } from '../../telemetry/logger.ts';
import { unknownTopicOf } from './admin.ts';
import type { KafkaClient } from './client.ts';

/** A message as the library takes it: bytes only (the producer has no serializers). */
export type ProducerMessage = MessageToProduce<Buffer, Buffer, Buffer, Buffer>;

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
/** How long a send may take before it is given up on (ms): the library can hang on a missing topic. */
export const DEFAULT_SEND_DEADLINE_MS = 30_000;
const MAX_CHAIN_DEPTH = 8;

/** Whether `test` holds for the error or one it wraps (MultipleErrors' `errors`, `cause`), depth first. */
function findInChain(err: unknown, test: (e: Error) => boolean, depth = 0): Error | undefined {
  if (!(err instanceof Error) || depth > MAX_CHAIN_DEPTH) return undefined;
  if (test(err)) return err;
  const errors = (err as { errors?: unknown }).errors;
  if (Array.isArray(errors)) {
    for (const e of errors) {
      const found = findInChain(e, test, depth + 1);
      if (found) return found;
    }
  }
  return findInChain(err.cause, test, depth + 1);
}

const isLibraryError = (e: Error): boolean => {
  const code = (e as { code?: unknown }).code;
  return typeof code === 'string' && code.startsWith('PLT_KFK_');
};
const apiIdOf = (e: Error): string | undefined => {
  const id = (e as { apiId?: unknown }).apiId;
  return typeof id === 'string' ? id : undefined;
};
/** The library refusing the messages themselves: a serializer failed, or a message failed validation. */
const isMessageRejection = (e: Error): boolean =>
  (e as { code?: unknown }).code === 'PLT_KFK_USER' &&
  (e.message.startsWith('Failed to serialize') || e.message.startsWith('/options/messages'));

/** Whether the library's error (or one it wraps) says the records are refused for good. */
export function isRefusal(err: unknown): boolean {
  // Anything that is not the library's own is it failing on a value it was given: the same again fails again.
  if (err instanceof Error && !isLibraryError(err)) return true;
  return (
    findInChain(err, (e) => {
      const id = apiIdOf(e);
      return (id !== undefined && REFUSALS.has(id)) || isMessageRejection(e);
    }) !== undefined
  );
}

/** What went wrong, for logs and for the reason a refused record is replaced with: the broker's error
 * code and text when there is one (a size refusal says "larger than" or "TOO_LARGE"). */
export function describeSendError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const broker = findInChain(err, (e) => apiIdOf(e) !== undefined && apiIdOf(e) !== 'NONE');
  if (broker) {
    const detail = (broker as { serverErrorMessage?: unknown }).serverErrorMessage;
    return `${apiIdOf(broker)}: ${broker.message}${typeof detail === 'string' && detail ? ` (${detail})` : ''}`;
  }
  const leaf = findInChain(
    err,
    (e) => e !== err && !Array.isArray((e as { errors?: unknown }).errors) && e.cause === undefined,
  );
  const top = `${err.name}: ${err.message}`;
  return leaf && leaf.message !== err.message ? `${top} (${leaf.name}: ${leaf.message})` : top;
}

/**
 * Java's Utils.murmur2 over the key's bytes, in 32-bit arithmetic. The library's own (BigInt, its value
 * growing with the key) gives the same hash but takes half a second for a 64 KiB key and longer than
 * linearly beyond.
 */
export function murmur2(data: Buffer): number {
  const m = 0x5bd1e995;
  const length = data.length;
  let h = (0x9747b28c ^ length) | 0;
  const whole = length - (length % 4);
  for (let i = 0; i < whole; i += 4) {
    let k = data.readInt32LE(i);
    k = Math.imul(k, m);
    k ^= k >>> 24;
    k = Math.imul(k, m);
    h = Math.imul(h, m) ^ k;
  }
  const tail = length % 4;
  if (tail > 0) {
    if (tail === 3) h ^= (data[whole + 2] as number) << 16;
    if (tail >= 2) h ^= (data[whole + 1] as number) << 8;
    h ^= data[whole] as number;
    h = Math.imul(h, m);
  }
  h ^= h >>> 13;
  h = Math.imul(h, m);
  h ^= h >>> 15;
  return h | 0;
}

/**
 * Java's default partitioner for keyed records (murmur2 of the key bytes, made positive with & 0x7fffffff,
 * modulo the partition count: the library takes the modulo), so that the worker, kafkajs's default and
 * Spring/Java producers put a key on the same partition. Records without a key go round-robin per topic.
 */
export function javaPartitioner(): Partitioner<Buffer, Buffer, Buffer, Buffer> {
  const counters = new Map<string, number>();
  return (message, key) => {
    if (Buffer.isBuffer(key)) return murmur2(key) & 0x7fffffff;
    const next = ((counters.get(message.topic) ?? Math.floor(Math.random() * 0x7fffffff)) + 1) & 0x7fffffff;
    counters.set(message.topic, next);
    return next;
  };
}

/** The client's idempotent producer (so acks from all in-sync replicas and one request in flight) that
 * never creates topics and partitions keyed records as Java does. */
export function newProducer(client: KafkaClient, clientIdSuffix: string): Producer {
  return new Producer({
    ...client.options(clientIdSuffix),
    idempotent: true,
    acks: ProduceAcks.ALL,
    autocreateTopics: false,
    partitioner: javaPartitioner(),
  });
}

const bytes = (v: Buffer | string): Buffer => (Buffer.isBuffer(v) ? v : Buffer.from(v, 'utf8'));

function headerBytes(name: string, value: unknown): Buffer | null {
  if (Buffer.isBuffer(value) || typeof value === 'string') return bytes(value);
  if (value === null) return null;
  throw new TypeError(`header "${name}" has a value that is neither bytes, text nor null (${typeof value})`);
}

/**
 * Headers as the library writes them: one entry per value, in order, a repeated header under distinct
 * Buffer keys; a null value is a header without one (the library writes it as such). `undefined`: a
 * header that is not there when `skipUndefined`, else (like any other value that is neither bytes, text
 * nor null) a TypeError.
 */
export function headerMap(
  headers: Readonly<Record<string, unknown>> | OutboundHeaders | undefined,
  skipUndefined = false,
): Map<Buffer, Buffer> {
  const map = new Map<Buffer, Buffer | null>();
  for (const [name, value] of headerEntries(headers)) {
    if (value === undefined && skipUndefined) continue;
    if (typeof name !== 'string') throw new TypeError('a header entry is not a [name, value] pair');
    map.set(Buffer.from(name, 'utf8'), headerBytes(name, value));
  }
  // The library's types say Buffer; its record writer takes null as a header without a value.
  return map as Map<Buffer, Buffer>;
}

/** A message the library takes as it is: key and value as bytes (null: none), headers as headerMap's. */
export function producerMessage(
  topic: string,
  record: {
    key?: Buffer | string | null | undefined;
    value: Buffer | string | null;
    headers?: Readonly<Record<string, unknown>> | OutboundHeaders | undefined;
    partition?: number | undefined;
  },
  skipUndefinedHeaders = false,
): ProducerMessage {
  const message: ProducerMessage = { topic, headers: headerMap(record.headers, skipUndefinedHeaders) };
  if (record.key !== null && record.key !== undefined) message.key = bytes(record.key);
  if (record.value !== null) message.value = bytes(record.value);
  if (record.partition !== undefined) {
    // The library takes a partition modulo the topic's count (and fails on a negative one).
    if (!Number.isInteger(record.partition) || record.partition < 0) {
      throw new TypeError(`partition ${String(record.partition)} is not a partition number`);
    }
    message.partition = record.partition;
  }
  return message;
}

/** A partition the topic does not have, even in fresh metadata. */
class NoSuchPartition extends Error {
  override name = 'NoSuchPartition';
}

/**
 * The library takes a message's partition modulo the topic's partition count as it has it cached (for
 * 5 s): a partition just added to a reply topic would silently go to another one, where its caller does
 * not read. A partition past the cached count is looked up in fresh metadata; one the topic still does not
 * have refuses the send (a plain error: a refusal).
 */
async function partitionsKnown(producer: Producer, messages: readonly ProducerMessage[]): Promise<void> {
  const explicit = messages.filter((m) => m.partition !== undefined);
  if (explicit.length === 0) return;
  const topics = [...new Set(explicit.map((m) => m.topic))];
  const missing = (metadata: Awaited<ReturnType<Producer['metadata']>>) =>
    explicit.find((m) => (m.partition ?? 0) >= (metadata.topics.get(m.topic)?.partitionsCount ?? 0));
  if (!missing(await producer.metadata({ topics }))) return;
  const fresh = await producer.metadata({ topics, forceUpdate: true });
  const message = missing(fresh);
  if (message) {
    const count = fresh.topics.get(message.topic)?.partitionsCount ?? 0;
    throw new NoSuchPartition(
      `partition ${String(message.partition)} does not exist on "${message.topic}" (${count} partitions)`,
    );
  }
}

function topicsOf(messages: readonly ProducerMessage[]): string {
  return [...new Set(messages.map((m) => m.topic))].map((t) => `"${t}"`).join(', ');
}

/**
 * One producer of a client whose sends are bounded by a deadline and whose failures are SendErrors. The
 * producer is replaced after a send overran the deadline (it may still be stuck in it) and after
 * REPLACE_PRODUCER_AFTER transient failures in a row.
 */
export class DeadlineProducer {
  readonly #client: KafkaClient;
  readonly #clientIdSuffix: string;
  readonly #deadlineMs: number;
  readonly #logger: Logger | undefined;
  #producer: Producer;
  #failures = 0;

  constructor(client: KafkaClient, logger: Logger | undefined, clientIdSuffix: string, deadlineMs: number) {
    this.#client = client;
    this.#clientIdSuffix = clientIdSuffix;
    this.#deadlineMs = deadlineMs;
    this.#logger = logger;
    this.#producer = newProducer(client, clientIdSuffix);
  }

  /** Reaches the brokers and gets a producer id (the library would do so on the first send). */
  async connect(): Promise<void> {
    await this.#within(this.#producer.initIdempotentProducer({}), 'connecting the producer');
  }

  async close(): Promise<void> {
    await this.#producer.close(true);
  }

  /** Sends the messages, in order per partition; rejects with a SendError. */
  async send(messages: ProducerMessage[]): Promise<void> {
    const producer = this.#producer;
    try {
      await this.#within(
        partitionsKnown(producer, messages).then(() => producer.send({ messages })),
        `sending to ${topicsOf(messages)}`,
      );
      this.#failures = 0;
    } catch (err) {
      if (err instanceof SendError) {
        // Overran the deadline: that producer may hang on, so its sends go no further.
        if (producer === this.#producer) this.#replace('a send overran its deadline');
        throw err;
      }
      const refused = isRefusal(err);
      if (!refused && ++this.#failures % REPLACE_PRODUCER_AFTER === 0 && producer === this.#producer) {
        this.#replace('repeated failures');
      }
      const unknownTopic = unknownTopicOf(err);
      throw new SendError(describeSendError(err), refused, {
        cause: err,
        ...(unknownTopic === undefined ? {} : { unknownTopic }),
      });
    }
  }

  /** The promise, or a retriable SendError once the deadline has passed. */
  async #within<T>(promise: Promise<T>, what: string): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new SendError(`${what} did not finish within ${this.#deadlineMs} ms`, false)),
        this.#deadlineMs,
      );
    });
    promise.catch(() => undefined); // an answer after the deadline is nobody's
    try {
      return await Promise.race([promise, expired]);
    } finally {
      clearTimeout(timer);
    }
  }

  #replace(why: string): void {
    const old = this.#producer;
    this.#producer = newProducer(this.#client, this.#clientIdSuffix);
    void old.close(true).catch(() => undefined);
    this.#logger?.warn({ failures: this.#failures }, `replaced the producer: ${why}`);
  }
}

export interface KafkaRecordSenderOptions {
  /** Tells this producer's connections apart in the brokers' logs; default "-producer". */
  clientIdSuffix?: string;
  /** How long one send may take (ms); default DEFAULT_SEND_DEADLINE_MS. */
  deadlineMs?: number;
}

export class KafkaRecordSender implements RecordSender {
  readonly #producer: DeadlineProducer;

  constructor(client: KafkaClient, logger: Logger, options: KafkaRecordSenderOptions = {}) {
    this.#producer = new DeadlineProducer(
      client,
      logger,
      options.clientIdSuffix ?? '-producer',
      options.deadlineMs ?? DEFAULT_SEND_DEADLINE_MS,
    );
  }

  connect(): Promise<void> {
    return this.#producer.connect();
  }

  disconnect(): Promise<void> {
    return this.#producer.close();
  }

  async send(records: readonly OutboundRecord[]): Promise<void> {
    let messages: ProducerMessage[];
    try {
      messages = records.map((r) => producerMessage(r.topic, r));
    } catch (err) {
      // A value the protocol cannot carry: it will never be accepted as it is.
      throw new SendError(`${(err as Error).name}: ${(err as Error).message}`, true, { cause: err });
    }
    await this.#producer.send(messages);
  }
}
