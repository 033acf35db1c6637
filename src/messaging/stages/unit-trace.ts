// Spans of one try of a unit: a consumer span per message (or one linked batch span for a batch)
// and producer spans for its results. Ends everything once the results are published, or with the error
// when the try fails. Driven by the lifecycle events (observers.ts).
import type { ModelResult } from '../../contracts/results.ts';
import {
  context,
  endSpan,
  startBatchSpan,
  startConsumerSpan,
  startProducerSpan,
  trace,
  withCorrelationId,
  type Context,
  type Span,
} from '../../telemetry/tracing.ts';
import type { InboundMessage } from '../engine/records.ts';
import { outcomeLabel, type OutcomeLabel } from '../engine/lifecycle.ts';

export interface TracedMessage {
  message: InboundMessage;
  correlationId: string | null;
  operation: string | undefined;
}

export class UnitTrace {
  /** One consumer span (with links) for the whole unit, rather than one per message. */
  readonly #batched: boolean;
  readonly #consumerSpans: Span[];
  readonly #contexts: Context[];
  readonly #producerSpans: Span[] = [];
  readonly #sharedProducers = new Map<
    string,
    { span: Span; traceparent: string | undefined; count: number }
  >();
  #outcomes: { outcome: OutcomeLabel; errorType: string | undefined; operation: string }[] = [];

  constructor(items: TracedMessage[], batch: boolean, group: string) {
    const attributes = (t: TracedMessage) => ({
      ...(t.operation ? { 'pattern.operation': t.operation } : {}),
      ...(t.correlationId ? { 'pattern.correlation_id': t.correlationId } : {}),
    });
    this.#batched = batch && items.length > 1;
    if (this.#batched) {
      const span = startBatchSpan(
        items.map((t) => t.message),
        group,
        // A batch is of one operation (one batch class).
        items[0]?.operation ? { 'pattern.operation': items[0].operation } : {},
      );
      this.#consumerSpans = [span];
      const ctx = trace.setSpan(context.active(), span);
      this.#contexts = items.map((t) => withCorrelationId(ctx, t.correlationId));
    } else {
      this.#consumerSpans = items.map((t) => startConsumerSpan(t.message, group, attributes(t)));
      this.#contexts = items.map((t, i) =>
        withCorrelationId(trace.setSpan(context.active(), this.#consumerSpans[i] as Span), t.correlationId),
      );
    }
  }

  /** Runs the unit's work with its (first) consumer span active, so node and database spans nest. */
  run<T>(work: () => Promise<T>): Promise<T> {
    return context.with(this.#contexts[0] ?? context.active(), work);
  }

  /**
   * The traceparent for the i-th message's result. A single message gets a producer span of its own; a
   * batch shares one per destination topic, so 500 results cost one span, not 500.
   */
  producer(index: number, topic: string, partition: number | undefined): string | undefined {
    const batched = this.#batched;
    if (batched) {
      const shared = this.#sharedProducers.get(topic);
      if (shared) {
        shared.count += 1;
        return shared.traceparent;
      }
    }
    const parent = this.#contexts[index] ?? context.active();
    const { span, headers } = startProducerSpan(parent, topic, batched ? undefined : partition);
    this.#producerSpans.push(span);
    if (batched) this.#sharedProducers.set(topic, { span, traceparent: headers.traceparent, count: 1 });
    return headers.traceparent;
  }

  /** Records each message's outcome on its consumer span. */
  outcome(index: number, result: ModelResult, deadLettered: boolean): void {
    const outcome = outcomeLabel(result, deadLettered);
    this.#outcomes[index] = { outcome, errorType: result.error?.code, operation: result.metadata.operation };
    const span = this.#batched ? undefined : this.#consumerSpans[index];
    span?.setAttributes({
      'pattern.outcome': outcome,
      ...(result.error ? { 'error.type': result.error.code } : {}),
      ...(result.metadata.duplicate ? { 'pattern.duplicate': true } : {}),
    });
  }

  /** After publishing (or failing): ends every span. */
  finish(error?: unknown): void {
    for (const { span, count } of this.#sharedProducers.values()) {
      span.setAttribute('messaging.batch.message_count', count);
    }
    for (const span of this.#producerSpans) endSpan(span, error);
    this.#consumerSpans.forEach((span, i) => {
      const own = this.#batched ? undefined : this.#outcomes[i];
      endSpan(
        span,
        error,
        error === undefined ? (own?.outcome === 'success' ? undefined : own?.errorType) : undefined,
      );
    });
  }
}
