// The requester process: a PatternClient that offers open-loop searches and global analytics for the
// harness, in its own process. The harness itself produces and counts thousands of events a second;
// timing requests on that event loop measures the harness's own backlog as the worker's latency.
// Driven over the IPC channel by Requester (requester.ts).
import { PatternClient } from '../../src/client/index.ts';
import { openLoop } from './load.ts';
import type { RequesterCommand, RequesterReply, RequestKind, SearchQuery } from './requester.ts';

let client: PatternClient | undefined;
let queries: SearchQuery[] = [];
const loops = new Map<number, AbortController>();

const send = (reply: RequesterReply) => process.send?.(reply);

function request(
  kind: RequestKind,
  c: PatternClient,
): (i: number) => ReturnType<Parameters<typeof openLoop>[2]> {
  switch (kind) {
    case 'search':
      return (i) => c.search(queries[i % queries.length] as SearchQuery, { timeoutMs: 10_000 });
    case 'get_global_stats':
      return () => c.getGlobalStats({}, { timeoutMs: 10_000 });
    case 'compute_analytics':
      return () => c.computeAnalytics({}, { timeoutMs: 10_000 });
  }
}

async function handle(cmd: RequesterCommand): Promise<void> {
  switch (cmd.cmd) {
    case 'connect':
      queries = cmd.queries;
      client = await new PatternClient({ ...cmd.client, timeoutMs: 10_000 }).connect();
      send({ id: cmd.id, ok: true });
      return;
    case 'loop': {
      if (!client) throw new Error('loop before connect');
      const stop = new AbortController();
      loops.set(cmd.id, stop);
      const result = await openLoop(cmd.rate, cmd.seconds, request(cmd.kind, client), stop.signal);
      loops.delete(cmd.id);
      send({ id: cmd.id, ok: true, result });
      return;
    }
    case 'stop':
      loops.get(cmd.loop)?.abort();
      send({ id: cmd.id, ok: true });
      return;
    case 'close':
      await client?.close();
      send({ id: cmd.id, ok: true });
      process.disconnect();
      return;
  }
}

process.on('message', (cmd: RequesterCommand) => {
  handle(cmd).catch((err: unknown) =>
    send({ id: cmd.id, ok: false, error: err instanceof Error ? (err.stack ?? err.message) : String(err) }),
  );
});
// The harness gone: nothing left to measure for.
process.on('disconnect', () => {
  void client?.close().finally(() => process.exit(0));
  setTimeout(() => process.exit(0), 5_000).unref();
});
