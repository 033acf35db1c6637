// Field schemas shared by the request schemas (CONTRACT "Request"). Every object is strict: an unknown
// key is a validation error that names it.
import { z } from 'zod';
import { MAX_HEADER_ID_BYTES } from './headers.ts';
import { MAX_TIME_MS } from './time.ts';

/** 0001-01-01T00:00:00Z (Date.UTC reads years below 100 as 19xx). */
const EARLIEST_INSTANT_MS = -62_135_596_800_000;

// UUIDs compare case-insensitively; every id that enters is lower-cased so that SQL, identities and
// results agree. The body correlation_id is echoed as sent, so it is only checked.
export const uuid = z.uuid({ error: 'must be a UUID' }).overwrite((v) => v.toLowerCase());
export const correlationId = z.uuid({ error: 'must be a UUID' });

/** C0 controls and DEL; PostgreSQL cannot store NUL at all. Free text may keep tab and line breaks. */
/* eslint-disable no-control-regex -- matching control characters is the point */
const CONTROL = /[\u0000-\u001f\u007f]/;
const CONTROL_IN_TEXT = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/;
/* eslint-enable no-control-regex */
/** An offset or Z names the instant; a naive date-time (Python's `datetime.utcnow().isoformat()`, what the
 * seed's own callers sent) is read as UTC, and a Z is appended so every later reader sees the same instant. */
export const isoDateTime = z.iso
  .datetime({
    offset: true,
    local: true,
    error: 'must be an ISO-8601 date-time (naive ones are read as UTC)',
  })
  .overwrite((v) => (/(Z|[+-]\d{2}(:?\d{2})?)$/i.test(v) ? v : `${v}Z`))
  // What PostgreSQL's timestamptz reads: no year 0, UTC offsets up to 15:59 (every real zone is within 14:00).
  .refine((v) => !v.startsWith('0000'), 'must not be in year 0000 (the earliest is 0001-01-01)')
  .refine((v) => {
    const offset = /([+-])(\d{2}):(\d{2})$/.exec(v);
    return !offset || Number(offset[2]) * 60 + Number(offset[3]) <= 15 * 60 + 59;
  }, 'must have a UTC offset between -15:59 and +15:59')
  // An offset can carry an instant out of the four-digit years (9999-12-31T23:59-15:59 is in 10000, which
  // every reader would show as +010000; 0001-01-01T00:00+15:59 is BC, which dates would show as AD).
  .refine((v) => {
    const ms = Date.parse(v);
    return ms >= EARLIEST_INSTANT_MS && ms <= MAX_TIME_MS;
  }, 'must be an instant from 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999Z, its UTC offset applied');
/** A period's bound: kept to the millisecond, as the period is computed and stored (two bounds a
 * microsecond apart were refused as "period_end: must be after period_start", while PostgreSQL compared
 * the events against the microseconds). */
export const periodDateTime = isoDateTime.overwrite((v) => v.replace(/(\.\d{3})\d+/, '$1'));
export const score = z.number().min(0, 'must be between 0 and 1').max(1, 'must be between 0 and 1');
// A lone UTF-16 surrogate is text JSON can carry and PostgreSQL cannot store (a text column would keep
// U+FFFD instead, jsonb refuses it).
const WELL_FORMED = 'must be valid Unicode (it holds a lone surrogate, \\ud800-\\udfff without its pair)';

export const text = (max: number) =>
  z
    .string()
    .max(max, `must be at most ${max} characters`)
    .refine((v) => v.isWellFormed(), WELL_FORMED)
    .refine(
      (v) => !CONTROL_IN_TEXT.test(v),
      'must not contain control characters (tab and line breaks are fine)',
    );
export const name = (max: number) =>
  z
    .string()
    .min(1, 'must not be empty')
    .max(max, `must be at most ${max} characters`)
    .refine((v) => v.trim().length > 0, 'must not be blank')
    .refine((v) => !CONTROL.test(v), 'must not contain control characters')
    .refine((v) => v.isWellFormed(), WELL_FORMED);
const tags = z.array(name(100)).max(50, 'at most 50 tags');

/** The first string (a key or a value) of a JSON value that jsonb cannot store, where it is and why. */
function unstorableString(
  value: unknown,
  path: PropertyKey[] = [],
): { path: PropertyKey[]; why: string } | undefined {
  const judge = (v: string, at: PropertyKey[]) =>
    v.includes('\0')
      ? { path: at, why: 'must not contain NUL characters (\\u0000)' }
      : v.isWellFormed()
        ? undefined
        : { path: at, why: WELL_FORMED };
  if (typeof value === 'string') return judge(value, path);
  if (typeof value !== 'object' || value === null) return undefined;
  const isArray = Array.isArray(value);
  for (const [key, v] of Object.entries(value)) {
    const at = [...path, isArray ? Number(key) : key];
    const found = (isArray ? undefined : judge(key, at)) ?? unstorableString(v, at);
    if (found) return found;
  }
  return undefined;
}

const jsonObject = z
  .preprocess(
    (v, ctx) => {
      // The record below would drop it without a word (it sets the prototype instead).
      if (typeof v === 'object' && v !== null && Object.hasOwn(v, '__proto__'))
        ctx.issues.push({
          code: 'custom',
          input: v,
          path: ['__proto__'],
          message: 'is a key that cannot be kept',
        });
      return v;
    },
    z.record(z.string(), z.unknown(), { error: 'must be a JSON object' }),
  )
  // jsonb refuses NUL and lone surrogates in any string (SQLSTATE 22P05): say so here, naming the field.
  .superRefine((v, ctx) => {
    const found = unstorableString(v);
    if (found) ctx.addIssue({ code: 'custom', path: found.path, message: found.why });
  });

export const limit = z
  .int('must be an integer')
  .min(1, 'must be at least 1')
  .max(1000, 'must be at most 1000')
  .default(10);
/** The deepest page a list reads: every result before it is ranked or sorted first. On 100,000 patterns a
 * search of one common word took 0.4 s at offset 0, 1.5 s at 10,000 and 4.3 s at 1,000,000 (the bound
 * before). 10,000 is the window Elasticsearch allows too. */
export const MAX_OFFSET = 10_000;
export const offset = z
  .int('must be an integer')
  .min(0, 'must not be negative')
  .max(
    MAX_OFFSET,
    `must be at most ${MAX_OFFSET}: a deeper page ranks or sorts every result before it; narrow the ` +
      'query or the filters instead',
  )
  .default(0);

export const filters = z.strictObject({
  language: name(50).nullish(),
  pattern_type: name(100).nullish(),
  category: name(100).nullish(),
  tags: z.array(name(100)).max(20, 'at most 20 tags').nullish(),
  min_confidence_score: score.nullish(),
  min_success_rate: score.nullish(),
  include_deprecated: z.boolean().nullish(),
});
export type Filters = z.infer<typeof filters>;

// The pattern columns a request may set; SQL for insert and update is built only from this list.
const editableShape = {
  pattern_name: name(255),
  pattern_type: name(100),
  language: name(50),
  category: text(100).nullish(),
  template_code: text(100_000).nullish(),
  description: text(10_000).nullish(),
  example_usage: text(20_000).nullish(),
  source: text(1_000).nullish(),
  confidence_score: score.nullish(),
  complexity_score: score.nullish(),
  maintainability_score: score.nullish(),
  performance_score: score.nullish(),
  parent_pattern_id: uuid.nullish(),
  is_deprecated: z.boolean().nullish(),
  deprecated_by_id: uuid.nullish(),
  created_by: text(255).nullish(),
  tags: tags.nullish(),
  context: jsonObject.nullish(),
};

export const EDITABLE_COLUMNS = Object.keys(editableShape) as readonly (keyof typeof editableShape)[];
export type EditableColumn = (typeof EDITABLE_COLUMNS)[number];

export const insertData = z.strictObject({
  ...editableShape,
  pattern_id: uuid.nullish(),
  /** The caller's event time; defaults to the message timestamp. */
  discovered_at: isoDateTime.nullish(),
});
export type InsertData = z.infer<typeof insertData>;

// Columns that cannot be NULL: an update may leave them out, not set them to null.
const updateShape = {
  ...editableShape,
  tags: tags.optional(),
  context: jsonObject.optional(),
  is_deprecated: z.boolean({ error: 'must be true or false (leave it out to keep it)' }).optional(),
};

export const updateData = z
  .strictObject(updateShape)
  .partial()
  .refine((d) => Object.values(d).some((v) => v !== undefined), { error: 'must set at least one field' });
export type UpdateData = z.infer<typeof updateData>;

export const usageData = z.strictObject({
  file_path: text(4_096).nullish(),
  project_id: text(255).nullish(),
  /** The seed's default: a use reported without an outcome counts as a success. */
  success: z.boolean({ error: 'must be true or false (leave it out for true)' }).default(true),
  execution_time_ms: z
    .number()
    .min(0, 'must not be negative')
    .max(86_400_000, 'must be at most 86400000 (one day)')
    .nullish(),
  error_message: text(10_000).nullish(),
  quality_before: score.nullish(),
  quality_after: score.nullish(),
  tags: tags.nullish(),
  context: jsonObject.nullish(),
  used_at: isoDateTime.nullish(),
});
export type UsageData = z.infer<typeof usageData>;

export const RELATIONSHIP_TYPES = [
  'similar',
  'extends',
  'conflicts',
  'requires',
  'replaces',
  'complements',
  'uses',
] as const;

const relationshipShape = {
  source_pattern_id: uuid,
  target_pattern_id: uuid,
  relationship_type: z.enum(RELATIONSHIP_TYPES, { error: `must be one of ${RELATIONSHIP_TYPES.join(', ')}` }),
  strength: score.nullish(),
  description: text(10_000).nullish(),
  context: jsonObject.nullish(),
};
const notSelf = (r: { source_pattern_id: string; target_pattern_id: string }) =>
  r.source_pattern_id.toLowerCase() !== r.target_pattern_id.toLowerCase();

export const relationshipData = z
  .strictObject(relationshipShape)
  .refine(notSelf, { error: 'must differ from source_pattern_id', path: ['target_pattern_id'] });
export type RelationshipData = z.infer<typeof relationshipData>;

export const relationshipUpdateData = z
  .strictObject(relationshipShape)
  .refine(notSelf, { error: 'must differ from source_pattern_id', path: ['target_pattern_id'] })
  .refine((r) => r.strength != null || r.description != null || r.context != null, {
    error: 'must set at least one of strength, description, context',
  });

/** The longest identity: hdr: and the base64 of the longest kafka_correlationId accepted (1,372). */
const MAX_IDENTITY_CHARS = 4 + 4 * Math.ceil(MAX_HEADER_ID_BYTES / 3);

/** The identity a message was recorded under (contracts/identity.ts): cid:, hdr: or off:. */
export const messageIdentity = z
  .string()
  .max(MAX_IDENTITY_CHARS, `must be at most ${MAX_IDENTITY_CHARS} characters`)
  .regex(
    /^(cid|hdr|off):./,
    'must be a message identity: cid:<uuid>, hdr:<base64> or off:<topic>/<partition>/<offset>[@<timestamp> or #<fingerprint>]',
  )
  .refine((v) => !CONTROL.test(v), 'must not contain control characters')
  // Stored in lower case (a correlation id is a UUID, compared case-insensitively).
  .overwrite((v) => (v.startsWith('cid:') ? `cid:${v.slice(4).toLowerCase()}` : v));

/** get_related: the seed returned the pattern's outgoing relationships; incoming ones on request. */
export const RELATED_DIRECTIONS = ['outgoing', 'incoming', 'both'] as const;
export const relatedDirection = z
  .enum(RELATED_DIRECTIONS, { error: `must be one of ${RELATED_DIRECTIONS.join(', ')}` })
  .default('outgoing');

/** Analytics reads across all patterns: the oldest cached answer the caller accepts (0: computed now). */
export const maxAgeMs = z
  .int('must be an integer')
  .min(0, 'must not be negative')
  .max(86_400_000, 'must be at most 86400000')
  .describe(
    'global reads (no pattern_id): the oldest cached answer accepted, in ms; 0 computes it now. Cached answers are never older than ANALYTICS_RESULT_MAX_AGE_MS; metadata.as_of says when an answer was read',
  );

export const aggregateBy = z
  .enum(['day', 'week', 'month'], { error: 'must be day, week or month' })
  .default('day');
