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
 * Sends a CancelRequest for `client`'s backend and resolves once the server has closed the socket, which it
 * does after signalling the backend; false when it could not be sent. A backend that has finished its
 * statement ignores the signal (PostgreSQL drops a cancel that arrives between commands), so the caller
 * may reuse the connection once this resolves.
 */
export function cancelStatement(client: PoolClient): Promise<boolean> {
  const key = client as unknown as BackendKey;
  const { processID, secretKey, host, port } = key;
  if (typeof processID !== 'number' || typeof secretKey !== 'number' || typeof port !== 'number') {
    return Promise.resolve(false);
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
    let sent = false;
    const done = (ok: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), CANCEL_WAIT_MS);
    socket.on('connect', () => {
      sent = true;
      socket.end(packet);
    });
    socket.on('error', () => done(false));
    socket.on('close', () => done(sent));
  });
}
