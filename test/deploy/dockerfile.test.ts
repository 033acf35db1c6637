// The image, checked without a Docker engine: the Dockerfile's instructions are parsed and their
// important properties asserted, the .dockerignore allow-list is matched against what the image copies,
// and the entrypoint and HEALTHCHECK commands are run for real with this machine's Node 24. About 2 s.
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { parseDockerfile, ROOT, type Stage } from './support.ts';

const run = promisify(execFile);

const dockerfile = parseDockerfile(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'));
const runtime = dockerfile.stages.at(-1)!;
const ops = (stage: Stage, op: string) => stage.instructions.filter((i) => i.op === op).map((i) => i.args);
const execForm = (args: string) => JSON.parse(args) as string[];

describe('Dockerfile', () => {
  it('is multi-stage on the official Node 24 slim image', () => {
    expect(dockerfile.stages.length).toBeGreaterThanOrEqual(2);
    for (const stage of dockerfile.stages) {
      const image = stage.from.replace(/^\$\{(\w+)\}$/, (_, name: string) => dockerfile.args.get(name) ?? '');
      expect(image).toBe('node:24-slim');
    }
  });

  it('installs production dependencies only, from the lockfile, in a build stage', () => {
    const deps = dockerfile.stages.find((s) => ops(s, 'RUN').some((r) => r.includes('npm ci')))!;
    expect(deps).toBeDefined();
    expect(deps).not.toBe(runtime);
    const install = ops(deps, 'RUN').find((r) => r.includes('npm ci'))!;
    expect(install).toMatch(/npm ci --omit=dev/);
    // The lockfile is copied before the install, so `npm ci` installs exactly what it pins.
    const copyIndex = deps.instructions.findIndex(
      (i) => i.op === 'COPY' && i.args.includes('package-lock.json'),
    );
    const runIndex = deps.instructions.findIndex((i) => i.op === 'RUN' && i.args.includes('npm ci'));
    expect(copyIndex).toBeGreaterThanOrEqual(0);
    expect(copyIndex).toBeLessThan(runIndex);
    for (const stage of dockerfile.stages) {
      for (const r of ops(stage, 'RUN')) expect(r).not.toMatch(/npm (install|i|update)\b/);
    }
    // The runtime stage takes node_modules from the build stage only, never from the build context.
    const copies = ops(runtime, 'COPY');
    expect(copies).toContain(`--from=${deps.name} /app/node_modules ./node_modules`);
    expect(runtime.instructions.some((i) => i.op === 'RUN' && i.args.includes('npm'))).toBe(false);
  });

  it('runs as a numeric non-root user with a HEALTHCHECK on /healthz and `patterns worker` by default', () => {
    const [user] = ops(runtime, 'USER');
    expect(user).toMatch(/^[1-9]\d*(:[1-9]\d*)?$/);
    const [healthcheck] = ops(runtime, 'HEALTHCHECK');
    expect(healthcheck).toMatch(/\/healthz/);
    expect(execForm(ops(runtime, 'ENTRYPOINT')[0]!)).toEqual(['node', '/app/bin/patterns.js']);
    expect(execForm(ops(runtime, 'CMD')[0]!)).toEqual(['worker']);
    expect(ops(runtime, 'EXPOSE')).toEqual(['8080']);
    // The USER comes after every COPY, so the copied files stay root-owned and read-only for the worker.
    const userIndex = runtime.instructions.findIndex((i) => i.op === 'USER');
    const lastCopy = runtime.instructions.findLastIndex((i) => i.op === 'COPY');
    expect(userIndex).toBeGreaterThan(lastCopy);
    expect(runtime.instructions.some((i) => i.op === 'COPY' && i.args.includes('--chown'))).toBe(false);
  });

  it('copies only files that exist and that .dockerignore lets through', () => {
    const ignore = readFileSync(join(ROOT, '.dockerignore'), 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
    // An allow-list: everything is excluded, then each needed path is let through.
    expect(ignore[0]).toBe('*');
    const allowed = ignore.slice(1).map((l) => {
      expect(l.startsWith('!')).toBe(true);
      return l.slice(1).replace(/\/$/, '');
    });
    const fromContext = dockerfile.stages
      .flatMap((s) => ops(s, 'COPY'))
      .filter((c) => !c.startsWith('--from'))
      .flatMap((c) => c.split(/\s+/).slice(0, -1));
    expect(fromContext.length).toBeGreaterThan(0);
    for (const path of fromContext) {
      expect(allowed, path).toContain(path);
      expect(existsSync(join(ROOT, path)), path).toBe(true);
    }
    for (const excluded of ['test', 'node_modules', '.cache', '.git', 'helm', 'deploy']) {
      expect(allowed).not.toContain(excluded);
    }
  });
});

describe('heap settings', () => {
  it('are the same in the image, `npm start` and the Helm chart (package.json config.nodeOptions)', () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
      config: { nodeOptions: string };
      scripts: { start: string };
    };
    const flags = pkg.config.nodeOptions;
    expect(flags).toMatch(/--max-old-space-size=\d+/);
    const env = ops(runtime, 'ENV').join(' ');
    expect(env).toContain(`NODE_OPTIONS="${flags}"`);
    expect(pkg.scripts.start).toContain('$npm_package_config_nodeOptions');
    expect(pkg.scripts.start).toContain('dist/bundle/patterns.js');
    const values = parse(readFileSync(join(ROOT, 'helm/pattern-worker/values.yaml'), 'utf8')) as {
      worker: { nodeOptions: string };
    };
    expect(values.worker.nodeOptions).toBe(flags);
  });
});

describe('the image commands, run with Node 24 as the image would', () => {
  // ENTRYPOINT + CMD, with a subcommand's --help so nothing connects anywhere.
  const patterns = (...args: string[]) =>
    run(process.execPath, [join(ROOT, 'bin', 'patterns.js'), ...args], { cwd: ROOT, timeout: 20_000 });

  it('`worker`, `migrate` and `topics create` exist in the same entrypoint', async () => {
    const { stdout } = await patterns('--help');
    expect(stdout).toMatch(/\bworker\b/);
    expect(stdout).toMatch(/\bmigrate\b/);
    expect(stdout).toMatch(/\btopics\b/);
    expect((await patterns('topics', 'create', '--help')).stdout).toMatch(/--partitions/);
    expect((await patterns('migrate', '--help')).stdout).toMatch(/migrat/i);
  });

  describe('the HEALTHCHECK command', () => {
    const [, script] = execForm(ops(runtime, 'HEALTHCHECK')[0]!.replace(/^.*?CMD\s+/, '')).slice(1);
    let status = 200;
    let server: Server | undefined;
    afterAll(() => server?.close());

    const probe = async (port: number) => {
      try {
        await run(process.execPath, ['-e', script!], {
          env: { ...process.env, PORT: String(port) },
          timeout: 10_000,
        });
        return 0;
      } catch (err) {
        return (err as { code?: number }).code ?? -1;
      }
    };

    it('passes on 200 from /healthz and fails on an error status or a closed port', async () => {
      const paths: string[] = [];
      server = createServer((req, res) => {
        paths.push(req.url ?? '');
        res.writeHead(status).end();
      });
      await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
      const { port } = server.address() as AddressInfo;
      expect(await probe(port)).toBe(0);
      status = 503;
      expect(await probe(port)).toBe(1);
      expect(paths).toEqual(['/healthz', '/healthz']);
      await new Promise<void>((resolve) => server!.close(() => resolve()));
      expect(await probe(port)).toBe(1);
    });
  });
});
