// Decode -> validate -> route -> effect node -> result and dead-letter records, for one partition's
// fetched batch. Consecutive valid record_usage messages form one unit applied in one transaction.
import { performance } from 'node:perf_hooks';
import type { Message, TopicMessages } from 'kafkajs';
import { decodeRequest } from '../contracts/decode.ts';
import type { ModelError } from '../contracts/errors.ts';
import {
  HEADERS,
  headerBytes,
  readCorrelationHeader,
  readReplyPartition,
  readReplyTopic,
} from '../contracts/headers.ts';
import type { PatternRequest, RecordUsageRequest } from '../contracts/requests.ts';
import type { WorkerMetrics } from '../telemetry/metrics.ts';
import { UnitTrace } from './unit-trace.ts';
import type { ModelResult } from '../contracts/results.ts';
import { TOPIC_SPECS, type RequestTopic, type TopicNames } from '../contracts/topics.ts';
import type { ExecuteContext } from '../nodes/effect-node.ts';
import { buildResult } from '../nodes/effect-runner.ts';
import type {
  NodePatternAnalyticsEffect,
  NodePatternQueryEffect,
  NodePatternStorageEffect,
  NodePatternUpdateEffect,
} from '../nodes/index.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { BatchHandler, InboundMessage, Unit } from './batch-processor.ts';
import { messageIdentity } from './identity.ts';
import { deadLetterRecord, resultRecord, type ReplyTarget } from './records.ts';
import type { TopicDirectory } from './topic-directory.ts';

export interface Nodes {
  storage: NodePatternStorageEffect;
  query: NodePatternQueryEffect;
  update: NodePatternUpdateEffect;
  analytics: NodePatternAnalyticsEffect;
}

interface Prepared {
  message: InboundMessage;
  logical: RequestTopic;
  request: PatternRequest | undefined;
  error: ModelError | undefined;
  /** The body's correlation_id even when the request is refused, so the caller can match the error. */
  correlationId: string | null;
  reply: ReplyTarget;
  correlationHeader: Buffer | undefined;
  context: ExecuteContext;
}

interface RequestUnit extends Unit {
  prepared: Prepared[];
  usageBatch: boolean;
  /** Not selected by this run (replay phases): passed over without effect, result or dead letter. */
  skip?: boolean;
}

export interface Outcome {
  prepared: { logical: RequestTopic; operation: string; message: InboundMessage };
  result: ModelResult;
  deadLettered: boolean;
}

export interface RequestHandlerOptions {
  names: TopicNames;
  nodes: Nodes;
  directory: TopicDirectory;
  consumerGroup: string;
  maxMessageBytes: number;
  maxUsageBatch: number;
  logger: Logger;
  /** Replay: apply effects without publishing results (dead letters are still written). */
  publishResults?: boolean;
  onOutcome?: (outcome: Outcome) => void;
  metrics?: WorkerMetrics;
  /** A result whose record would be larger is replaced by a PAYLOAD_TOO_LARGE error (and dead-lettered). */
  maxResultBytes: number;
  /** Replay phases: which requests this run applies (undecodable ones have no request). */
  select?: (request: PatternRequest | undefined) => boolean;
}

function tooLarge(result: ModelResult, size: number, max: number): ModelResult {
  const rows = Array.isArray(result.data) ? ` (${result.data.length} rows)` : '';
  return {
    success: false,
    data: null,
    error: {
      code: 'PAYLOAD_TOO_LARGE',
      message:
        `the result is ${size} bytes${rows}, more than the ${max} bytes a result may have; ` +
        'ask for fewer rows (limit, offset)',
      details: { result_bytes: size, max_result_bytes: max },
    },
    metadata: result.metadata,
  };
}

export class RequestHandler implements BatchHandler<RequestUnit> {
  readonly #o: RequestHandlerOptions;

  constructor(options: RequestHandlerOptions) {
    this.#o = options;
  }

  plan(messages: InboundMessage[]): RequestUnit[] {
    const units: RequestUnit[] = [];
    let run: Prepared[] = [];
    const flush = () => {
      if (run.length > 0)
        units.push({ messages: run.map((p) => p.message), prepared: run, usageBatch: true });
      run = [];
    };
    for (const message of messages) {
      const prepared = this.#prepare(message);
      if (this.#o.select && !this.#o.select(prepared.request)) {
        flush();
        units.push({ messages: [message], prepared: [], usageBatch: false, skip: true });
        continue;
      }
      if (prepared.request?.operation === 'record_usage') {
        run.push(prepared);
        if (run.length >= this.#o.maxUsageBatch) flush();
        continue;
      }
      flush();
      units.push({ messages: [message], prepared: [prepared], usageBatch: false });
    }
    flush();
    return units;
  }

  async apply(unit: RequestUnit): Promise<TopicMessages[]> {
    if (unit.skip) return [];
    const traced = new UnitTrace(
      unit.prepared.map((p) => ({
        message: p.message,
        correlationId: p.correlationId,
        operation: p.request?.operation,
      })),
      unit.usageBatch,
      this.#o.consumerGroup,
      this.#o.metrics,
    );
    try {
      const records = await traced.run(async () => {
        const prepared = await Promise.all(unit.prepared.map((p) => this.#checkReplyTopic(p)));
        const results = unit.usageBatch
          ? await this.#applyUsage(prepared)
          : [await this.#applyOne(prepared[0] as Prepared)];
        return this.#records(prepared, results, traced);
      });
      unit.finish = (error) => traced.finish(error);
      return records;
    } catch (err) {
      traced.finish(err);
      throw err;
    }
  }

  #prepare(message: InboundMessage): Prepared {
    const known = this.#o.names.lookup(message.topic);
    const logical = known?.logical ?? 'pattern.insert';
    const eventTime = new Date(Number(message.timestamp));
    let error: ModelError | undefined;
    const replyTopic = readReplyTopic(message.headers[HEADERS.replyTopic]);
    const replyPartition = readReplyPartition(message.headers[HEADERS.replyPartition]);
    const correlation = readCorrelationHeader(message.headers[HEADERS.correlationId]);
    const reply: ReplyTarget = { topic: this.#o.names.result(logical) };
    if (!replyTopic.ok) error = { code: 'VALIDATION_ERROR', message: replyTopic.reason };
    else if (!replyPartition.ok) error = { code: 'VALIDATION_ERROR', message: replyPartition.reason };
    else if (replyTopic.value) {
      reply.topic = replyTopic.value;
      reply.partition = replyPartition.value;
    }
    if (!correlation.ok) error ??= { code: 'VALIDATION_ERROR', message: correlation.reason };
    const correlationHeader = correlation.ok
      ? correlation.value
      : headerBytes(message.headers[HEADERS.correlationId])?.subarray(0, 64);

    let request: PatternRequest | undefined;
    const decoded = decodeRequest(logical, message.value, { maxBytes: this.#o.maxMessageBytes });
    const correlationId = decoded.ok ? (decoded.request.correlation_id ?? null) : null;
    if (!decoded.ok) error ??= decoded.error;
    else if (!error) request = decoded.request;
    const source = { topic: message.topic, partition: message.partition, offset: message.offset };
    const identity = messageIdentity({
      bodyCorrelationId: correlationId,
      headerCorrelationId: correlationHeader,
      ...source,
    });
    return {
      message,
      logical,
      request,
      error,
      correlationId,
      reply,
      correlationHeader,
      context: { identity, eventTime, source, validated: true },
    };
  }

  /** A reply topic must exist and have the partition asked for; else the request is refused. */
  async #checkReplyTopic(p: Prepared): Promise<Prepared> {
    const defaultTopic = this.#o.names.result(p.logical);
    // Checked even for a request already refused: its error result goes to the reply path, and a
    // missing topic or partition there would fail the publish for ever and block the partition.
    if (p.reply.topic === defaultTopic && p.reply.partition === undefined) return p;
    const partitions = await this.#o.directory.partitions(p.reply.topic);
    let reason: string | undefined;
    if (partitions === undefined)
      reason = `kafka_replyTopic "${p.reply.topic}" does not exist; refusing to reply there`;
    else if (p.reply.partition !== undefined && p.reply.partition >= partitions) {
      reason = `kafka_replyPartition ${p.reply.partition} does not exist on "${p.reply.topic}" (${partitions} partitions)`;
    }
    if (!reason) return p;
    this.#o.logger.warn({ topic: p.message.topic, offset: p.message.offset, reason }, 'refused reply path');
    return {
      ...p,
      error: p.error ?? { code: 'VALIDATION_ERROR', message: reason },
      request: undefined,
      reply: { topic: defaultTopic },
    };
  }

  #errorResult(p: Prepared, error: ModelError): ModelResult {
    const operation = typeof p.request?.operation === 'string' ? p.request.operation : '';
    return buildResult(
      { success: false, data: null, error },
      {
        correlationId: p.correlationId,
        operation,
        node: TOPIC_SPECS[p.logical].node,
        startedAt: performance.now(),
      },
      p.context,
    );
  }

  async #applyOne(p: Prepared): Promise<ModelResult> {
    if (p.error || !p.request)
      return this.#errorResult(p, p.error ?? { code: 'INTERNAL', message: 'no request' });
    const { nodes } = this.#o;
    const request = p.request;
    switch (p.logical) {
      case 'pattern.insert':
        return nodes.storage.executeEffect(request as never, p.context);
      case 'pattern.search.request':
        return nodes.query.executeEffect(request as never, p.context);
      case 'pattern.usage':
        return nodes.update.executeEffect(request as never, p.context);
      case 'pattern.analytics.compute':
        return nodes.analytics.executeEffect(request as never, p.context);
    }
  }

  async #applyUsage(prepared: Prepared[]): Promise<ModelResult[]> {
    const valid = prepared.filter((p) => !p.error && p.request);
    const results = await this.#o.nodes.update.recordUsageBatch(
      valid.map((p) => ({ request: p.request as RecordUsageRequest, context: p.context })),
    );
    const byPrepared = new Map(valid.map((p, i) => [p, results[i] as ModelResult]));
    return prepared.map((p) => byPrepared.get(p) ?? this.#errorResult(p, p.error as ModelError));
  }

  #records(prepared: Prepared[], results: ModelResult[], traced: UnitTrace): TopicMessages[] {
    const byTopic = new Map<string, Message[]>();
    const push = (topic: string, message: Message) => {
      const list = byTopic.get(topic);
      if (list) list.push(message);
      else byTopic.set(topic, [message]);
    };
    prepared.forEach((p, i) => {
      let result = results[i] as ModelResult;
      if (this.#o.publishResults !== false) {
        // The producer span's own context; the request's when no SDK is running (spans are no-ops).
        const traceparent =
          traced.producer(i, p.reply.topic, p.reply.partition) ??
          headerBytes(p.message.headers[HEADERS.traceparent])?.toString('latin1');
        const build = () =>
          resultRecord({ result, request: p.message, correlationHeader: p.correlationHeader, traceparent });
        let record = build();
        const size = Buffer.byteLength(record.value as string);
        if (size > this.#o.maxResultBytes) {
          // Larger than the broker takes: publishing it would fail for ever. Say so instead.
          result = tooLarge(result, size, this.#o.maxResultBytes);
          record = build();
        }
        if (p.reply.partition !== undefined) record.partition = p.reply.partition;
        push(p.reply.topic, record);
      }
      const deadLettered = !result.success && result.metadata.duplicate !== true;
      if (deadLettered && result.error) {
        push(
          this.#o.names.dlq(p.logical),
          deadLetterRecord({ request: p.message, error: result.error, consumerGroup: this.#o.consumerGroup }),
        );
      }
      traced.outcome(i, result, deadLettered);
      this.#o.onOutcome?.({
        prepared: { logical: p.logical, operation: result.metadata.operation, message: p.message },
        result,
        deadLettered,
      });
    });
    return [...byTopic].map(([topic, messages]) => ({ topic, messages }));
  }
}
