// What every effect node shares: one transaction per call, the exactly-once identity record for writes,
// error classification, timing, and the ModelResult envelope. Nodes only supply the SQL work.
import { performance } from 'node:perf_hooks';
import { EffectError, RetryableError, type ModelError } from '../contracts/errors.ts';
import { classifyDbError } from '../db/errors.ts';
import type { Pool, PoolClient } from '../db/pool.ts';
import { withClient, withTransaction } from '../db/transaction.ts';
import type { MessageSource, ModelResult, ResultMetadata } from '../contracts/results.ts';
import type { Logger } from '../telemetry/logger.ts';
import { deriveId } from './ids.ts';

export type { MessageSource, ModelResult, ResultMetadata };

/** What the worker knows about the message beyond its body. All optional for direct callers. */
export interface EffectContext {
  /** Message identity (CONTRACT "Identity and effects"); writes with one are applied exactly once. */
  identity?: string;
  /** The message's Kafka timestamp: the default for event times, so replays reproduce them. */
  eventTime?: Date;
  /** The request's fingerprint as sent (contracts/fingerprint.ts); computed by the node when absent. */
  fingerprint?: string;
  source?: MessageSource;
  logger?: Logger;
}

/** What the stored identity record holds: the outcome without timing. */
export interface StoredOutcome {
  success: boolean;
  data: unknown;
  error: ModelError | null;
  /** Set once the body was pruned past WORKER_RESULT_RETENTION: `data` holds only the ids. */
  pruned?: boolean;
}

/** The metadata a repeat of an applied identity is answered with. */
export function duplicateMetadata(stored: StoredOutcome): Partial<ResultMetadata> {
  return stored.pruned ? { duplicate: true, result_pruned: true } : { duplicate: true };
}

/** Handed to a node's operation: the transaction's client and the deterministic inputs. */
export interface EffectScope {
  client: PoolClient;
  eventTime: Date;
  identity: string | undefined;
  logger: Logger | undefined;
  /** Deterministic id for the index-th `kind` created by this message (random without an identity). */
  newId(kind: string, index?: number): string;
}

export interface RunOptions {
  pool: Pool;
  node: string;
  operation: string;
  topic: string;
  correlationId: string | null | undefined;
  /** Writes record their identity; reads never do. */
  write: boolean;
  /** The request's fingerprint (contracts/fingerprint.ts), stored with the identity. */
  fingerprint?: string | undefined;
  context?: EffectContext | undefined;
  logger?: Logger | undefined;
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

export function buildResult<T>(
  outcome: { success: boolean; data: T | null; error: ModelError | null },
  meta: { correlationId: string | null | undefined; operation: string; node: string; startedAt: number },
  context: EffectContext | undefined,
  extra: Partial<ResultMetadata> = {},
): ModelResult<T> {
  const metadata: ResultMetadata = {
    correlation_id: meta.correlationId ?? null,
    operation: meta.operation,
    node: meta.node,
    duration_ms: round(performance.now() - meta.startedAt),
    ...extra,
  };
  if (context?.source) metadata.source = context.source;
  return { success: outcome.success, data: outcome.data, error: outcome.error, metadata };
}

/**
 * Claims the identity inside the transaction. Returns the stored outcome when it was applied before.
 * A concurrent claim of the same identity waits for the other transaction and then sees its outcome.
 */
export async function claimIdentity(
  client: PoolClient,
  identity: string,
  topic: string,
  operation: string,
  source: MessageSource | undefined,
  fingerprint?: string,
): Promise<StoredOutcome | undefined> {
  const claimed = await client.query(
    `INSERT INTO processed_messages (identity, topic, operation, source_partition, source_offset, result, fingerprint)
     VALUES ($1, $2, $3, $4, $5, '{}'::json, $6)
     ON CONFLICT (identity) DO NOTHING`,
    [identity, topic, operation, source?.partition ?? null, source?.offset ?? null, fingerprint ?? null],
  );
  if (claimed.rowCount === 1) return undefined;
  const { rows } = await client.query<{
    topic: string;
    operation: string;
    result: StoredOutcome;
    fingerprint: string | null;
  }>('SELECT topic, operation, result, fingerprint FROM processed_messages WHERE identity = $1', [identity]);
  const stored = rows[0];
  if (!stored) throw new RetryableError('identity record vanished during claim');
  const error = reuseError(identity, stored, { topic, operation, fingerprint });
  if (error) throw new EffectError('CONFLICT', error.message, error.details);
  return stored.result;
}

/**
 * Why a message may not reuse a stored identity: another operation, or the same correlation id with a
 * different request (a client bug that would otherwise lose the second write without a word).
 */
export function reuseError(
  identity: string,
  stored: { topic: string; operation: string; fingerprint: string | null },
  incoming: { topic: string; operation: string; fingerprint: string | undefined },
): { message: string; details: Record<string, unknown> } | undefined {
  if (stored.topic !== incoming.topic || stored.operation !== incoming.operation) {
    return {
      message:
        `this message identity was already applied as operation "${stored.operation}" on ${stored.topic}; ` +
        'use a fresh correlation_id for every request',
      details: { identity, reason: 'identity_reused_for_other_operation' },
    };
  }
  if (stored.fingerprint && incoming.fingerprint && stored.fingerprint !== incoming.fingerprint) {
    return {
      message:
        'this correlation id was already used for a different request; the first one was applied and this ' +
        'one was not: use a fresh correlation_id for every request (the same one only to retry the same request)',
      details: { identity, reason: 'correlation_id_reused' },
    };
  }
  return undefined;
}

/** An identity record as get_result reads it. */
export interface IdentityRecord {
  identity: string;
  topic: string;
  operation: string;
  processed_at: Date;
  outcome: StoredOutcome;
}

/** The first of `identities` (most likely first) that has a record, if any. Committed records only. */
export async function lookupIdentity(
  client: PoolClient,
  identities: readonly string[],
): Promise<IdentityRecord | undefined> {
  const { rows } = await client.query<Omit<IdentityRecord, 'outcome'> & { result: StoredOutcome }>(
    `SELECT identity, topic, operation, processed_at, result
       FROM processed_messages WHERE identity = ANY($1::text[])
      ORDER BY array_position($1::text[], identity) LIMIT 1`,
    [identities],
  );
  const row = rows[0];
  return row && { ...row, outcome: row.result };
}

export async function storeOutcome(
  client: PoolClient,
  identity: string,
  outcome: StoredOutcome,
): Promise<void> {
  await client.query('UPDATE processed_messages SET result = $2 WHERE identity = $1', [identity, outcome]);
}

/** Logs a failure and turns it into an error outcome, or rethrows it as retryable. */
export function failureOutcome(err: unknown, logger: Logger | undefined, operation: string): StoredOutcome {
  const classified = classifyDbError(err);
  if (classified instanceof RetryableError) throw classified;
  if (classified.code === 'INTERNAL') {
    logger?.error({ err, operation }, 'operation failed with an unexpected error');
  } else {
    logger?.debug({ code: classified.code, operation, message: classified.message }, 'operation rejected');
  }
  return { success: false, data: null, error: classified.toModelError() };
}

/**
 * Runs one operation in one transaction. Permanent failures become error results (and roll back);
 * transient failures are thrown as RetryableError for the caller to retry.
 */
export async function runEffect<T>(
  options: RunOptions,
  operation: (scope: EffectScope) => Promise<T>,
): Promise<ModelResult<T>> {
  const startedAt = performance.now();
  const { context } = options;
  const logger = (context?.logger ?? options.logger)?.child({
    correlation_id: options.correlationId ?? null,
    operation: options.operation,
    node: options.node,
  });
  const identity = options.write ? context?.identity : undefined;
  const meta = {
    correlationId: options.correlationId,
    operation: options.operation,
    node: options.node,
    startedAt,
  };

  let outcome: StoredOutcome;
  let duplicate = false;
  let pruned = false;
  try {
    // Reads need no transaction: nothing to roll back, and BEGIN/COMMIT would cost two round trips.
    const run = options.write ? withTransaction : withClient;
    outcome = await run(options.pool, async (client) => {
      if (identity !== undefined) {
        const stored = await claimIdentity(
          client,
          identity,
          options.topic,
          options.operation,
          context?.source,
          options.fingerprint,
        );
        if (stored) {
          duplicate = true;
          pruned = stored.pruned === true;
          return stored;
        }
      }
      const scope: EffectScope = {
        client,
        eventTime: context?.eventTime ?? new Date(),
        identity,
        logger,
        newId: (kind, index) => deriveId(identity, kind, index),
      };
      const data = await operation(scope);
      const done: StoredOutcome = { success: true, data, error: null };
      if (identity !== undefined) await storeOutcome(client, identity, done);
      return done;
    });
  } catch (err) {
    outcome = failureOutcome(err, logger, options.operation);
  }
  const result = buildResult(
    outcome as { success: boolean; data: T | null; error: ModelError | null },
    meta,
    context,
    duplicate ? duplicateMetadata({ ...outcome, pruned }) : {},
  );
  logger?.debug(
    { success: result.success, duration_ms: result.metadata.duration_ms, duplicate },
    'operation done',
  );
  return result;
}
