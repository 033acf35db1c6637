// Bytes to a validated request. Never throws, whatever the input: every failure is a ModelError.
import type { z } from 'zod';
import type { ModelError } from './errors.ts';
import { correlationId } from './fields.ts';
import { requestFingerprint } from './fingerprint.ts';
import { OPERATION_SCHEMAS, type PatternRequest, type RequestFor } from './requests.ts';
import { type RequestTopic } from './topics.ts';
import { TOPIC_SPECS, topicOfOperation, type Operation } from './operations.ts';

export const MAX_JSON_DEPTH = 32;
const MAX_ISSUES = 20;
const utf8 = new TextDecoder('utf-8', { fatal: true });

export type DecodeResult<T> =
  | {
      ok: true;
      request: T;
      /** Of the request as sent (contracts/fingerprint.ts). */
      fingerprint: string;
      /** What the text held (jsonShape), when it was decoded from one: what it takes in memory. */
      elements?: number;
    }
  | {
      ok: false;
      error: ModelError;
      /** The body's correlation_id, when it is one, though the rest is refused: the caller matches the
       * error by it. */
      correlationId?: string | undefined;
    };

/** The refusal of a body that is an object: with its correlation_id, if that is a valid one. */
function refused(raw: Record<string, unknown>, failure: { ok: false; error: ModelError }) {
  const id = correlationId.safeParse(raw.correlation_id);
  return id.success ? { ...failure, correlationId: id.data } : failure;
}

function invalid(message: string, details?: Record<string, unknown>): { ok: false; error: ModelError } {
  return {
    ok: false,
    error: details ? { code: 'VALIDATION_ERROR', message, details } : { code: 'VALIDATION_ERROR', message },
  };
}

function quote(value: string): string {
  return JSON.stringify(value.length > 100 ? `${value.slice(0, 100)}…` : value);
}

/**
 * How much a request may hold: its values and members, counted as opening brackets and commas. Parsed,
 * each costs up to about 64 bytes of heap (an empty object in an array, a key mapping to one), so a 1 MB
 * message of 330,000 empty objects took 21 MB, and four of them, in a fetch of 800 compressed bytes, the
 * worker's whole heap. A batch of 1,000 patterns with 50 tags each holds about 66,000.
 */
export const MAX_JSON_ELEMENTS = 100_000;
/** Heap a parsed request may take per element counted (see MAX_JSON_ELEMENTS), for buffer accounting. */
export const HEAP_BYTES_PER_JSON_ELEMENT = 64;

/** Nesting depth and element count (MAX_JSON_ELEMENTS) of a JSON text, over brackets and commas
 * outside strings; linear, no recursion. */
export function jsonShape(text: string): { depth: number; elements: number } {
  let depth = 0;
  let max = 0;
  let elements = 1;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      depth++;
      elements++;
      if (depth > max) max = depth;
    } else if (c === 0x7d || c === 0x5d) depth--;
    else if (c === 0x2c) elements++;
  }
  return { depth: max, elements };
}

/**
 * The top-level `"correlation_id"` string of a JSON text refused before it is parsed (too deep, too
 * large), so that its caller can still match the error: a scan of the text, nested keys skipped.
 */
function topLevelCorrelationId(text: string): string | undefined {
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      const end = stringEnd(text, i);
      if (depth === 1 && text.slice(i, end + 1) === '"correlation_id"') {
        let j = end + 1;
        while (/\s/.test(text.charAt(j))) j++;
        if (text.charAt(j) !== ':') return undefined;
        j++;
        while (/\s/.test(text.charAt(j))) j++;
        if (text.charAt(j) !== '"') return undefined;
        const value = text.slice(j + 1, stringEnd(text, j));
        const id = correlationId.safeParse(value);
        return id.success ? id.data : undefined;
      }
      i = end;
    } else if (c === 0x7b || c === 0x5b) depth++;
    else if (c === 0x7d || c === 0x5d) depth--;
  }
  return undefined;
}

/** Index of the quote closing the string opened at `start`. */
function stringEnd(text: string, start: number): number {
  let i = start + 1;
  for (; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x5c) i++;
    else if (c === 0x22) break;
  }
  return i;
}

/** Nesting depth of a JSON text (jsonShape). */
export function jsonDepth(text: string): number {
  return jsonShape(text).depth;
}

function pathOf(path: readonly PropertyKey[]): string {
  return path
    .map((p) => (typeof p === 'number' ? `[${p}]` : String(p)))
    .join('.')
    .replace(/\.\[/g, '[');
}

/** Unknown fields named in an error at most; the rest are counted. */
const MAX_UNKNOWN_KEYS_NAMED = 10;

function describeIssue(issue: z.core.$ZodIssue): { path: string; message: string } {
  if (issue.code === 'unrecognized_keys') {
    // Named, but not all: a request of 48,000 unknown keys must not earn an error twice its size.
    const named = issue.keys.slice(0, MAX_UNKNOWN_KEYS_NAMED).map((k) => quote(k));
    const more = issue.keys.length - named.length;
    const keys = named.join(', ') + (more > 0 ? ` and ${more} more` : '');
    const where = pathOf(issue.path);
    return {
      path: where,
      message: `unknown field${issue.keys.length > 1 ? 's' : ''} ${keys}${where ? ` in ${where}` : ''}`,
    };
  }
  const path = pathOf(issue.path);
  const message = /received undefined$/.test(issue.message) ? 'is required' : inOurStyle(issue);
  return { path, message: path ? `${path}: ${message}` : message };
}

const TYPE_NAMES: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  int: 'an integer',
  boolean: 'true or false',
  object: 'a JSON object',
  array: 'an array',
  null: 'null',
};

/**
 * The project's phrasing ("must be at most 50") for the issues zod words itself ("Too big: expected
 * number to be <=50"); our own messages, which start in lower case, pass through as they are.
 */
function inOurStyle(issue: z.core.$ZodIssue): string {
  if (!/^[A-Z]/.test(issue.message)) return issue.message;
  switch (issue.code) {
    case 'invalid_type':
      return `must be ${TYPE_NAMES[issue.expected] ?? issue.expected}`;
    case 'too_big':
    case 'too_small': {
      const bound = issue.code === 'too_big' ? 'at most' : 'at least';
      const limit = String(issue.code === 'too_big' ? issue.maximum : issue.minimum);
      if (issue.origin === 'string') return `must be ${bound} ${limit} characters`;
      if (issue.origin === 'array' || issue.origin === 'set') return `must have ${bound} ${limit} items`;
      return `must be ${bound} ${limit}`;
    }
    case 'invalid_value':
      return `must be ${issue.values.length === 1 ? JSON.stringify(issue.values[0]) : `one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`}`;
    case 'invalid_format':
      return `must be a valid ${issue.format}`;
    default:
      return issue.message.charAt(0).toLowerCase() + issue.message.slice(1);
  }
}

export function formatZodError(error: z.ZodError): ModelError {
  const issues = error.issues.slice(0, MAX_ISSUES).map(describeIssue);
  return { code: 'VALIDATION_ERROR', message: issues[0]?.message ?? 'invalid request', details: { issues } };
}

/** Validates an already-parsed value as a request for `topic`. */
export function validateRequest<T extends RequestTopic>(
  topic: T,
  value: unknown,
): DecodeResult<RequestFor<T>> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return invalid(
      `the message must be a JSON object, not ${value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value}`,
    );
  }
  const spec = TOPIC_SPECS[topic];
  const raw = value as Record<string, unknown>;
  const operation = raw.operation ?? spec.operations[0];
  if (typeof operation !== 'string') return refused(raw, invalid('operation: must be a string'));
  if (!(spec.operations as readonly string[]).includes(operation)) {
    const home = topicOfOperation(operation);
    if (home)
      return refused(
        raw,
        invalid(`operation ${quote(operation)} belongs to topic ${home}, not ${topic}`, {
          operation,
          topic: home,
        }),
      );
    return refused(
      raw,
      invalid(`unknown operation ${quote(operation)}; ${topic} accepts ${spec.operations.join(', ')}`, {
        operation,
      }),
    );
  }
  const schema = OPERATION_SCHEMAS[operation as Operation];
  const parsed = schema.safeParse({ ...raw, operation });
  if (!parsed.success) return refused(raw, { ok: false, error: formatZodError(parsed.error) });
  return {
    ok: true,
    request: parsed.data as RequestFor<T>,
    fingerprint: requestFingerprint({ ...raw, operation }),
  };
}

/** Decodes a Kafka message value for `topic`: size, UTF-8, JSON, depth, then the schema. */
export function decodeRequest<T extends RequestTopic>(
  topic: T,
  value: Buffer | null | undefined,
  options: { maxBytes: number },
): DecodeResult<RequestFor<T>> {
  if (value === null || value === undefined || value.length === 0) {
    return invalid('message value is empty (a tombstone or an empty record is not a request)');
  }
  if (value.length > options.maxBytes) {
    return {
      ok: false,
      error: {
        code: 'PAYLOAD_TOO_LARGE',
        message: `message value is ${value.length} bytes; the limit is ${options.maxBytes}`,
        details: { size: value.length, limit: options.maxBytes },
      },
    };
  }
  let text: string;
  try {
    text = utf8.decode(value);
  } catch {
    return invalid('message value is not valid UTF-8');
  }
  const { depth, elements } = jsonShape(text);
  const unparsed = (failure: { ok: false; error: ModelError }) => {
    const id = topLevelCorrelationId(text);
    return id === undefined ? failure : { ...failure, correlationId: id };
  };
  if (depth > MAX_JSON_DEPTH)
    return unparsed(invalid(`JSON is nested ${depth} levels deep; at most ${MAX_JSON_DEPTH} are accepted`));
  if (elements > MAX_JSON_ELEMENTS)
    return unparsed(
      invalid(
        `JSON holds ${elements} values and members (counted as opening brackets and commas); at most ` +
          `${MAX_JSON_ELEMENTS} are accepted: send less context, or split a batch`,
        { elements, max_elements: MAX_JSON_ELEMENTS },
      ),
    );
  let parsed: unknown;
  let inexact: { key: string; source: string; value: number } | undefined;
  try {
    // Only a text with a number that may not survive as a double is read number by number (rare: a
    // reviver costs about 5 µs more per usage event).
    parsed = MAYBE_INEXACT.test(text)
      ? JSON.parse(text, function (key: string, value: unknown, context?: { source?: string }) {
          if (typeof value === 'number' && context?.source !== undefined && inexact === undefined) {
            if (!sameNumber(context.source, value)) inexact = { key, source: context.source, value };
          }
          return value;
        })
      : JSON.parse(text);
  } catch (err) {
    return invalid(
      `message value is not valid JSON: ${err instanceof Error ? err.message.slice(0, 200) : 'parse error'}`,
    );
  }
  if (inexact) {
    const place = placeOf(parsed, inexact.value, inexact.key);
    const field = place ? pathOf(place) : inexact.key;
    const refusal = invalid(
      `${field}: the number ${inexact.source.slice(0, 40)} cannot be kept as sent (it would ` +
        `be ${JSON.stringify(inexact.value)}): numbers are read as 64-bit floating point (15 significant ` +
        'digits are always kept; magnitudes above about 1.8e308 or below 5e-324 are not); send such a ' +
        'number as a string',
      { field, number: inexact.source.slice(0, 40) },
    );
    return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)
      ? refused(parsed as Record<string, unknown>, refusal)
      : refusal;
  }
  const validated = validateRequest(topic, parsed);
  return validated.ok ? { ...validated, elements } : validated;
}

/** Where the first `key` holding `value` is (the reviver that found it knows its key, not its place). */
function placeOf(root: unknown, value: number, key: string): PropertyKey[] | undefined {
  const stack: { node: unknown; path: PropertyKey[] }[] = [{ node: root, path: [] }];
  while (stack.length > 0) {
    const { node, path } = stack.pop() as { node: unknown; path: PropertyKey[] };
    if (typeof node !== 'object' || node === null) continue;
    const children = Object.entries(node).map(([k, v]) => ({
      node: v as unknown,
      path: [...path, Array.isArray(node) ? Number(k) : k],
    }));
    const found = children.find((c) => c.path.at(-1)?.toString() === key && Object.is(c.node, value));
    if (found) return found.path;
    stack.push(...children.reverse());
  }
  return undefined;
}

// A number (after a colon, bracket or comma: not inside a UUID like "1e234567-...") of 16 digits or more,
// or with a three-digit exponent. 46% of usage events matched the first version, which looked anywhere.
const MAYBE_INEXACT = /[:[,]\s*-?(?:\d\.?){16}|[:[,]\s*-?[\d.]+[eE][+-]?\d{3}/;

/** Whether the JSON number `source` and the double it was read as are the same number. */
function sameNumber(source: string, value: number): boolean {
  const written = JSON.stringify(value);
  if (written === 'null') return false;
  return decimal(source) === decimal(written);
}

/** A JSON number's exact value in one spelling: sign, significant digits, exponent. */
function decimal(number: string): string {
  const m = /^(-?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/.exec(number);
  if (!m) return number;
  const fraction = m[3] ?? '';
  let digits = ((m[2] ?? '') + fraction).replace(/^0+/, '');
  if (digits === '') return '0';
  let exponent = Number(m[4] ?? 0) - fraction.length;
  const trimmed = digits.replace(/0+$/, '');
  exponent += digits.length - trimmed.length;
  digits = trimmed;
  return `${m[1]}${digits}e${exponent}`;
}

export type { PatternRequest };
