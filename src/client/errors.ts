// Errors a PatternClient call rejects with. Each names what a caller needs to look it up: the topic,
// the operation and the correlation id the worker logs and echoes.
import type { ModelError } from '../contracts/errors.ts';
import { isWriteOperation, type Operation } from '../contracts/operations.ts';

export class RequestTimeoutError extends Error {
  override readonly name = 'RequestTimeoutError';
  readonly topic: string;
  readonly operation: string;
  readonly correlationId: string;
  readonly timeoutMs: number;

  constructor(topic: string, operation: string, correlationId: string, timeoutMs: number) {
    // A write may still be applied after the caller gave up; its outcome is recorded and can be asked for.
    const later = isWriteOperation(operation as Operation)
      ? `it may still be applied: ask for its outcome later with client.resultOf('${correlationId}') or ` +
        `\`patterns result ${correlationId}\``
      : 'reads are not recorded: send it again';
    super(
      `no reply to ${operation} on topic "${topic}" within ${timeoutMs} ms (correlation id ${correlationId}); ` +
        `is a worker running and consuming that topic? ${later}`,
    );
    this.topic = topic;
    this.operation = operation;
    this.correlationId = correlationId;
    this.timeoutMs = timeoutMs;
  }
}

export class ClientClosedError extends Error {
  override readonly name = 'ClientClosedError';
  readonly correlationId: string | undefined;

  constructor(correlationId?: string) {
    super(
      correlationId
        ? `PatternClient closed while waiting for correlation id ${correlationId}`
        : 'PatternClient is closed (or not connected yet: call connect() first)',
    );
    this.correlationId = correlationId;
  }
}

/** The request failed validation before it was sent; nothing reached Kafka. */
export class RequestValidationError extends Error {
  override readonly name = 'RequestValidationError';
  readonly error: ModelError;

  constructor(operation: string, error: ModelError) {
    super(`invalid ${operation} request: ${error.message}`);
    this.error = error;
  }
}
