// Spans of the message path, named and attributed by OpenTelemetry's messaging and database
// conventions: a consumer span per message (continuing the producer's traceparent), a span per
// effect-node operation, PostgreSQL spans, and a producer span per result that injects its own
// traceparent. With no SDK started these are no-ops.
import {
  context,
  createContextKey,
  propagation,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Context,
  type Link,
  type Span,
  type TextMapGetter,
  type TextMapSetter,
} from '@opentelemetry/api';
import type { MessageHeaders } from '../contracts/headers.ts';

export const tracer = trace.getTracer('pattern-worker');

const headerGetter: TextMapGetter<MessageHeaders> = {
  keys: (carrier) => Object.keys(carrier),
  get(carrier, key) {
    const value = carrier[key];
    const last = Array.isArray(value) ? value[value.length - 1] : value;
    if (last === undefined || last === null) return undefined; // a header without a value
    return Buffer.isBuffer(last) ? last.toString('latin1') : last;
  },
};

const headerSetter: TextMapSetter<Record<string, Buffer | string | undefined>> = {
  set(carrier, key, value) {
    carrier[key] = value;
  },
};

/** The producer's context from a message's traceparent/tracestate headers. */
export function extractContext(headers: MessageHeaders): Context {
  return propagation.extract(ROOT_CONTEXT, headers, headerGetter);
}

/** Writes the span's traceparent (and tracestate) into outgoing headers. */
export function injectContext(ctx: Context, headers: Record<string, Buffer | string | undefined>): void {
  propagation.inject(ctx, headers, headerSetter);
}

const CORRELATION_ID = createContextKey('pattern-worker.correlation_id');

export function withCorrelationId(ctx: Context, correlationId: string | null): Context {
  return correlationId ? ctx.setValue(CORRELATION_ID, correlationId) : ctx;
}

/** trace_id, span_id and correlation_id of the message being handled, for log lines. */
export function logContext(): Record<string, string> {
  const ctx = context.active();
  const out: Record<string, string> = {};
  const span = trace.getSpanContext(ctx);
  if (span && trace.isSpanContextValid(span)) {
    out.trace_id = span.traceId;
    out.span_id = span.spanId;
  }
  const cid = ctx.getValue(CORRELATION_ID);
  if (typeof cid === 'string') out.correlation_id = cid;
  return out;
}

export interface ConsumedMessage {
  topic: string;
  partition: number;
  offset: string;
  key: Buffer | null;
  headers: MessageHeaders;
}

function messagingAttributes(m: ConsumedMessage, group: string): Attributes {
  const attributes: Attributes = {
    'messaging.system': 'kafka',
    'messaging.operation.type': 'process',
    'messaging.operation.name': 'process',
    'messaging.destination.name': m.topic,
    'messaging.destination.partition.id': String(m.partition),
    'messaging.kafka.offset': Number(m.offset),
    'messaging.consumer.group.name': group,
  };
  if (m.key) attributes['messaging.kafka.message.key'] = m.key.toString('utf8').slice(0, 256);
  return attributes;
}

/** A consumer span for one message, child of the producer's span when the message carries one. */
export function startConsumerSpan(m: ConsumedMessage, group: string, extra: Attributes = {}): Span {
  return tracer.startSpan(
    `process ${m.topic}`,
    { kind: SpanKind.CONSUMER, attributes: { ...messagingAttributes(m, group), ...extra } },
    extractContext(m.headers),
  );
}

/** One consumer span for a batch: linked to each message's producer span, as the conventions advise. */
export function startBatchSpan(messages: ConsumedMessage[], group: string, extra: Attributes = {}): Span {
  const first = messages[0] as ConsumedMessage;
  const links: Link[] = messages
    .map((m) => trace.getSpanContext(extractContext(m.headers)))
    .filter((sc) => sc !== undefined && trace.isSpanContextValid(sc))
    .map((sc) => ({ context: sc as NonNullable<typeof sc> }));
  const {
    'messaging.kafka.offset': _offset,
    'messaging.kafka.message.key': _key,
    ...attributes
  } = messagingAttributes(first, group);
  return tracer.startSpan(
    `process ${first.topic}`,
    {
      kind: SpanKind.CONSUMER,
      links,
      attributes: { ...attributes, 'messaging.batch.message_count': messages.length, ...extra },
    },
    ROOT_CONTEXT,
  );
}

/** A producer span for a result, child of `parent`; returns it with the headers to send. */
export function startProducerSpan(
  parent: Context,
  topic: string,
  partition: number | undefined,
): { span: Span; headers: Record<string, string> } {
  const span = tracer.startSpan(
    `send ${topic}`,
    {
      kind: SpanKind.PRODUCER,
      attributes: {
        'messaging.system': 'kafka',
        'messaging.operation.type': 'send',
        'messaging.operation.name': 'send',
        'messaging.destination.name': topic,
        ...(partition === undefined ? {} : { 'messaging.destination.partition.id': String(partition) }),
      },
    },
    parent,
  );
  const headers: Record<string, string> = {};
  injectContext(trace.setSpan(parent, span), headers);
  return { span, headers };
}

/** Ends a span, recording an error (status and exception) when there is one. */
export function endSpan(span: Span, error?: unknown, errorType?: string): void {
  if (error !== undefined || errorType !== undefined) {
    if (error instanceof Error) span.recordException(error);
    span.setStatus({
      code: SpanStatusCode.ERROR,
      message: error instanceof Error ? error.message : errorType,
    });
    if (errorType) span.setAttribute('error.type', errorType);
  }
  span.end();
}

export { context, trace, SpanKind, SpanStatusCode, type Span, type Context };
