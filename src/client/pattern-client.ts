// Request/reply over Kafka: one typed method per operation. Requests carry a fresh correlation id in
// the body and in kafka_correlationId, and name this client's partition of the shared reply topic in
// kafka_replyTopic/kafka_replyPartition (Spring's encoding); replies are matched by that id.
import { randomUUID } from 'node:crypto';
import { quietKafkaClient, type KafkaClient, type KafkaConnection } from '../messaging/kafka/client.ts';
import { validateRequest } from '../contracts/decode.ts';
import { HEADERS, headerBytes } from '../contracts/headers.ts';
import { modelResultSchema, type ModelResult } from '../contracts/results.ts';
import { TopicNames } from '../contracts/topics.ts';
import {
  ALL_OPERATIONS,
  isWriteOperation,
  keyOfRequest,
  OPERATIONS,
  topicOfOperation,
  type MethodOf,
  type Operation,
  type RequestInputOf,
  type ResultDataOf,
} from '../contracts/operations.ts';
import { context, endSpan, startProducerSpan } from '../telemetry/tracing.ts';
import { ClientClosedError, RequestTimeoutError, RequestValidationError } from './errors.ts';
import { ReplyConsumer, type ReplyMessage } from '../messaging/kafka/reply-consumer.ts';
import { derivedPatternId } from '../nodes/ids.ts';
import { SendQueue } from '../messaging/kafka/send-queue.ts';

export type RequestBody<Op extends Operation> = Omit<RequestInputOf<Op>, 'operation'>;
export type ResultOf<Op extends Operation> = ModelResult<ResultDataOf<Op>>;

/** The id the worker derives for an insert without data.pattern_id (identity `cid:<correlation_id>`). */
function insertKey(
  operation: string,
  body: Record<string, unknown>,
  correlationId: string,
): string | undefined {
  if (operation !== 'insert') return undefined;
  const data = body.data as { pattern_id?: unknown } | undefined;
  if (typeof data?.pattern_id === 'string') return undefined;
  return derivedPatternId(`cid:${correlationId.toLowerCase()}`);
}

/** Headers of a request: a value per name (a Buffer is sent as its bytes). */
export type RequestHeaders = Record<string, string | Buffer | undefined>;

export interface PatternClientOptions {
  /** Brokers as host:port; ignored when `connection` is given. Default 127.0.0.1:9092. */
  brokers?: string[];
  /** Brokers with SASL and TLS, e.g. kafkaConnection(loadConfig()) from the worker's settings. */
  connection?: KafkaConnection;
  topicPrefix?: string;
  clientId?: string;
  /** Default per-call timeout. */
  timeoutMs?: number;
  /** Partition of the reply topic to read; random when not given. */
  replyPartition?: number;
  /** Create the reply topic if it is missing. Default true. */
  createReplyTopic?: boolean;
  /** Validate requests locally so a bad one fails before it is sent. Default true. */
  validate?: boolean;
  /** Send each call's deadline (pattern-deadline-ms = now + 80% of the timeout), so the worker skips reads
   * nobody waits for any more and says so in time. Default true. */
  sendDeadlines?: boolean;
}

export interface SendOptions {
  /** Use this correlation id (e.g. to retry a write idempotently) instead of a fresh one. */
  correlationId?: string;
  /** Message key; default: the pattern the request concerns. */
  key?: string;
  headers?: RequestHeaders;
}

export interface CallOptions extends SendOptions {
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface SentRequest {
  topic: string;
  correlationId: string;
}

interface Pending {
  resolve(result: ModelResult): void;
  reject(err: Error): void;
}

const DEFAULT_TIMEOUT_MS = 30_000;

class PatternClientBase {
  readonly names: TopicNames;
  readonly #kafka: KafkaClient;
  readonly #options: PatternClientOptions;
  readonly #pending = new Map<string, Pending>();
  readonly #replies: ReplyConsumer;
  #queue: SendQueue | undefined;
  #state: 'new' | 'connecting' | 'open' | 'closed' = 'new';
  readonly send: FireAndForget;

  constructor(options: PatternClientOptions = {}) {
    this.#options = options;
    const clientId = options.clientId ?? 'pattern-client';
    this.#kafka = quietKafkaClient(
      clientId,
      options.connection ?? { brokers: options.brokers ?? ['127.0.0.1:9092'] },
    );
    this.names = new TopicNames(options.topicPrefix ?? '');
    this.#replies = new ReplyConsumer({
      client: this.#kafka,
      topic: this.names.reply(),
      ...(options.replyPartition === undefined ? {} : { partition: options.replyPartition }),
      createTopic: options.createReplyTopic ?? true,
      requireTopics: this.names.requests(),
      startTimeoutMs: 30_000,
      onReply: (message) => this.#onReply(message),
    });
    this.send = fireAndForget(this);
  }

  /** Requests now in flight (sent or queued, not yet answered). */
  get inFlight(): number {
    return this.#pending.size;
  }

  get replyTopic(): string {
    return this.#replies.topic;
  }

  get replyPartition(): number {
    return this.#replies.partition;
  }

  async connect(): Promise<this> {
    if (this.#state !== 'new') throw new Error(`PatternClient.connect() called when ${this.#state}`);
    this.#state = 'connecting';
    try {
      const queue = new SendQueue(this.#kafka);
      this.#queue = queue;
      await queue.connect();
      await this.#replies.start();
      this.#state = 'open';
      return this;
    } catch (err) {
      await this.close();
      throw err;
    }
  }

  /** Rejects every pending request with ClientClosedError and disconnects. */
  async close(): Promise<void> {
    this.#state = 'closed';
    for (const [correlationId, pending] of this.#pending) {
      pending.reject(new ClientClosedError(correlationId));
    }
    this.#pending.clear();
    const queue = this.#queue;
    this.#queue = undefined;
    await Promise.all([this.#replies.stop(), queue?.close()]);
  }

  /** Sends a request and resolves with its result (success or not); rejects on timeout, abort or close. */
  async request<Op extends Operation>(
    operation: Op,
    body: RequestBody<Op>,
    options: CallOptions = {},
  ): Promise<ResultOf<Op>> {
    const timeoutMs = options.timeoutMs ?? this.#options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    // At 80% of the timeout, so that a DEADLINE_EXCEEDED answer still reaches this caller in time and the
    // call ends with a definite "not run" rather than a timeout.
    const deadline =
      (this.#options.sendDeadlines ?? true) ? Date.now() + Math.round(timeoutMs * 0.8) : undefined;
    const { topic, correlationId, message } = this.#prepare(operation, body, options, true, deadline);
    const signal = options.signal;
    signal?.throwIfAborted();
    if (this.#pending.has(correlationId)) {
      throw new Error(`a request with correlation id ${correlationId} is already in flight`);
    }
    // One span from send to reply: the worker's spans continue it, so the round trip is one trace.
    const span = this.#traceSend(topic, operation, correlationId, message.headers);
    const reply = new Promise<ModelResult>((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        this.#pending.delete(correlationId);
      };
      const onAbort = () => {
        done();
        reject(signal?.reason instanceof Error ? signal.reason : new Error('aborted'));
      };
      const timer = setTimeout(() => {
        done();
        reject(new RequestTimeoutError(topic, operation, correlationId, timeoutMs));
      }, timeoutMs);
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#pending.set(correlationId, {
        resolve: (result) => {
          done();
          resolve(result);
        },
        reject: (err) => {
          done();
          reject(err);
        },
      });
    });
    this.#open()
      .enqueue(topic, message)
      .catch((err: unknown) => {
        this.#pending.get(correlationId)?.reject(err instanceof Error ? err : new Error(String(err)));
      });
    try {
      const result = await reply;
      span.setAttribute('pattern.outcome', result.success ? 'success' : 'error');
      endSpan(span, undefined, result.error?.code);
      return result as ResultOf<Op>;
    } catch (err) {
      endSpan(span, err, err instanceof Error ? err.name : 'error');
      throw err;
    }
  }

  /** Sends a request without waiting for its result; resolves once Kafka has acknowledged it. */
  async emit<Op extends Operation>(
    operation: Op,
    body: RequestBody<Op>,
    options: SendOptions = {},
  ): Promise<SentRequest> {
    const { topic, correlationId, message } = this.#prepare(operation, body, options, false);
    const span = this.#traceSend(topic, operation, correlationId, message.headers);
    try {
      await this.#open().enqueue(topic, message);
      endSpan(span);
    } catch (err) {
      endSpan(span, err);
      throw err;
    }
    return { topic, correlationId };
  }

  #traceSend(topic: string, operation: string, correlationId: string, headers: RequestHeaders) {
    const { span, headers: trace } = startProducerSpan(context.active(), topic, undefined);
    span.setAttributes({
      'messaging.message.conversation_id': correlationId,
      'pattern.operation': operation,
    });
    Object.assign(headers, trace);
    return span;
  }

  /**
   * Late-reply pickup: what became of an earlier request, asked by its correlation id (from
   * RequestTimeoutError.correlationId, or any producer's). `data.status` is `applied` (with the result
   * first published), `unknown` (not applied yet, failed, or never received) or `not_stored` (a read,
   * when `operation` says so). Pass `identity` instead to name a record by its message identity.
   */
  resultOf(
    correlationId: string | { identity: string },
    options: CallOptions & { operation?: Operation } = {},
  ) {
    const target =
      typeof correlationId === 'string'
        ? { request_correlation_id: correlationId }
        : { request_identity: correlationId.identity };
    const { operation, ...call } = options;
    return this.request('get_result', { ...target, request_operation: operation ?? null }, call);
  }

  #open(): SendQueue {
    if (this.#state !== 'open' || !this.#queue) throw new ClientClosedError();
    return this.#queue;
  }

  #prepare<Op extends Operation>(
    operation: Op,
    body: RequestBody<Op>,
    options: SendOptions,
    expectReply: boolean,
    deadline?: number,
  ) {
    this.#open();
    const logical = topicOfOperation(operation);
    if (!logical) throw new Error(`unknown operation "${operation}"`);
    const correlationId = options.correlationId ?? randomUUID();
    const value = { ...(body as Record<string, unknown>), operation, correlation_id: correlationId };
    if (this.#options.validate ?? true) {
      const checked = validateRequest(logical, value);
      if (!checked.ok) throw new RequestValidationError(operation, checked.error);
    }
    const headers: RequestHeaders = {
      ...options.headers,
      [HEADERS.correlationId]: correlationId,
      [HEADERS.contentType]: 'application/json',
    };
    if (expectReply) {
      const partition = Buffer.alloc(4);
      partition.writeInt32BE(this.#replies.partition);
      headers[HEADERS.replyTopic] = this.#replies.topic;
      headers[HEADERS.replyPartition] = partition;
      // A read still queued when this passes is answered DEADLINE_EXCEEDED instead of being run for nobody.
      if (deadline !== undefined) headers[HEADERS.deadline] = String(deadline);
    }
    // One pattern's requests share a key so that they stay in order on one partition; an insert without
    // data.pattern_id is keyed by the id the worker will derive from its identity (nodes/ids.ts). A write
    // of no one pattern (batch_insert, global compute_analytics) is keyed by its correlation id: the worker
    // keeps a partition's writes without a key in order among themselves, one after the other, so one
    // slow unkeyed write (anyone's) held up every other.
    const key =
      options.key ??
      keyOfRequest(operation, value) ??
      insertKey(operation, value, correlationId) ??
      (isWriteOperation(operation) ? correlationId : undefined);
    return {
      topic: this.names.request(logical),
      correlationId,
      message: { key: key ?? null, value: JSON.stringify(value), headers },
    };
  }

  #onReply(message: ReplyMessage): void {
    const id = headerBytes(message.headers[HEADERS.correlationId])?.toString('utf8');
    const pending = id === undefined ? undefined : this.#pending.get(id);
    if (!pending) return; // another client's reply on a shared partition, or one that timed out
    try {
      const parsed = modelResultSchema.safeParse(JSON.parse(message.value?.toString('utf8') ?? 'null'));
      if (parsed.success) pending.resolve(parsed.data);
      else pending.reject(new Error(`reply for correlation id ${id} is not a ModelResult`));
    } catch {
      pending.reject(new Error(`reply for correlation id ${id} is not valid JSON`));
    }
  }
}

/** One method per operation, named by the registry (operations.ts), e.g. `client.recordUsage(body)`. */
export type OperationMethods = {
  [Op in Operation as MethodOf<Op>]: (body: RequestBody<Op>, options?: CallOptions) => Promise<ResultOf<Op>>;
};

/** The same methods under `client.send.*`: resolve once Kafka has the request, without waiting for its result. */
type FireAndForget = {
  [Op in Operation as MethodOf<Op>]: (body: RequestBody<Op>, options?: SendOptions) => Promise<SentRequest>;
};

/** Method names of the client and the operation each sends, from the registry. */
export const METHOD_OPERATIONS = Object.fromEntries(
  ALL_OPERATIONS.map((operation) => [OPERATIONS[operation].method, operation]),
) as { [Op in Operation as MethodOf<Op>]: Op };

function fireAndForget(client: PatternClientBase): FireAndForget {
  const entries = Object.entries(METHOD_OPERATIONS).map(([method, operation]) => [
    method,
    (body: RequestBody<Operation>, options?: SendOptions) => client.emit(operation, body, options),
  ]);
  return Object.fromEntries(entries) as FireAndForget;
}

for (const [method, operation] of Object.entries(METHOD_OPERATIONS)) {
  Object.defineProperty(PatternClientBase.prototype, method, {
    value(this: PatternClientBase, body: RequestBody<Operation>, options?: CallOptions) {
      return this.request(operation, body, options);
    },
    writable: true,
    configurable: true,
  });
}

/** The request/reply client: PatternClientBase plus one typed method per operation. */
export type PatternClient = PatternClientBase & OperationMethods;
export const PatternClient = PatternClientBase as new (options?: PatternClientOptions) => PatternClient;
