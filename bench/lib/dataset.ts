// Deterministic dataset: patterns with realistic names, text, tags and languages, and usage events with a
// skewed (Zipf-like) popularity. Everything comes from one seeded generator, so two runs see the same data.
import { createHash } from 'node:crypto';

/** sfc32: small, fast, good enough statistically for benchmark data; never Math.random. */
export class Rng {
  #a: number;
  #b: number;
  #c: number;
  #d: number;

  constructor(seed: number) {
    this.#a = 0x9e3779b9;
    this.#b = 0x243f6a88;
    this.#c = 0xb7e15162;
    this.#d = seed >>> 0;
    for (let i = 0; i < 15; i++) this.next();
  }

  /** Uniform in [0, 1). */
  next(): number {
    const t = (((this.#a + this.#b) | 0) + this.#d) | 0;
    this.#d = (this.#d + 1) | 0;
    this.#a = this.#b ^ (this.#b >>> 9);
    this.#b = (this.#c + (this.#c << 3)) | 0;
    this.#c = (this.#c << 21) | (this.#c >>> 11);
    this.#c = (this.#c + t) | 0;
    return (t >>> 0) / 4294967296;
  }

  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)] as T;
  }

  /** k distinct items. */
  sample<T>(items: readonly T[], k: number): T[] {
    const chosen = new Set<T>();
    while (chosen.size < Math.min(k, items.length)) chosen.add(this.pick(items));
    return [...chosen];
  }

  round(x: number, digits: number): number {
    const f = 10 ** digits;
    return Math.round(x * f) / f;
  }
}

/** A UUID derived from the seed and an index, so ids are stable across runs. */
export function seededUuid(seed: number, kind: string, index: number): string {
  const h = createHash('sha1').update(`${seed}:${kind}:${index}`).digest('hex');
  const variant = ((parseInt(h.slice(16, 17), 16) & 0x3) | 0x8).toString(16);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-${variant}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

const QUALIFIERS = [
  'Async',
  'Cached',
  'Retrying',
  'Buffered',
  'Lazy',
  'Batched',
  'Streaming',
  'Pooled',
  'Sharded',
  'Idempotent',
  'Transactional',
  'Reactive',
  'Throttled',
  'Versioned',
  'Distributed',
  'Concurrent',
  'Immutable',
  'Typed',
  'Resilient',
  'Observable',
  'Paginated',
  'Debounced',
  'Scoped',
  'Layered',
  'Composite',
  'Secure',
  'Weighted',
  'Partitioned',
  'Deferred',
  'Guarded',
] as const;
const SUBJECTS = [
  'Database',
  'Http',
  'Event',
  'Message',
  'Cache',
  'File',
  'Config',
  'Session',
  'Token',
  'Query',
  'Queue',
  'Stream',
  'Schema',
  'Metrics',
  'Log',
  'Search',
  'Payment',
  'Order',
  'User',
  'Graph',
  'Socket',
  'Job',
  'Template',
  'Index',
  'Storage',
  'Auth',
  'Rate',
  'Circuit',
  'Retry',
  'Snapshot',
  'Ledger',
  'Webhook',
  'Notification',
  'Feature',
  'Tenant',
  'Blob',
] as const;
const ROLES = [
  'Writer',
  'Reader',
  'Repository',
  'Client',
  'Handler',
  'Adapter',
  'Factory',
  'Builder',
  'Consumer',
  'Producer',
  'Validator',
  'Resolver',
  'Scheduler',
  'Loader',
  'Manager',
  'Gateway',
  'Breaker',
  'Limiter',
  'Mapper',
  'Dispatcher',
] as const;
const SUFFIXES = ['Pattern', 'Strategy', '', 'Template', 'Effect', 'Service'] as const;
// Weighted roughly like a polyglot codebase.
const LANGUAGES: readonly (readonly [string, number])[] = [
  ['python', 30],
  ['typescript', 22],
  ['java', 12],
  ['go', 10],
  ['rust', 7],
  ['javascript', 7],
  ['csharp', 5],
  ['kotlin', 3],
  ['ruby', 2],
  ['cpp', 2],
];
const TYPES = ['code', 'architecture', 'design', 'testing', 'infrastructure', 'security'] as const;
const CATEGORIES = [
  'data-access',
  'messaging',
  'resilience',
  'api',
  'observability',
  'concurrency',
  'storage',
  'auth',
] as const;
const TAGS = [
  'onex',
  'effect',
  'database',
  'async',
  'http',
  'kafka',
  'postgres',
  'redis',
  'retry',
  'cache',
  'auth',
  'grpc',
  'rest',
  'testing',
  'performance',
  'security',
  'logging',
  'metrics',
  'batch',
  'stream',
  'orm',
  'sql',
  'queue',
  'cloud',
  'serverless',
  'production',
  'legacy',
  'experimental',
] as const;
const VERBS = [
  'writes',
  'reads',
  'retries',
  'caches',
  'validates',
  'batches',
  'streams',
  'schedules',
  'routes',
  'guards',
];
const OBJECTS = [
  'records',
  'requests',
  'events',
  'rows',
  'messages',
  'documents',
  'payments',
  'sessions',
  'jobs',
  'files',
];
const WAYS = [
  'with exponential backoff',
  'inside one transaction',
  'without blocking the event loop',
  'in bounded batches',
  'behind a connection pool',
  'with idempotency keys',
  'using optimistic locking',
  'under a circuit breaker',
  'with structured logging',
  'through a typed interface',
];

export interface PatternRow {
  id: string;
  pattern_name: string;
  pattern_type: string;
  language: string;
  category: string;
  template_code: string;
  description: string;
  confidence_score: number;
  tags: string[];
  context: Record<string, unknown>;
  discovered_at: string;
}

function pickLanguage(rng: Rng): string {
  let r = rng.next() * 100;
  for (const [language, weight] of LANGUAGES) {
    if ((r -= weight) < 0) return language;
  }
  return 'python';
}

function template(language: string, name: string, verb: string, object: string): string {
  switch (language) {
    case 'python':
      return `class ${name}:\n    async def execute_effect(self, contract):\n        """${verb} ${object}"""\n        ...`;
    case 'go':
      return `type ${name} struct{}\n\nfunc (p *${name}) Execute(ctx context.Context) error { // ${verb} ${object}\n\treturn nil\n}`;
    case 'rust':
      return `pub struct ${name};\n\nimpl ${name} {\n    pub async fn execute(&self) -> Result<()> { /* ${verb} ${object} */ Ok(()) }\n}`;
    default:
      return `export class ${name} {\n  async execute(contract) { /* ${verb} ${object} */ }\n}`;
  }
}

/** The patterns of a dataset; names are unique per language, as the schema requires. */
export function generatePatterns(seed: number, count: number, anchor: Date = new Date()): PatternRow[] {
  const rng = new Rng(seed);
  const seen = new Set<string>();
  const rows: PatternRow[] = [];
  for (let i = 0; i < count; i++) {
    const language = pickLanguage(rng);
    let name = `${rng.pick(QUALIFIERS)}${rng.pick(SUBJECTS)}${rng.pick(ROLES)}${rng.pick(SUFFIXES)}`;
    while (seen.has(`${name}/${language}`)) name = `${name.replace(/V\d+$/, '')}V${2 + rng.int(9999)}`;
    seen.add(`${name}/${language}`);
    const verb = rng.pick(VERBS);
    const object = rng.pick(OBJECTS);
    rows.push({
      id: seededUuid(seed, 'pattern', i),
      pattern_name: name,
      pattern_type: rng.pick(TYPES),
      language,
      category: rng.pick(CATEGORIES),
      template_code: template(language, name, verb, object),
      description: `${name.replace(/([a-z0-9])([A-Z])/g, '$1 $2')} ${verb} ${object} ${rng.pick(WAYS)}.`,
      confidence_score: rng.round(0.5 + rng.next() * 0.5, 2),
      tags: rng.sample(TAGS, 2 + rng.int(3)),
      context: { framework: rng.pick(['onex', 'fastapi', 'spring', 'nestjs', 'gin']), version: '1.0' },
      discovered_at: new Date(anchor.getTime() - (120 + rng.int(240)) * 86_400_000).toISOString(),
    });
  }
  return rows;
}

/** Samples ranks 0..n-1 with P(rank k) proportional to 1/(k+1)^s, by binary search over the CDF. */
export class Zipf {
  readonly #cdf: Float64Array;

  constructor(n: number, s = 1) {
    this.#cdf = new Float64Array(n);
    let sum = 0;
    for (let k = 0; k < n; k++) this.#cdf[k] = sum += 1 / (k + 1) ** s;
    for (let k = 0; k < n; k++) this.#cdf[k] = (this.#cdf[k] as number) / sum;
  }

  sample(rng: Rng): number {
    const u = rng.next();
    let lo = 0;
    let hi = this.#cdf.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.#cdf[mid] as number) < u) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

/** The usage_data of a record_usage request (wire shape). */
export interface UsageData {
  file_path: string;
  project_id: string;
  success: boolean;
  execution_time_ms: number;
  quality_before: number;
  quality_after: number;
  tags: string[];
  used_at: string;
  error_message?: string;
}

export interface UsageEvent {
  pattern_id: string;
  usage_data: UsageData;
}

export interface UsageOptions {
  seed: number;
  patterns: readonly { id: string }[];
  /** Zipf exponent over the patterns' popularity ranks. */
  skew?: number;
  /** Events spread uniformly over this many days before the anchor. */
  days?: number;
  anchor?: Date;
  /** When set, this share of all events goes to patterns[0] (the "hot" pattern). */
  hotShare?: number;
}

/** An endless, deterministic stream of usage events; popularity ranks are shuffled over the patterns. */
export function* usageEvents(options: UsageOptions): Generator<UsageEvent> {
  const rng = new Rng(options.seed ^ 0x5bd1e995);
  const { patterns } = options;
  const hot = options.hotShare ?? 0;
  const rest = hot > 0 ? patterns.slice(1) : patterns;
  const zipf = new Zipf(rest.length, options.skew ?? 1);
  // Popularity must not follow insertion order, or the hottest patterns would all be the oldest.
  const order = Array.from(rest, (_, i) => i);
  for (let i = order.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [order[i], order[j]] = [order[j] as number, order[i] as number];
  }
  const spanMs = (options.days ?? 90) * 86_400_000;
  const anchor = (options.anchor ?? new Date()).getTime();
  for (let i = 0; ; i++) {
    // Exactly hotShare of every prefix of the stream goes to the hot pattern (1 in 10 for 10%).
    const isHot = hot > 0 && Math.floor((i + 1) * hot) > Math.floor(i * hot);
    const pattern = isHot ? patterns[0] : rest[order[zipf.sample(rng)] as number];
    const before = rng.round(0.3 + rng.next() * 0.5, 2);
    const success = rng.next() < 0.87;
    const data: UsageData = {
      file_path: `/srv/${rng.pick(OBJECTS)}/${rng.pick(VERBS)}_${rng.int(500)}.py`,
      project_id: `project-${rng.int(40)}`,
      success,
      execution_time_ms: rng.round(5 + -Math.log(1 - rng.next()) * 120, 1),
      quality_before: before,
      quality_after: rng.round(
        Math.min(1, Math.max(0, before + (success ? 0.15 : -0.05) + (rng.next() - 0.5) * 0.2)),
        2,
      ),
      tags: rng.sample(TAGS, 1 + rng.int(2)),
      used_at: new Date(anchor - rng.int(spanMs)).toISOString(),
    };
    if (!success) data.error_message = 'timeout while waiting for the database';
    yield { pattern_id: (pattern as { id: string }).id, usage_data: data };
  }
}

export function take<T>(it: Iterator<T>, n: number): T[] {
  const out: T[] = [];
  for (let i = 0; i < n; i++) {
    const r = it.next();
    if (r.done) break;
    out.push(r.value);
  }
  return out;
}

/** Search phrases people would type, some misspelt; drawn from the same vocabulary as the names. */
export function searchQueries(
  seed: number,
  count: number,
): { search_query: string; filters?: { language: string } }[] {
  const rng = new Rng(seed ^ 0x1234567);
  const out: { search_query: string; filters?: { language: string } }[] = [];
  for (let i = 0; i < count; i++) {
    const words: string[] = [rng.pick(QUALIFIERS), rng.pick(SUBJECTS)];
    if (rng.next() < 0.4) words.push(rng.pick(ROLES));
    let q = words.join(' ').toLowerCase();
    if (rng.next() < 0.1) q = q.replace(/([aeiou])/, ''); // a typo: trigram similarity still finds it
    const query: { search_query: string; filters?: { language: string } } = { search_query: q };
    if (rng.next() < 0.5) query.filters = { language: pickLanguage(rng) };
    out.push(query);
  }
  return out;
}
