// docker-compose.yml, checked without a Docker engine: validated against the Compose specification's
// JSON schema, its start order and scaling properties asserted, and its PostgreSQL init script run
// against the real server to show the worker role can do its work but not change the schema. About 5 s
// warm (most of it migrations); the first run fetches the schema with `npm pack`.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { parseDocument } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configSchema } from '../../src/config.ts';
import { NodePatternStorageEffect, NodePatternUpdateEffect } from '../../src/nodes/index.ts';
import { migrationStatus } from '../../src/db/migrate.ts';
import { createPool, type Pool } from '../../src/db/pool.ts';
import { ADMIN_URL } from '../support/database.ts';
import { composeSpecSchema, newAjv, ROOT } from './support.ts';

const run = promisify(execFile);

type Obj = Record<string, unknown>;
interface Service extends Obj {
  image?: string;
  build?: Obj;
  command?: string[];
  environment?: Record<string, string | number>;
  depends_on?: Record<string, { condition: string }> | string[];
  healthcheck?: Obj;
  ports?: (string | Obj)[];
  volumes?: string[];
  profiles?: string[];
}

const text = readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8');
// Compose reads YAML merge keys (<<), so they are merged here too.
const compose = parseDocument(text, { merge: true }).toJS() as {
  services: Record<string, Service>;
  volumes: Obj;
};
const services = compose.services;

// Variables the worker reads (src/config.ts), the standard OpenTelemetry ones, and the Kafka TLS file
// settings being added beside them.
const isWorkerVariable = (name: string) =>
  name in configSchema.shape ||
  name.startsWith('OTEL_') ||
  /^KAFKA_SSL_(CA|CERT|KEY)_FILE$|^KAFKA_SSL_REJECT_UNAUTHORIZED$/.test(name);

describe('docker-compose.yml', () => {
  it('validates against the Compose specification schema, which does catch mistakes', () => {
    const validate = newAjv().compile(composeSpecSchema());
    expect(validate(compose), JSON.stringify(validate.errors, null, 2)).toBe(true);

    const broken = structuredClone(compose);
    (broken.services.worker!.depends_on as Record<string, Obj>).migrate = { condition: 'service_finished' };
    broken.services.worker!.restart_policy = 'always';
    expect(validate(broken)).toBe(false);
    const paths = (validate.errors ?? []).map((e) => e.instancePath);
    expect(paths).toContain('/services/worker/depends_on/migrate/condition');
  });

  it('Kafka in KRaft mode and PostgreSQL 15+, each with a volume and a health check', () => {
    const kafka = services.kafka!;
    expect(kafka.image).toMatch(/^apache\/kafka:4\./);
    expect(kafka.environment?.KAFKA_PROCESS_ROLES).toBe('broker,controller');
    // KRaft needs a cluster id: a base64url UUID.
    expect(Buffer.from(String(kafka.environment?.CLUSTER_ID), 'base64url')).toHaveLength(16);
    expect(kafka.environment?.KAFKA_AUTO_CREATE_TOPICS_ENABLE).toBe('false');
    const postgres = services.postgres!;
    expect(Number(/^postgres:(\d+)/.exec(postgres.image ?? '')?.[1])).toBeGreaterThanOrEqual(15);
    for (const [name, volumePath] of [
      ['kafka', '/var/lib/kafka/data'],
      ['postgres', '/var/lib/postgresql/data'],
    ] as const) {
      const service = services[name]!;
      expect(service.healthcheck?.test, name).toBeDefined();
      const volume = service.volumes?.find((v) => v.endsWith(`:${volumePath}`));
      expect(volume, name).toBeDefined();
      expect(compose.volumes).toHaveProperty(volume!.split(':')[0]!);
    }
  });

  it('migrations and topics run once, before the worker starts', () => {
    expect(services.migrate!.command).toEqual(['migrate']);
    expect(services.topics!.command?.slice(0, 2)).toEqual(['topics', 'create']);
    expect(services.migrate!.depends_on).toEqual({ postgres: { condition: 'service_healthy' } });
    expect(services.topics!.depends_on).toEqual({ kafka: { condition: 'service_healthy' } });
    for (const oneShot of ['migrate', 'topics']) {
      expect(services[oneShot]!.restart).toBe('no');
      expect(services[oneShot]!.healthcheck).toEqual({ disable: true });
    }
    expect(services.worker!.depends_on).toEqual({
      kafka: { condition: 'service_healthy' },
      postgres: { condition: 'service_healthy' },
      migrate: { condition: 'service_completed_successfully' },
      topics: { condition: 'service_completed_successfully' },
    });
  });

  it('the worker scales: no container name, no fixed host port, graceful stop above its shutdown bound', () => {
    const worker = services.worker!;
    expect(worker.command).toEqual(['worker']);
    expect(worker.container_name).toBeUndefined();
    for (const port of worker.ports ?? []) {
      expect(typeof port, 'long syntax without a published port').toBe('object');
      expect((port as Obj).published).toBeUndefined();
    }
    const grace = Number(/^(\d+)s$/.exec(String(worker.stop_grace_period))?.[1]);
    expect(grace * 1000).toBeGreaterThan(Number(worker.environment?.WORKER_SHUTDOWN_TIMEOUT_MS));
  });

  it('the app services share one image built from the Dockerfile, on a read-only root filesystem', () => {
    for (const name of ['migrate', 'topics', 'worker']) {
      const service = services[name]!;
      expect(service.image, name).toBe('pattern-worker:local');
      expect(service.build, name).toMatchObject({ context: '.', dockerfile: 'Dockerfile' });
      expect(service.read_only, name).toBe(true);
      expect(service.tmpfs, name).toEqual(['/tmp']);
    }
  });

  it('uses the worker variable names, and the worker logs in as a different role than migrations', () => {
    for (const name of ['migrate', 'topics', 'worker']) {
      const unknown = Object.keys(services[name]!.environment ?? {}).filter((k) => !isWorkerVariable(k));
      expect(unknown, name).toEqual([]);
    }
    expect(services.migrate!.environment?.DATABASE_URL).toMatch(
      /^postgres:\/\/\$\{POSTGRES_USER:-patterns_owner\}:/,
    );
    expect(services.worker!.environment?.DATABASE_URL).toMatch(
      /^postgres:\/\/\$\{WORKER_DB_USER:-pattern_worker\}:/,
    );
    expect(services.worker!.environment?.KAFKA_BROKERS).toBe('kafka:29092');
    expect(String(services.kafka!.environment?.KAFKA_ADVERTISED_LISTENERS)).toContain(
      'INTERNAL://kafka:29092',
    );
  });

  it('the observability profile adds an OpenTelemetry collector and Jaeger, off by default', () => {
    for (const name of ['otel-collector', 'jaeger'])
      expect(services[name]!.profiles).toEqual(['observability']);
    for (const name of ['kafka', 'postgres', 'migrate', 'topics', 'worker'])
      expect(services[name]!.profiles).toBeUndefined();
    expect(services.worker!.environment?.OTEL_EXPORTER_OTLP_ENDPOINT).toBe('http://otel-collector:4318');
    const mount = services['otel-collector']!.volumes?.[0] ?? '';
    const config = parseDocument(readFileSync(join(ROOT, mount.split(':')[0]!), 'utf8')).toJS() as {
      receivers: Obj;
      processors: Obj;
      exporters: Obj;
      service: {
        pipelines: Record<string, { receivers: string[]; processors: string[]; exporters: string[] }>;
      };
    };
    const traces = config.service.pipelines.traces!;
    for (const r of traces.receivers) expect(config.receivers).toHaveProperty([r]);
    for (const p of traces.processors) expect(config.processors).toHaveProperty([p]);
    for (const e of traces.exporters) expect(config.exporters).toHaveProperty([e]);
    expect(config.exporters['otlp/jaeger']).toMatchObject({ endpoint: 'jaeger:4317' });
  });
});

describe('deploy/compose/postgres-init.sh on the real PostgreSQL', () => {
  const suffix = randomBytes(4).toString('hex');
  const owner = `pw_owner_${suffix}`;
  const workerRole = `pw_worker_${suffix}`;
  const database = `pw_test_compose_${suffix}`;
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  // Passwords matter only where the server checks them (a container); the local server trusts.
  const ownerPassword = `owner-${suffix}`;
  const workerPassword = `worker-${suffix}`;
  const urlFor = (user: string, password: string) => {
    const u = new URL(ADMIN_URL);
    u.username = user;
    u.password = password;
    u.pathname = `/${database}`;
    return u.toString();
  };
  let workerPool: Pool | undefined;

  beforeAll(async () => {
    await admin.connect();
    // The image's POSTGRES_USER is a superuser; the least this script needs is CREATEROLE.
    await admin.query(`CREATE ROLE ${owner} LOGIN CREATEROLE PASSWORD '${ownerPassword}'`);
    await admin.query(`CREATE DATABASE ${database} OWNER ${owner}`);
    const server = new URL(ADMIN_URL);
    // As the postgres image's entrypoint runs it: POSTGRES_USER owns POSTGRES_DB.
    await run('sh', [join(ROOT, 'deploy', 'compose', 'postgres-init.sh')], {
      env: {
        ...process.env,
        PGHOST: server.hostname,
        PGPORT: server.port || '5432',
        PGPASSWORD: ownerPassword,
        POSTGRES_USER: owner,
        POSTGRES_DB: database,
        WORKER_DB_USER: workerRole,
        WORKER_DB_PASSWORD: workerPassword,
      },
      timeout: 20_000,
    });
    // The one-shot migrate service: `patterns migrate` as the owner.
    await run(process.execPath, [join(ROOT, 'bin', 'patterns.js'), 'migrate'], {
      env: { ...process.env, DATABASE_URL: urlFor(owner, ownerPassword), LOG_LEVEL: 'warn' },
      timeout: 60_000,
    });
    workerPool = createPool({ connectionString: urlFor(workerRole, workerPassword), min: 0, max: 2 });
  }, 90_000);

  afterAll(async () => {
    await workerPool?.end();
    await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
    await admin.query(`DROP ROLE IF EXISTS ${workerRole}`);
    await admin.query(`DROP ROLE IF EXISTS ${owner}`);
    await admin.end();
  });

  it('the worker role inserts patterns and records usage (trigger, rollup, identity records)', async () => {
    const storage = new NodePatternStorageEffect(workerPool!);
    const inserted = await storage.executeEffect(
      {
        operation: 'insert',
        data: {
          pattern_name: 'ComposeRoleCheck',
          pattern_type: 'code',
          language: 'go',
          confidence_score: 0.8,
        },
      } as never,
      { identity: `compose-${suffix}-1`, eventTime: new Date() },
    );
    expect(inserted.success, JSON.stringify(inserted)).toBe(true);
    const id = (inserted.data as { pattern_id: string }).pattern_id;
    const update = new NodePatternUpdateEffect(workerPool!);
    const usage = await update.executeEffect(
      { operation: 'record_usage', pattern_id: id, usage_data: { success: true } } as never,
      { identity: `compose-${suffix}-2`, eventTime: new Date() },
    );
    expect(usage.success, JSON.stringify(usage)).toBe(true);
    const { rows } = await workerPool!.query<{ usage_count: number }>(
      'SELECT usage_count FROM pattern_templates WHERE id = $1',
      [id],
    );
    expect(rows[0]?.usage_count).toBe(1);
  });

  it('the worker role sees the migrations as current, as the worker checks at start', async () => {
    expect((await migrationStatus(workerPool!)).current).toBe(true);
  });

  it('the worker role cannot change the schema', async () => {
    await expect(workerPool!.query('CREATE TABLE intruder (id int)')).rejects.toThrow(/permission denied/);
    await expect(workerPool!.query('DROP TABLE pattern_templates')).rejects.toThrow(/must be owner/);
    await expect(workerPool!.query('ALTER TABLE pattern_templates ADD COLUMN x int')).rejects.toThrow(
      /must be owner/,
    );
  });
});
