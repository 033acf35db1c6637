// A span per effect-node operation, carrying what the seed's tracing hooks recorded in their own tables:
// operation, correlation id, pattern id, outcome, error code, rows affected, quality before/after and
// improvement for usage, and whether the effect had been applied already. Its PostgreSQL spans nest
// under it because it is the active span while the transaction runs.
import type { Attributes } from '@opentelemetry/api';
import type { ModelResult } from '../contracts/results.ts';
import { endSpan, tracer } from '../telemetry/tracing.ts';

interface RequestLike {
  operation?: unknown;
  correlation_id?: unknown;
  pattern_id?: unknown;
  usage_data?: unknown;
}

function requestAttributes(node: string, operation: string, request: RequestLike): Attributes {
  const attributes: Attributes = { 'pattern.node': node, 'pattern.operation': operation };
  if (typeof request.correlation_id === 'string')
    attributes['pattern.correlation_id'] = request.correlation_id;
  if (typeof request.pattern_id === 'string') attributes['pattern.id'] = request.pattern_id;
  const usage = request.usage_data as
    { quality_before?: unknown; quality_after?: unknown } | null | undefined;
  if (typeof usage?.quality_before === 'number') attributes['pattern.quality_before'] = usage.quality_before;
  if (typeof usage?.quality_after === 'number') attributes['pattern.quality_after'] = usage.quality_after;
  return attributes;
}

function rowsAffected(data: unknown): number | undefined {
  if (Array.isArray(data)) return data.length;
  if (data && typeof data === 'object') {
    const d = data as { count?: unknown; pattern_id?: unknown; event_id?: unknown };
    if (typeof d.count === 'number') return d.count;
    if (d.pattern_id !== undefined || d.event_id !== undefined) return 1;
  }
  return undefined;
}

function resultAttributes(result: ModelResult): Attributes {
  const attributes: Attributes = {
    'pattern.outcome': result.success ? 'success' : 'error',
    'pattern.duplicate': result.metadata.duplicate === true,
  };
  const data = result.data as { pattern_id?: unknown; quality_improvement?: unknown } | null;
  if (data && typeof data.pattern_id === 'string') attributes['pattern.id'] = data.pattern_id;
  if (data && typeof data.quality_improvement === 'number') {
    attributes['pattern.quality_improvement'] = data.quality_improvement;
  }
  const rows = rowsAffected(result.data);
  if (rows !== undefined) attributes['db.response.returned_rows'] = rows;
  return attributes;
}

/** Runs one operation inside its node span. */
export async function traceOperation(
  node: string,
  operation: string,
  request: RequestLike,
  run: () => Promise<ModelResult>,
): Promise<ModelResult> {
  return tracer.startActiveSpan(
    `${node} ${operation}`,
    { attributes: requestAttributes(node, operation, request) },
    async (span) => {
      try {
        const result = await run();
        span.setAttributes(resultAttributes(result));
        endSpan(span, undefined, result.error?.code);
        return result;
      } catch (err) {
        endSpan(span, err, 'RETRYABLE');
        throw err;
      }
    },
  );
}

/** Runs a batch of one operation's messages inside one node span. */
export async function traceBatch(
  node: string,
  operation: string,
  size: number,
  run: () => Promise<ModelResult[]>,
): Promise<ModelResult[]> {
  return tracer.startActiveSpan(
    `${node} ${operation}`,
    { attributes: { 'pattern.node': node, 'pattern.operation': operation, 'pattern.batch_size': size } },
    async (span) => {
      try {
        const results = await run();
        const failed = results.filter((r) => !r.success).length;
        span.setAttributes({
          'pattern.succeeded': results.length - failed,
          'pattern.failed': failed,
          'pattern.duplicates': results.filter((r) => r.metadata.duplicate === true).length,
          'db.response.returned_rows': results.length - failed,
        });
        endSpan(
          span,
          undefined,
          failed === results.length && failed > 0 ? results[0]?.error?.code : undefined,
        );
        return results;
      } catch (err) {
        endSpan(span, err, 'RETRYABLE');
        throw err;
      }
    },
  );
}
