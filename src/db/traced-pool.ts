// PostgreSQL client spans (database conventions: db.system.name, db.namespace, db.query.text,
// server.address/port). The query text is the parameterised SQL, which holds no values; parameters are
// never recorded. Manual rather than an auto-instrumentation: pg is loaded through ESM, which the
// require hooks do not see, and this is a dozen lines.
import { SpanKind } from '@opentelemetry/api';
import type pg from 'pg';
import { endSpan, tracer } from '../telemetry/tracing.ts';
import type { Pool } from './pool.ts';

const MAX_QUERY_TEXT = 2_000;

interface Target {
  database: string | undefined;
  host: string | undefined;
  port: number | undefined;
}

function wrap(client: { query: pg.ClientBase['query'] }, target: Target): void {
  const original = client.query.bind(client) as (...args: unknown[]) => unknown;
  const traced = (...args: unknown[]): unknown => {
    const [first] = args;
    // Callback and Submittable (cursor) forms are passed through untouched; the nodes use promises.
    if (
      typeof args[args.length - 1] === 'function' ||
      (first && typeof first === 'object' && 'submit' in first)
    ) {
      return original(...args);
    }
    const text = typeof first === 'string' ? first : ((first as { text?: string } | undefined)?.text ?? '');
    const statement = /^\s*(\w+)/.exec(text)?.[1]?.toUpperCase() ?? 'QUERY';
    const span = tracer.startSpan(`${statement} ${target.database ?? 'postgresql'}`, {
      kind: SpanKind.CLIENT,
      attributes: {
        'db.system.name': 'postgresql',
        'db.operation.name': statement,
        'db.query.text': text.length > MAX_QUERY_TEXT ? `${text.slice(0, MAX_QUERY_TEXT)}…` : text,
        ...(target.database ? { 'db.namespace': target.database } : {}),
        ...(target.host ? { 'server.address': target.host } : {}),
        ...(target.port ? { 'server.port': target.port } : {}),
      },
    });
    const result = original(...args) as Promise<pg.QueryResult>;
    return result.then(
      (r) => {
        if (typeof r.rowCount === 'number') span.setAttribute('db.response.returned_rows', r.rowCount);
        endSpan(span);
        return r;
      },
      (err: unknown) => {
        const code = (err as { code?: unknown }).code;
        endSpan(span, err, typeof code === 'string' ? code : undefined);
        throw err;
      },
    );
  };
  client.query = traced as pg.ClientBase['query'];
}

/** Adds a span to every query made through the pool or its clients. */
export function tracePool(pool: Pool): Pool {
  const options = pool.options as {
    database?: string;
    host?: string;
    port?: number;
    connectionString?: string;
  };
  const url = options.connectionString ? new URL(options.connectionString) : undefined;
  const target: Target = {
    database: options.database ?? (url?.pathname.slice(1) || undefined),
    host: options.host ?? (url?.hostname || undefined),
    port: options.port ?? (url?.port ? Number(url.port) : undefined),
  };
  pool.on('connect', (client) => wrap(client, target));
  return pool;
}
