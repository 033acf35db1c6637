// Error codes of the wire contract (../shared/CONTRACT.md, "Result").
export const ERROR_CODES = [
  'VALIDATION_ERROR',
  'NOT_FOUND',
  'CONFLICT',
  'INVALID_REFERENCE',
  'PAYLOAD_TOO_LARGE',
  /** A read whose caller's deadline (the pattern-deadline-ms header) passed before its turn (not run) or
   * while it ran (cancelled in the database). */
  'DEADLINE_EXCEEDED',
  'INTERNAL',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

export interface ModelError {
  code: ErrorCode;
  message: string;
  details?: Record<string, unknown>;
}

/** A permanent failure with a contract error code: it becomes an error result (and a dead letter). */
export class EffectError extends Error {
  override name = 'EffectError';
  readonly code: ErrorCode;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, details?: Record<string, unknown>) {
    super(message);
    this.code = code;
    this.details = details;
  }

  toModelError(): ModelError {
    return this.details === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, details: this.details };
  }
}

/**
 * A failure that may pass if tried again. Connection loss, failover, deadlock and serialization failures
 * are retried for as long as they last; `bounded` ones (a statement timeout, a lock not available, the
 * server out of resources) may also be the message's own doing, so they get the bounded tries of any
 * other error and are then dead-lettered.
 */
export class RetryableError extends Error {
  override name = 'RetryableError';
  readonly reason: string;
  /** The class of error named in a dead letter after the last try (bounded ones). */
  readonly errorClass: string;
  readonly bounded: boolean;

  constructor(reason: string, options?: { cause?: unknown; bounded?: boolean; errorClass?: string }) {
    super(`transient failure: ${reason}`, options);
    this.reason = reason;
    this.bounded = options?.bounded ?? false;
    this.errorClass = options?.errorClass ?? 'RetryableError';
  }
}

/** The pattern an operation needs does not exist. */
export function notFound(patternId: string): EffectError {
  return new EffectError('NOT_FOUND', `pattern ${patternId} does not exist`, { pattern_id: patternId });
}

/** A thrown value as an Error (a library or a callback may throw anything). */
export const asError = (err: unknown): Error => (err instanceof Error ? err : new Error(String(err)));
