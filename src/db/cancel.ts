// Cancels the statement a pooled connection is running, as psql's Ctrl-C does: a CancelRequest on a socket
// of its own. The server takes it before authentication and connection limits, so it works while every
// pooled connection is busy, and it costs nothing until it is sent.
import net from 'node:net';
import type { PoolClient } from './pool.ts';

/** What pg keeps of a connection's backend (BackendKeyData), which its types do not declare. */
interface BackendKey {
  processID?: unknown;
  secretKey?: unknown;
  host?: unknown;
  port?: unknown;
}

const CANCEL_REQUEST_CODE = 80877102;
/** A server that takes longer than this to close the socket is not waited for; the statement timeout still
 * bounds the statement. */
const CANCEL_WAIT_MS = 2_000;

/**
 * How a cancel went: `sent` once the server closed the socket, which it does after signalling the backend
 * (a backend that has finished its statement ignores the signal: PostgreSQL drops a cancel that arrives
 * between commands, so the connection may be reused); `not-sent` when it never reached the server;
 * `unanswered` when it was written but the server did not close within CANCEL_WAIT_MS, so that it may
 * still reach a later statement: the connection must not be reused.
 */
export type CancelOutcome = 'sent' | 'not-sent' | 'unanswered';

/** Sends a CancelRequest for `client`'s backend. */
export function cancelStatement(client: PoolClient): Promise<CancelOutcome> {
  const key = client as unknown as BackendKey;
  const { processID, secretKey, host, port } = key;
  if (typeof processID !== 'number' || typeof secretKey !== 'number' || typeof port !== 'number') {
    return Promise.resolve('not-sent');
  }
  const packet = Buffer.alloc(16);
  packet.writeInt32BE(16, 0);
  packet.writeInt32BE(CANCEL_REQUEST_CODE, 4);
  packet.writeInt32BE(processID, 8);
  packet.writeInt32BE(secretKey, 12);
  const hostName = typeof host === 'string' && host !== '' ? host : 'localhost';
  return new Promise((resolve) => {
    const socket = hostName.startsWith('/')
      ? net.connect(`${hostName}/.s.PGSQL.${port}`)
      : net.connect(port, hostName);
    let written = false;
    const done = (outcome: CancelOutcome) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(outcome);
    };
    const timer = setTimeout(() => done(written ? 'unanswered' : 'not-sent'), CANCEL_WAIT_MS);
    timer.unref();
    socket.on('connect', () => {
      written = true;
      socket.end(packet);
    });
    // After the packet went out, an error is the server closing on us: it took the request.
    socket.on('error', () => done(written ? 'sent' : 'not-sent'));
    socket.on('close', () => done(written ? 'sent' : 'not-sent'));
  });
}
