// A throwaway certificate authority for TLS tests: a CA, a server certificate for 127.0.0.1/localhost
// and a client certificate, as PEM files made with the openssl command.
import { execFile } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface TestCertificates {
  dir: string;
  ca: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
}

async function openssl(args: string[], cwd: string): Promise<void> {
  await run('openssl', args, { cwd, timeout: 30_000 });
}

export async function createTestCertificates(dir?: string): Promise<TestCertificates> {
  const d = dir ?? (await mkdtemp(join(tmpdir(), 'pw-tls-')));
  const days = ['-days', '2'];
  await openssl(
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      'ca.key',
      '-out',
      'ca.crt',
      ...days,
      '-subj',
      '/CN=pattern-worker test CA',
    ],
    d,
  );
  await writeFile(join(d, 'server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  for (const who of ['server', 'client']) {
    await openssl(
      [
        'req',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-keyout',
        `${who}.key`,
        '-out',
        `${who}.csr`,
        '-subj',
        `/CN=${who === 'server' ? 'localhost' : 'pattern_worker'}`,
      ],
      d,
    );
    await openssl(
      [
        'x509',
        '-req',
        '-in',
        `${who}.csr`,
        '-CA',
        'ca.crt',
        '-CAkey',
        'ca.key',
        '-CAcreateserial',
        '-out',
        `${who}.crt`,
        ...days,
        ...(who === 'server' ? ['-extfile', 'server.ext'] : []),
      ],
      d,
    );
  }
  return {
    dir: d,
    ca: join(d, 'ca.crt'),
    serverCert: join(d, 'server.crt'),
    serverKey: join(d, 'server.key'),
    clientCert: join(d, 'client.crt'),
    clientKey: join(d, 'client.key'),
  };
}
