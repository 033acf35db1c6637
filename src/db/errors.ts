// Maps PostgreSQL and driver errors onto the contract: transient ones become RetryableError,
// permanent ones an EffectError with a code. Messages never carry SQL text or connection strings.
import { EffectError, RetryableError } from '../contracts/errors.ts';

interface PgLikeError {
  code?: string;
  constraint?: string;
  column?: string;
  table?: string;
  message?: string;
}

/** Retried for as long as they last: connection loss, failover, deadlock, serialization failure. */
const TRANSIENT_SQLSTATES: Record<string, string> = {
  '40001': 'serialization failure',
  '40P01': 'deadlock detected',
  '57P01': 'server shutting down (admin)',
  '57P02': 'server crashed',
  '57P03': 'server cannot accept connections now',
};

/** SQLSTATE of a statement cancelled, by its statement_timeout or by a cancel request. */
export const QUERY_CANCELED = '57014';

/** The error class of a statement cancelled by its timeout (a read lane gives it fewer tries). */
export const STATEMENT_TIMEOUT = 'StatementTimeout';

/** Retried a bounded number of times, then dead-lettered: the message itself may cause them every time. */
const BOUNDED_SQLSTATES: Record<string, { reason: string; errorClass: string }> = {
  [QUERY_CANCELED]: { reason: 'statement timeout or cancel', errorClass: STATEMENT_TIMEOUT },
  '55P03': { reason: 'lock not available', errorClass: 'LockNotAvailable' },
  '53000': { reason: 'insufficient resources', errorClass: 'InsufficientResources' },
  '53100': { reason: 'disk full', errorClass: 'InsufficientResources' },
  '53200': { reason: 'out of memory', errorClass: 'InsufficientResources' },
  '53300': { reason: 'too many connections', errorClass: 'InsufficientResources' },
  '53400': { reason: 'configuration limit exceeded', errorClass: 'InsufficientResources' },
  '58000': { reason: 'system error', errorClass: 'SystemError' },
  '58030': { reason: 'I/O error', errorClass: 'SystemError' },
};

const TRANSIENT_NODE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'EAI_AGAIN',
  'ENETUNREACH',
]);

const TRANSIENT_MESSAGES = [
  /connection terminated/i,
  /connection timeout/i,
  /timeout exceeded when trying to connect/i,
  /client has encountered a connection error/i,
  /not queryable/i,
  /terminating connection/i,
  /Connection closed/i,
  /not currently accepting connections/i,
  /the database system is (starting up|shutting down|in recovery mode)/i,
];

function asPgError(err: unknown): PgLikeError {
  if (typeof err !== 'object' || err === null) return {};
  const e = err as Record<string, unknown>;
  const text = (v: unknown) => (typeof v === 'string' ? v : undefined);
  // Errors of other libraries may carry a numeric code: only string codes are SQLSTATEs.
  const pick = {
    code: text(e.code),
    constraint: text(e.constraint),
    column: text(e.column),
    table: text(e.table),
    message: text(e.message),
  };
  return Object.fromEntries(Object.entries(pick).filter(([, v]) => v !== undefined));
}

/** Connection loss, failover, deadlock or serialization failure: retried for as long as it lasts. */
export function isTransientDbError(err: unknown): boolean {
  if (err instanceof RetryableError) return !err.bounded;
  const e = asPgError(err);
  const code = e.code ?? '';
  if (code in TRANSIENT_SQLSTATES) return true;
  if (code.startsWith('08')) return true; // connection exception class
  if (TRANSIENT_NODE_CODES.has(code)) return true;
  const message = e.message ?? '';
  // A database that refuses connections for now (ALLOW_CONNECTIONS false, as during a restore): a
  // SQLSTATE shared with much else, told by its text, which names the database and nothing sent.
  if (code === '55000') return /^database ".*" is not currently accepting connections$/.test(message);
  // Otherwise by its text only an error of the driver's own (a plain Error, no SQLSTATE): the text of any
  // other may quote what a producer sent, which would then be retried for ever.
  if (code !== '' || !(err instanceof Error) || Object.getPrototypeOf(err) !== Error.prototype) return false;
  return TRANSIENT_MESSAGES.some((re) => re.test(message));
}

/** Constraints whose violation is the caller's: the field it concerns and what to change. */
const CONSTRAINT_FIELDS: Record<string, { field: string; message: string }> = {
  pattern_templates_not_own_parent: {
    field: 'parent_pattern_id',
    message: 'parent_pattern_id: must not be the pattern itself',
  },
  pattern_templates_not_own_successor: {
    field: 'deprecated_by_id',
    message: 'deprecated_by_id: must not be the pattern itself',
  },
};

/**
 * Turns any error thrown inside a transaction into either a RetryableError (to be retried by the caller)
 * or an EffectError (to become an error result). Unknown errors become INTERNAL without their text.
 */
export function classifyDbError(err: unknown): RetryableError | EffectError {
  if (err instanceof EffectError || err instanceof RetryableError) return err;
  if (isTransientDbError(err)) {
    const e = asPgError(err);
    const reason = TRANSIENT_SQLSTATES[e.code ?? ''] ?? e.code ?? 'connection error';
    return new RetryableError(reason, { cause: err });
  }
  const e = asPgError(err);
  const bounded = BOUNDED_SQLSTATES[e.code ?? ''];
  if (bounded)
    return new RetryableError(bounded.reason, { cause: err, bounded: true, errorClass: bounded.errorClass });
  const details: Record<string, unknown> = {};
  if (e.constraint) details.constraint = e.constraint;
  if (e.column) details.column = e.column;
  switch (e.code) {
    case '23505':
      return new EffectError('CONFLICT', 'a row with the same unique key already exists', details);
    case '23P01':
      return new EffectError('CONFLICT', 'the row conflicts with an existing row', details);
    case '23503':
      return new EffectError('INVALID_REFERENCE', 'a referenced pattern does not exist', details);
    case '23514': {
      const known = e.constraint ? CONSTRAINT_FIELDS[e.constraint] : undefined;
      if (known)
        return new EffectError('VALIDATION_ERROR', known.message, { ...details, field: known.field });
      return new EffectError('VALIDATION_ERROR', 'a value is outside its allowed range', details);
    }
    case '23502':
      return new EffectError('VALIDATION_ERROR', 'a required value is missing', details);
    default:
      break;
  }
  if (e.code?.startsWith('22')) {
    return new EffectError('VALIDATION_ERROR', 'a value has the wrong format or is out of range', {
      ...details,
      sqlstate: e.code,
    });
  }
  return new EffectError(
    'INTERNAL',
    'internal error while applying the operation',
    e.code ? { sqlstate: e.code } : undefined,
  );
}
