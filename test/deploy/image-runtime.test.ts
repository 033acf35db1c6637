// The image's contents, run without Docker: the Dockerfile's own dependency command (its `npm ci
// --omit=dev` RUN line, taken from the Dockerfile) runs in .cache/deploy/image, cached by lockfile hash,
// and bin/ and sql/ are copied beside it, with src/ compiled to dist/ and bundled, as the image has them. From there `migrate`,
// `topics create` and `worker` run with Node 24 against the real database and broker, which shows that the
// production dependencies alone are enough. Warm: about 10 s. Cold: the npm download adds about 15 s.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { PatternClient } from '../../src/client/index.ts';
import { brokers, testKafka, uniquePrefix } from '../support/kafka.ts';
import { freePort } from '../support/worker-process.ts';
import { CACHE, parseDockerfile, ROOT } from './support.ts';

const run = promisify(execFile);
const IMAGE = join(CACHE, 'image');

/** The RUN line of the Dockerfile stage that installs dependencies, as the image build runs it. */
function dependencyCommand(): string {
  const { stages } = parseDockerfile(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'));
  for (const stage of stages) {
    const install = stage.instructions.find((i) => i.op === 'RUN' && i.args.includes('npm ci'));
    if (install) return install.args;
  }
  throw new Error('no npm ci in the Dockerfile');
}

async function stageImage(): Promise<void> {
  const command = dependencyCommand();
  const stamp = createHash('sha256')
    .update(readFileSync(join(ROOT, 'package.json')))
    .update(readFileSync(join(ROOT, 'package-lock.json')))
    .update(command)
    .digest('hex');
  const stampFile = join(IMAGE, 'deps.sha256');
  if (!existsSync(stampFile) || readFileSync(stampFile, 'utf8') !== stamp) {
    rmSync(IMAGE, { recursive: true, force: true });
    mkdirSync(IMAGE, { recursive: true });
    for (const f of ['package.json', 'package-lock.json']) cpSync(join(ROOT, f), join(IMAGE, f));
    // A private npm cache: the command ends with `npm cache clean`, which must not empty the user's.
    await run('sh', ['-c', command], {
      cwd: IMAGE,
      env: { ...process.env, NODE_ENV: 'production', npm_config_cache: join(CACHE, 'npm-cache') },
      timeout: 300_000,
    });
    writeFileSync(stampFile, stamp);
  }
  for (const dir of ['bin', 'sql']) {
    rmSync(join(IMAGE, dir), { recursive: true, force: true });
    cpSync(join(ROOT, dir), join(IMAGE, dir), { recursive: true });
  }
  // The build stage: src/ compiled to dist/; the image has no src/.
  rmSync(join(IMAGE, 'dist'), { recursive: true, force: true });
  rmSync(join(IMAGE, 'src'), { recursive: true, force: true });
  await run(
    process.execPath,
    [
      join(ROOT, 'node_modules/typescript/bin/tsc'),
      '-p',
      join(ROOT, 'tsconfig.build.json'),
      '--outDir',
      join(IMAGE, 'dist'),
    ],
    { cwd: ROOT, timeout: 120_000 },
  );
  // Then dist/ to the bundle the image runs (bin/patterns.js picks it when there is no src/).
  await run(
    process.execPath,
    [join(ROOT, 'node_modules/rolldown/bin/cli.mjs'), '-c', join(ROOT, 'rolldown.config.js')],
    { cwd: IMAGE, timeout: 120_000 },
  );
}

/** The image's ENV NODE_OPTIONS (the heap settings; test/deploy/dockerfile.test.ts keeps them equal). */
const IMAGE_NODE_OPTIONS = (
  JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { config: { nodeOptions: string } }
).config.nodeOptions;

const patterns = (args: string[], env: Record<string, string>) =>
  run(process.execPath, [join(IMAGE, 'bin', 'patterns.js'), ...args], {
    cwd: IMAGE,
    env: {
      ...process.env,
      NODE_ENV: 'production',
      NODE_OPTIONS: IMAGE_NODE_OPTIONS,
      LOG_LEVEL: 'warn',
      ...env,
    },
    timeout: 60_000,
  });

let db: TestDatabase;
const prefix = uniquePrefix();
let worker: ChildProcess | undefined;

beforeAll(async () => {
  await stageImage();
  db = await createTestDatabase({ migrated: false });
}, 400_000);

afterAll(async () => {
  if (worker && worker.exitCode === null) worker.kill('SIGKILL');
  const admin = testKafka().admin();
  await admin.connect();
  const topics = (await admin.listTopics()).filter((t) => t.startsWith(prefix));
  if (topics.length > 0) await admin.deleteTopics({ topics });
  await admin.disconnect();
  await db?.drop();
});

describe('the image contents, run with production dependencies only', () => {
  it('has no devDependencies and no second Node binary', () => {
    const modules = join(IMAGE, 'node_modules');
    for (const dev of ['vitest', 'typescript', 'eslint', 'testcontainers', 'pino-pretty']) {
      expect(existsSync(join(modules, dev)), dev).toBe(false);
    }
    expect(existsSync(join(modules, 'node'))).toBe(false);
    expect(existsSync(join(modules, '.bin', 'node'))).toBe(false);
    for (const dep of ['@platformatic/kafka', 'pg', 'pino', 'zod', 'commander'])
      expect(existsSync(join(modules, dep)), dep).toBe(true);
    // The tests' independent Kafka client is not the product's.
    expect(existsSync(join(modules, 'kafkajs')), 'kafkajs').toBe(false);
  });

  it('`patterns migrate` applies the migrations', async () => {
    const { stdout } = await patterns(['migrate'], { DATABASE_URL: db.url });
    expect(stdout).toMatch(/\d+ applied, 0 already applied/);
  });

  it('`patterns topics create` creates the topics', async () => {
    await patterns(
      ['topics', 'create', '--partitions', '2', '--result-partitions', '1', '--reply-partitions', '1'],
      {
        TOPIC_PREFIX: prefix,
      },
    );
    const { stdout } = await patterns(['topics', 'check'], { TOPIC_PREFIX: prefix });
    expect(stdout).toMatch(/all topics exist/);
  });

  it('runs the bundle, not the modules it is made of', () => {
    expect(existsSync(join(IMAGE, 'src'))).toBe(false);
    expect(existsSync(join(IMAGE, 'dist', 'bundle', 'patterns.js'))).toBe(true);
  });

  it("compiles the Kafka client's option schemas on first use, not at start (rolldown.config.js)", () => {
    const bundle = readdirSync(join(IMAGE, 'dist', 'bundle'))
      .filter((f) => f.endsWith('.js'))
      .map((f) => readFileSync(join(IMAGE, 'dist', 'bundle', f), 'utf8'))
      .join('\n');
    expect(bundle).not.toMatch(/[^?]=\s*ajv\.compile\(/);
    expect(bundle.match(/= lazyCompile\$?\d*\(/g)?.length ?? 0).toBeGreaterThanOrEqual(38);
  });

  it('`patterns worker` becomes ready, answers a request, serves /healthz, and stops cleanly on SIGTERM', async () => {
    const port = await freePort();
    worker = spawn(process.execPath, [join(IMAGE, 'bin', 'patterns.js'), 'worker'], {
      cwd: IMAGE,
      env: {
        ...process.env,
        NODE_ENV: 'production',
        NODE_OPTIONS: IMAGE_NODE_OPTIONS,
        DATABASE_URL: db.url,
        TOPIC_PREFIX: prefix,
        KAFKA_GROUP_ID: `${prefix}image-check`,
        PORT: String(port),
        WORKER_SHUTDOWN_TIMEOUT_MS: '5000',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let log = '';
    worker.stdout?.on('data', (d: Buffer) => (log += d.toString()));
    worker.stderr?.on('data', (d: Buffer) => (log += d.toString()));
    const exited = new Promise<number | null>((resolve) => worker!.once('exit', (code) => resolve(code)));

    const deadline = Date.now() + 40_000;
    let ready = 0;
    while (Date.now() < deadline && worker.exitCode === null) {
      ready = await fetch(`http://127.0.0.1:${port}/readyz`).then(
        (r) => r.status,
        () => 0,
      );
      if (ready === 200) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(ready, log).toBe(200);
    expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
    // One request through the bundled worker: decode, validate, the database, the result on the reply topic.
    const client = await new PatternClient({ brokers: brokers(), topicPrefix: prefix }).connect();
    try {
      const inserted = await client.insert(
        { data: { pattern_name: 'FromTheBundle', pattern_type: 'code', language: 'go' } },
        { timeoutMs: 20_000 },
      );
      expect(inserted.success, log).toBe(true);
      const { rows } = await db.pool.query<{ n: number }>(
        "SELECT count(*) AS n FROM pattern_templates WHERE pattern_name = 'FromTheBundle'",
      );
      expect(Number(rows[0]?.n)).toBe(1);
    } finally {
      await client.close();
    }

    const stoppedAt = Date.now();
    worker.kill('SIGTERM');
    expect(await exited, log).toBe(0);
    expect(Date.now() - stoppedAt).toBeLessThan(5_000 + 2_000);
  }, 60_000);
});
