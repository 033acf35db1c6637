// The frame every node class shares: validation for direct callers, then one transaction per call.
import { validateRequest } from '../contracts/decode.ts';
import { requestFingerprint } from '../contracts/fingerprint.ts';
import type { RequestFor } from '../contracts/requests.ts';
import { isWriteOperation, TOPIC_SPECS, type OperationOf, type RequestOf } from '../contracts/operations.ts';
import type { ModelResult } from '../contracts/results.ts';
import type { RequestTopic } from '../contracts/topics.ts';
import type { Pool } from '../db/pool.ts';
import type { Logger } from '../telemetry/logger.ts';
import { buildResult } from '../contracts/results.ts';
import { runEffect, type EffectContext, type EffectScope } from './effect-runner.ts';
import { traceOperation } from './node-span.ts';

export interface NodeOptions {
  logger?: Logger;
  /** The most bytes a result may carry (WORKER_MAX_RESULT_BYTES): reads gather no more rows than that. */
  maxResultBytes?: number;
  /** A read running longer is cancelled in the database and fails as a statement timeout (0: none but the
   * connection's statement_timeout). DB_READS_STATEMENT_TIMEOUT_MS for the query node. */
  readTimeoutMs?: number;
}

export interface ExecuteContext extends EffectContext {
  /** Set by the worker, whose decoder has validated the request already. */
  validated?: boolean;
}

export abstract class EffectNode<T extends RequestTopic> {
  readonly pool: Pool;
  readonly logger: Logger | undefined;
  readonly topic: T;
  readonly nodeName: string;
  readonly #readTimeoutMs: number | undefined;

  constructor(topic: T, pool: Pool, options: NodeOptions = {}) {
    this.topic = topic;
    this.pool = pool;
    this.logger = options.logger;
    this.#readTimeoutMs = options.readTimeoutMs;
    this.nodeName = TOPIC_SPECS[topic].node;
  }

  /** Runs one operation of this node: validates (unless the worker did), then applies it in one transaction. */
  async executeEffect(contract: RequestFor<T>, context: ExecuteContext = {}): Promise<ModelResult> {
    let request = contract;
    if (!context.validated) {
      const checked = validateRequest(this.topic, contract);
      if (!checked.ok) {
        const operation =
          typeof contract === 'object' && contract && 'operation' in contract
            ? String(contract.operation)
            : '';
        return buildResult(
          { success: false, data: null, error: checked.error },
          { correlationId: null, operation, node: this.nodeName, startedAt: performance.now() },
          context.source,
        );
      }
      request = checked.request;
    }
    const operation = request.operation;
    const validRequest = request;
    return traceOperation(this.nodeName, operation, validRequest, () =>
      runEffect(
        {
          pool: this.pool,
          node: this.nodeName,
          operation,
          topic: this.topic,
          correlationId: request.correlation_id ?? null,
          write: isWriteOperation(operation),
          fingerprint:
            context.identity !== undefined && isWriteOperation(operation)
              ? (context.fingerprint ?? requestFingerprint(contract))
              : undefined,
          context,
          logger: this.logger,
          readTimeoutMs: this.#readTimeoutMs,
        },
        (scope) => this.apply(validRequest, scope),
      ),
    );
  }

  /** One handler per operation of the topic: a missing one does not compile. */
  protected abstract readonly handlers: Handlers<T>;

  protected apply(request: RequestFor<T>, scope: EffectScope): Promise<unknown> {
    const handler = this.handlers[request.operation as OperationOf<T>] as unknown as (
      request: RequestFor<T>,
      scope: EffectScope,
    ) => Promise<unknown>;
    return handler(request, scope);
  }
}

/** How a node applies each operation of its topic (operations.ts declares them). */
export type Handlers<T extends RequestTopic> = {
  [Op in OperationOf<T>]: (request: RequestOf<Op>, scope: EffectScope) => Promise<unknown>;
};
