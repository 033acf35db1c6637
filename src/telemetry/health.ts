// HTTP endpoints for orchestrators: /healthz (alive: the event loop answers), /readyz, /metrics (with
// the readiness, memory and event-loop gauges of runtime-metrics.ts).
import { createServer, type Server } from 'node:http';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { Readiness } from './readiness.ts';
import { observeRuntime } from './runtime-metrics.ts';

export interface MetricsEndpoint {
  contentType: string;
  render(): Promise<string>;
}

export interface HealthServer {
  server: Server;
  port: number;
  close(): Promise<void>;
}

// Liveness fails only when the loop is stuck, not when dependencies are down (that is readiness).
const MAX_EVENT_LOOP_DELAY_MS = 5_000;

export async function startHealthServer(options: {
  port: number;
  host?: string;
  readiness: Readiness;
  metrics?: MetricsEndpoint;
}): Promise<HealthServer> {
  const delay = monitorEventLoopDelay({ resolution: 20 });
  delay.enable();
  const runtime = observeRuntime(options.readiness);
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const json = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (path === '/healthz') {
      const maxMs = delay.max / 1e6;
      delay.reset();
      json(maxMs < MAX_EVENT_LOOP_DELAY_MS ? 200 : 503, {
        alive: maxMs < MAX_EVENT_LOOP_DELAY_MS,
        event_loop_delay_max_ms: maxMs,
      });
      return;
    }
    if (path === '/readyz') {
      const report = options.readiness.report();
      json(report.ready ? 200 : 503, report);
      return;
    }
    if (path === '/metrics' && options.metrics) {
      const metrics = options.metrics;
      metrics.render().then(
        (text) => {
          res.writeHead(200, { 'content-type': metrics.contentType });
          res.end(text);
        },
        () => json(500, { error: 'metrics unavailable' }),
      );
      return;
    }
    json(404, { error: `no such endpoint: ${path}`, endpoints: ['/healthz', '/readyz', '/metrics'] });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host ?? '0.0.0.0', () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  return {
    server,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        delay.disable();
        runtime.stop();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
