// A tiny OTLP/HTTP receiver: accepts POST /v1/traces, /v1/metrics and /v1/logs, counts requests and bytes,
// answers 200 with an empty protobuf body (a valid Export*ServiceResponse). Enough for an exporter to
// do its full work without a collector installed.
import { createServer, type Server } from 'node:http';

export interface OtlpReceiver {
  url: string;
  counts(): Record<string, { requests: number; bytes: number }>;
  reset(): void;
  close(): Promise<void>;
}

export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  let counts: Record<string, { requests: number; bytes: number }> = {};
  const server: Server = createServer((req, res) => {
    let bytes = 0;
    req.on('data', (d: Buffer) => (bytes += d.length));
    req.on('end', () => {
      const path = req.url ?? '/';
      if (req.method !== 'POST' || !path.startsWith('/v1/')) {
        res.writeHead(404).end();
        return;
      }
      const c = (counts[path] ??= { requests: 0, bytes: 0 });
      c.requests++;
      c.bytes += bytes;
      res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    counts: () => structuredClone(counts),
    reset: () => {
      counts = {};
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
