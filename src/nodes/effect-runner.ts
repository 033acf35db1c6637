// What every effect node shares: one transaction per call, the exactly-once identity record for writes
// (identity-store.ts), error classification and timing. Nodes only supply the SQL work.
import { performance } from 'node:perf_hooks';
import { RetryableError, type ModelError } from '../contracts/errors.ts';
import { classifyDbError } from '../db/errors.ts';
import type { Pool, PoolClient } from '../db/pool.ts';
import { withClient, withTransaction } from '../db/transaction.ts';
import {
  buildResult,
  type MessageSource,
  type ModelResult,
  type ResultMetadata,
} from '../contracts/results.ts';
import type { Logger } from '../telemetry/logger.ts';
import { deriveId } from './ids.ts';
import { cancelWhenLate } from './read-deadline.ts';
import { claimIdentity, duplicateMetadata, storeOutcome, type StoredOutcome } from './identity-store.ts';

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
  /** The caller's deadline (epoch ms, reads only): a read still running then is cancelled in the database. */
  deadline?: number | undefined;
}

/** Handed to a node's operation: the transaction's client and the deterministic inputs. */
export interface EffectScope {
  client: PoolClient;
  eventTime: Date;
  identity: string | undefined;
  logger: Logger | undefined;
  /** Deterministic id for the index-th `kind` created by this message (random without an identity). */
  newId(kind: string, index?: number): string;
  /** The caller's deadline (epoch ms), when it sent one. */
  deadline?: number | undefined;
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
  /** Reads only: cancelled in the database after this long, as by a statement timeout (0 or unset: none). */
  readTimeoutMs?: number | undefined;
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
  const askedIdentity = options.write ? context?.identity : undefined;
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
      // The identity claimed may not be the one asked (identity-store.ts secondIdentity).
      let identity = askedIdentity;
      if (identity !== undefined) {
        const claimed = await claimIdentity(client, {
          identity,
          topic: options.topic,
          operation: options.operation,
          source: context?.source,
          fingerprint: options.fingerprint,
        });
        identity = claimed.identity;
        if (claimed.stored) {
          duplicate = true;
          pruned = claimed.stored.pruned === true;
          return claimed.stored;
        }
      }
      const scope: EffectScope = {
        client,
        eventTime: context?.eventTime ?? new Date(),
        identity,
        logger,
        newId: (kind, index) => deriveId(identity, kind, index),
        deadline: context?.deadline,
      };
      // A read still running at its caller's deadline or past its timeout is cancelled in the database;
      // writes always finish (within the connection's statement_timeout).
      const data = options.write
        ? await operation(scope)
        : await cancelWhenLate(client, { deadline: scope.deadline, timeoutMs: options.readTimeoutMs }, () =>
            operation(scope),
          );
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
    context?.source,
    duplicate ? duplicateMetadata({ ...outcome, pruned }) : {},
  );
  logger?.debug(
    { success: result.success, duration_ms: result.metadata.duration_ms, duplicate },
    'operation done',
  );
  return result;
}
