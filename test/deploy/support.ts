// Shared by the deployment tests: the chart checker (Helm's Go library through helm-java, built with Maven
// and cached), the Compose specification schema (from an npm package, cached) and the Kubernetes API
// schemas (from fabric8's model jars on Maven Central, extracted by the chart checker).
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { Ajv, type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';

export const ROOT = join(import.meta.dirname, '..', '..');
export const CACHE = join(ROOT, '.cache', 'deploy');
export const CHART = join(ROOT, 'helm', 'pattern-worker');

const CHECKER_DIR = join(ROOT, 'deploy', 'chart-check');
const CHECKER_BUILD = join(CACHE, 'chart-check');
const CHECKER_SOURCES = ['pom.xml', 'src/main/java/patternworker/chartcheck/ChartCheck.java'];

/**
 * Builds deploy/chart-check with Maven unless the cached build matches its sources. Cold: downloads. Test
 * files that run at once may both build: each builds in a folder of its own, and the first rename wins.
 */
export function ensureChartChecker(): void {
  const hash = createHash('sha256');
  for (const f of CHECKER_SOURCES) hash.update(readFileSync(join(CHECKER_DIR, f)));
  const stamp = hash.digest('hex');
  const stampFile = join(CHECKER_BUILD, 'sources.sha256');
  const current = () => existsSync(stampFile) && readFileSync(stampFile, 'utf8') === stamp;
  if (current()) return;
  mkdirSync(CACHE, { recursive: true });
  const build = mkdtempSync(join(CACHE, 'chart-check-build-'));
  try {
    execFileSync(
      'mvn',
      ['-q', '-B', '-f', join(CHECKER_DIR, 'pom.xml'), `-Dchartcheck.buildDir=${build}`, 'package'],
      { stdio: ['ignore', 'pipe', 'pipe'], timeout: 600_000 },
    );
    writeFileSync(join(build, 'sources.sha256'), stamp);
    if (current()) return;
    rmSync(CHECKER_BUILD, { recursive: true, force: true });
    try {
      renameSync(build, CHECKER_BUILD);
    } catch (err) {
      if (!current()) throw err; // another file's build got there first
    }
  } finally {
    rmSync(build, { recursive: true, force: true });
  }
}

export interface ChartCheckResult {
  lint: { failed: boolean; messages: string[] };
  rendered: Map<string, string>;
  rejected: Map<string, string>;
  /** One fabric8 validation-schema.json per model jar. */
  schemas: Record<string, unknown>[];
}

/**
 * Lints the chart and renders it once per case ("-" = the chart's defaults), in one JVM, in an output
 * folder of its own (so that test files can run it at once).
 */
export function runChartCheck(cases: Record<string, string>): ChartCheckResult {
  ensureChartChecker();
  mkdirSync(CACHE, { recursive: true });
  const out = mkdtempSync(join(CACHE, 'render-'));
  try {
    return chartCheckIn(out, cases);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

function chartCheckIn(out: string, cases: Record<string, string>): ChartCheckResult {
  const classpath = `${join(CHECKER_BUILD, 'chart-check-1.0.0.jar')}:${join(CHECKER_BUILD, 'lib', '*')}`;
  execFileSync(
    'java',
    [
      '-cp',
      classpath,
      'patternworker.chartcheck.ChartCheck',
      CHART,
      out,
      ...Object.entries(cases).map(([name, file]) => `${name}=${file}`),
    ],
    { stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000 },
  );
  const rendered = new Map<string, string>();
  const rejected = new Map<string, string>();
  for (const name of Object.keys(cases)) {
    const yaml = join(out, `${name}.yaml`);
    if (existsSync(yaml)) rendered.set(name, readFileSync(yaml, 'utf8'));
    else rejected.set(name, readFileSync(join(out, `${name}.error`), 'utf8'));
  }
  const schemaDir = join(out, 'schemas');
  return {
    lint: JSON.parse(readFileSync(join(out, 'lint.json'), 'utf8')) as ChartCheckResult['lint'],
    rendered,
    rejected,
    schemas: readdirSync(schemaDir).map(
      (f) => JSON.parse(readFileSync(join(schemaDir, f), 'utf8')) as Record<string, unknown>,
    ),
  };
}

// dclint ships the Compose specification's schema (compose-spec/compose-spec, Apache-2.0) as
// schemas/compose.schema.json. Pinned by version and checked against the registry's integrity hash.
const COMPOSE_SCHEMA_PACKAGE = 'dclint@3.1.0';
const COMPOSE_SCHEMA_INTEGRITY =
  'sha512-afTGdzRFUXK4yCpIiEW/LOR+9TOMEDhNldDp56VCWzn7JDmD451PcUi640GGlMHgbHKJ10rDBm4PtpcBbjqlXw==';

/** The Compose specification JSON schema, fetched once with `npm pack` into .cache/deploy. */
export function composeSpecSchema(): Record<string, unknown> {
  const dir = join(CACHE, 'compose-spec');
  const file = join(dir, 'compose.schema.json');
  if (!existsSync(file)) {
    mkdirSync(dir, { recursive: true });
    const packed = JSON.parse(
      execFileSync('npm', ['pack', COMPOSE_SCHEMA_PACKAGE, '--json', '--pack-destination', dir], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
        timeout: 120_000,
      }),
    ) as { filename: string }[];
    const tarball = join(dir, packed[0]!.filename);
    const integrity = `sha512-${createHash('sha512').update(readFileSync(tarball)).digest('base64')}`;
    if (integrity !== COMPOSE_SCHEMA_INTEGRITY) {
      throw new Error(`${COMPOSE_SCHEMA_PACKAGE}: integrity ${integrity} is not the pinned one`);
    }
    execFileSync('tar', [
      '-xzf',
      tarball,
      '-C',
      dir,
      '--strip-components=2',
      'package/schemas/compose.schema.json',
    ]);
    rmSync(tarball);
  }
  const schema = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  // It names draft-07 by an https URI that ajv does not know; it is plain draft-07.
  delete schema.$schema;
  return schema;
}

export function newAjv(): Ajv {
  const ajv = new Ajv({ strict: false, allErrors: true, allowUnionTypes: true });
  // A CommonJS module: its plugin is module.exports, also exported as .default.
  addFormats.default(ajv);
  return ajv;
}

type JsonSchema = Record<string, unknown> & {
  properties?: Record<string, JsonSchema>;
  required?: string[] | boolean;
  additionalProperties?: unknown;
};

/**
 * fabric8's schemas describe its Java model, not the wire format, so they are tightened before use:
 * IntOrString and Quantity are a string or a number on the wire (not objects), an object with known
 * properties allows no others (so a misspelt field fails), and draft-3 style `required: true` on a
 * property becomes the parent's `required` list.
 */
function tighten(definitions: Record<string, JsonSchema>): Record<string, JsonSchema> {
  const out: Record<string, JsonSchema> = {};
  for (const [name, def] of Object.entries(definitions)) {
    if (name.endsWith('IntOrString')) {
      out[name] = { type: ['string', 'integer'] };
      continue;
    }
    if (name.endsWith('_Quantity')) {
      out[name] = { type: ['string', 'number'] };
      continue;
    }
    const copy: JsonSchema = { ...def };
    if (copy.properties) {
      const required: string[] = [];
      const properties: Record<string, JsonSchema> = {};
      for (const [prop, schema] of Object.entries(copy.properties)) {
        const { required: flag, ...rest } = schema;
        if (flag === true) required.push(prop);
        properties[prop] = rest;
      }
      copy.properties = properties;
      if (required.length > 0) copy.required = required;
      if (copy.additionalProperties === true || copy.additionalProperties === undefined) {
        copy.additionalProperties = false;
      }
    }
    out[name] = copy;
  }
  return out;
}

export interface KubernetesValidator {
  /** Kinds the schemas know, as "apiVersion/Kind". */
  known: Set<string>;
  /** Validation errors for one manifest, or null when it has no schema here. */
  validate(manifest: { apiVersion?: unknown; kind?: unknown }): string[] | null;
}

export function kubernetesValidator(schemas: Record<string, unknown>[]): KubernetesValidator {
  const merged: Record<string, JsonSchema> = {};
  for (const s of schemas) Object.assign(merged, s.definitions as Record<string, JsonSchema>);
  const definitions = tighten(merged);
  const byKind = new Map<string, string>();
  for (const [name, def] of Object.entries(merged)) {
    const apiVersion = def.properties?.apiVersion?.default;
    const kind = def.properties?.kind?.default;
    if (typeof apiVersion === 'string' && typeof kind === 'string') byKind.set(`${apiVersion}/${kind}`, name);
  }
  const ajv = newAjv();
  ajv.addSchema({ $id: 'k8s', definitions });
  const compiled = new Map<string, ValidateFunction>();
  return {
    known: new Set(byKind.keys()),
    validate(manifest) {
      const key = `${String(manifest.apiVersion)}/${String(manifest.kind)}`;
      const name = byKind.get(key);
      if (!name) return null;
      let fn = compiled.get(name);
      if (!fn) {
        fn = ajv.compile({ $ref: `k8s#/definitions/${name}` });
        compiled.set(name, fn);
      }
      if (fn(manifest)) return [];
      return (fn.errors ?? []).map(
        (e) => `${key} ${e.instancePath || '/'} ${e.message ?? ''} ${JSON.stringify(e.params)}`,
      );
    },
  };
}

export interface Instruction {
  op: string;
  args: string;
}
export interface Stage {
  from: string;
  name?: string;
  instructions: Instruction[];
}

/** Dockerfile instructions with line continuations joined and comments dropped. */
export function parseDockerfile(text: string): { args: Map<string, string>; stages: Stage[] } {
  const logical: string[] = [];
  let current = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('#') && current === '') continue;
    if (line.startsWith('#')) continue;
    if (line.endsWith('\\')) {
      current += `${line.slice(0, -1)} `;
      continue;
    }
    current += line;
    if (current.trim()) logical.push(current.trim());
    current = '';
  }
  const args = new Map<string, string>();
  const stages: Stage[] = [];
  for (const line of logical) {
    const [op = '', ...rest] = line.split(/\s+/);
    const instruction = { op: op.toUpperCase(), args: rest.join(' ') };
    if (instruction.op === 'FROM') {
      const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(instruction.args);
      stages.push({ from: m?.[1] ?? '', name: m?.[2], instructions: [] });
    } else if (stages.length === 0 && instruction.op === 'ARG') {
      const [name, value = ''] = instruction.args.split('=');
      args.set(name!, value);
    } else {
      stages.at(-1)?.instructions.push(instruction);
    }
  }
  return { args, stages };
}
