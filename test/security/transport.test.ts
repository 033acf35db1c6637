// Transport security configuration, checked against real TLS endpoints on loopback:
// - Kafka: KAFKA_SSL with CA, client certificate and key files reaches the socket (a TLS server that
//   requires a client certificate accepts the worker's admin client and only with the right CA), and SASL
//   PLAIN / SCRAM-SHA-256 / SCRAM-SHA-512 settings reach the client library's options.
// - PostgreSQL: DATABASE_URL's sslmode/sslrootcert are honoured by node-postgres against a cluster this
//   test owns that accepts TLS connections only.
import { copyFile, chmod } from 'node:fs/promises';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDatabasePool } from '../../src/app.ts';
import { ConfigError, loadConfig } from '../../src/config.ts';
import { KafkaAdmin } from '../../src/messaging/kafka/admin.ts';
import { createKafka, kafkaConnection } from '../../src/messaging/kafka/client.ts';
import { createPgCluster, type PgCluster } from '../support/pg-cluster.ts';
import { createTestCertificates, type TestCertificates } from '../support/tls.ts';

let certs: TestCertificates;
let otherCa: TestCertificates;
beforeAll(async () => {
  [certs, otherCa] = await Promise.all([createTestCertificates(), createTestCertificates()]);
}, 60_000);

describe('Kafka TLS and SASL configuration', () => {
  const tlsEnv = () => ({
    KAFKA_SSL: 'true',
    KAFKA_SSL_CA_FILE: certs.ca,
    KAFKA_SSL_CERT_FILE: certs.clientCert,
    KAFKA_SSL_KEY_FILE: certs.clientKey,
  });

  it("gives PatternClient's connection the same brokers, SASL and TLS as the worker", () => {
    const config = loadConfig({
      ...tlsEnv(),
      KAFKA_BROKERS: 'a:9093,b:9093',
      KAFKA_SASL_MECHANISM: 'scram-sha-512',
      KAFKA_SASL_USERNAME: 'u',
      KAFKA_SASL_PASSWORD: 'p',
    });
    const connection = kafkaConnection(config);
    expect(connection).toEqual({
      brokers: ['a:9093', 'b:9093'],
      sasl: { mechanism: 'scram-sha-512', username: 'u', password: 'p' },
      tls: {
        rejectUnauthorized: true,
        ca: readFileSync(certs.ca, 'utf8'),
        cert: readFileSync(certs.clientCert, 'utf8'),
        key: readFileSync(certs.clientKey, 'utf8'),
      },
    });
    const worker = createKafka(config).options();
    expect(worker).toMatchObject({
      clientId: 'pattern-worker',
      bootstrapBrokers: connection.brokers,
      sasl: { mechanism: 'SCRAM-SHA-512', username: 'u', password: 'p' },
      tls: connection.tls,
    });
    expect(createKafka(config, undefined, '-replay').options('-admin').clientId).toBe(
      'pattern-worker-replay-admin',
    );
    expect(kafkaConnection(loadConfig({}))).toEqual({ brokers: ['127.0.0.1:9092'] });
  });

  it('passes CA, client certificate and key to the client, verifying the broker by default', () => {
    const tlsOf = (env: Record<string, string>) => createKafka(loadConfig(env)).options().tls;
    expect(tlsOf(tlsEnv())).toEqual({
      rejectUnauthorized: true,
      ca: readFileSync(certs.ca, 'utf8'),
      cert: readFileSync(certs.clientCert, 'utf8'),
      key: readFileSync(certs.clientKey, 'utf8'),
    });
    expect(tlsOf({ KAFKA_SSL: 'true' })).toEqual({ rejectUnauthorized: true });
    expect(tlsOf({ KAFKA_SSL: 'true', KAFKA_SSL_REJECT_UNAUTHORIZED: 'false' })).toEqual({
      rejectUnauthorized: false,
    });
    expect(tlsOf({})).toBeUndefined();
    expect(createKafka(loadConfig({})).options().sasl).toBeUndefined();
  });

  it('names the variable when TLS settings are inconsistent or unreadable', () => {
    expect(() => loadConfig({ KAFKA_SSL_CA_FILE: certs.ca })).toThrow(
      /KAFKA_SSL_CA_FILE: needs KAFKA_SSL=true/,
    );
    expect(() => loadConfig({ KAFKA_SSL: 'true', KAFKA_SSL_CERT_FILE: certs.clientCert })).toThrow(
      /KAFKA_SSL_KEY_FILE/,
    );
    expect(() => loadConfig({ KAFKA_SSL_REJECT_UNAUTHORIZED: 'maybe' })).toThrow(
      /KAFKA_SSL_REJECT_UNAUTHORIZED/,
    );
    const missing = loadConfig({ KAFKA_SSL: 'true', KAFKA_SSL_CA_FILE: '/nonexistent/ca.pem' });
    expect(() => createKafka(missing)).toThrow(ConfigError);
    expect(() => kafkaConnection(missing)).toThrow(
      /KAFKA_SSL_CA_FILE: cannot read "\/nonexistent\/ca.pem" \(ENOENT\)/,
    );
    const badKey = loadConfig({ ...tlsEnv(), KAFKA_SSL_KEY_FILE: '/nonexistent/key.pem' });
    expect(() => createKafka(badKey)).toThrow(/KAFKA_SSL_KEY_FILE: cannot read "\/nonexistent\/key.pem"/);
  });

  it.each([
    ['plain', 'PLAIN'],
    ['scram-sha-256', 'SCRAM-SHA-256'],
    ['scram-sha-512', 'SCRAM-SHA-512'],
  ])('configures SASL %s', (mechanism, libraryMechanism) => {
    const config = loadConfig({
      KAFKA_SASL_MECHANISM: mechanism,
      KAFKA_SASL_USERNAME: 'worker',
      KAFKA_SASL_PASSWORD: 'pw',
      ...tlsEnv(),
    });
    expect(kafkaConnection(config).sasl).toEqual({ mechanism, username: 'worker', password: 'pw' });
    const options = createKafka(config).options();
    expect(options.sasl).toEqual({ mechanism: libraryMechanism, username: 'worker', password: 'pw' });
    expect(options.tls).toMatchObject({ rejectUnauthorized: true });
  });

  it('refuses unknown SASL mechanisms', () => {
    expect(() =>
      loadConfig({ KAFKA_SASL_MECHANISM: 'gssapi', KAFKA_SASL_USERNAME: 'u', KAFKA_SASL_PASSWORD: 'p' }),
    ).toThrow(/KAFKA_SASL_MECHANISM/);
  });

  /** A TLS server that requires a client certificate from our CA; counts completed handshakes. */
  async function tlsServer() {
    const server = tls.createServer({
      key: readFileSync(certs.serverKey),
      cert: readFileSync(certs.serverCert),
      ca: readFileSync(certs.ca),
      requestCert: true,
      rejectUnauthorized: true,
    });
    const clients: string[] = [];
    server.on('secureConnection', (socket) => {
      clients.push(String(socket.getPeerCertificate().subject?.CN));
      socket.destroy(); // not a broker: the handshake is what is checked
    });
    server.on('tlsClientError', () => undefined);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as { port: number }).port;
    return { server, clients, brokers: `127.0.0.1:${port}` };
  }

  /** Connects the worker's admin client once (no retries: each retry would be another handshake). */
  async function connect(env: Record<string, string>): Promise<string> {
    const admin = new KafkaAdmin({ ...createKafka(loadConfig(env)).options('-admin'), retries: 0 });
    try {
      await admin.connect();
      return 'connected';
    } catch (err) {
      return err instanceof Error ? err.message : String(err);
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  }

  it('completes a mutual TLS handshake with the configured files, and only with the right CA', async () => {
    const { server, clients, brokers } = await tlsServer();
    try {
      await connect({ ...tlsEnv(), KAFKA_BROKERS: brokers });
      expect(clients).toEqual(['pattern_worker']);
      const wrongCa = await connect({ ...tlsEnv(), KAFKA_BROKERS: brokers, KAFKA_SSL_CA_FILE: otherCa.ca });
      expect(wrongCa).toMatch(/certificate|self.signed|verify/i);
      expect(clients).toHaveLength(1);
    } finally {
      server.close();
    }
  });
});

describe('PostgreSQL TLS through DATABASE_URL', () => {
  let cluster: PgCluster;
  beforeAll(async () => {
    cluster = await createPgCluster(
      { ssl: 'on', ssl_cert_file: 'server.crt', ssl_key_file: 'server.key' },
      {
        // TLS only: a plain TCP connection is rejected by the server.
        hba: 'local all all trust\nhostssl all all 127.0.0.1/32 trust\nhostnossl all all 127.0.0.1/32 reject\n',
        prepare: async (dir) => {
          for (const f of ['server.crt', 'server.key'])
            await copyFile(join(certs.dir, f), join(dir, 'data', f));
          await chmod(join(dir, 'data', 'server.key'), 0o600);
        },
      },
    );
  }, 60_000);
  afterAll(async () => cluster?.destroy());

  async function sslInUse(url: string): Promise<string> {
    const pool = createDatabasePool(loadConfig({ DATABASE_URL: url, DB_POOL_MIN: '0', DB_POOL_MAX: '1' }));
    try {
      const { rows } = await pool.query<{ ssl: boolean }>(
        'SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()',
      );
      return rows[0]?.ssl ? 'tls' : 'plain';
    } catch (err) {
      return `refused: ${(err as Error).message}`;
    } finally {
      await pool.end();
    }
  }

  it('connects over verified TLS with sslmode=verify-full and sslrootcert', async () => {
    const url = `${cluster.url('postgres')}?sslmode=verify-full&sslrootcert=${encodeURIComponent(certs.ca)}`;
    expect(await sslInUse(url)).toBe('tls');
  });

  it('fails without TLS, and with a CA that did not sign the server certificate', async () => {
    expect(await sslInUse(cluster.url('postgres'))).toMatch(/refused: .*no encryption/);
    const wrong = `${cluster.url('postgres')}?sslmode=verify-full&sslrootcert=${encodeURIComponent(otherCa.ca)}`;
    expect(await sslInUse(wrong)).toMatch(/refused: .*(certificate|self.signed|verify)/i);
  });
});
