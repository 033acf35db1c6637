// What a request touches, derived from the request itself (not from its Kafka key), and the locks that
// keep two messages touching the same thing in order while others run at once. Replay runs every write
// under these locks in its merged order; the live worker orders a partition's writes by the same keys
// (stages/prepare.ts). Pure: no I/O.
import { isWriteOperation } from '../../contracts/operations.ts';
import type { PatternRequest } from '../../contracts/requests.ts';
import { derivedPatternId } from '../../nodes/ids.ts';

/**
 * Locks a message holds: `p:<pattern id>`, `n:<language>\0<name>` (the unique name), `i:<identity>`
 * (a reused correlation id is answered by the first), a class lock `n:*` (every name: a delete or a
 * rename frees a name nobody can see in the request), or `*` (everything: global analytics).
 */
export type Locks = readonly string[];

export const ALL = '*';
const NAMES = 'n:*';

const pattern = (id: string) => `p:${id.toLowerCase()}`;
const name = (language: string, patternName: string) => `n:${language}\u0000${patternName}`;

interface InsertLike {
  pattern_id?: string | null | undefined;
  pattern_name?: string | null | undefined;
  language?: string | null | undefined;
  parent_pattern_id?: string | null | undefined;
  deprecated_by_id?: string | null | undefined;
}

function insertLocks(data: InsertLike, identity: string, index: number, out: string[]): void {
  out.push(pattern(data.pattern_id ?? derivedPatternId(identity, index)));
  if (data.pattern_name && data.language) out.push(name(data.language, data.pattern_name));
  if (data.parent_pattern_id) out.push(pattern(data.parent_pattern_id));
  if (data.deprecated_by_id) out.push(pattern(data.deprecated_by_id));
}

/** The patterns (and names) a write touches; [] for a read, which touches nothing. */
export function touchedBy(request: PatternRequest, identity: string): Locks {
  if (!isWriteOperation(request.operation)) return [];
  const out: string[] = [`i:${identity}`];
  const r = request as PatternRequest & Record<string, unknown>;
  switch (request.operation) {
    case 'insert':
      insertLocks(r.data as InsertLike, identity, 0, out);
      break;
    case 'batch_insert':
      (r.patterns as InsertLike[]).forEach((data, i) => insertLocks(data, identity, i, out));
      break;
    case 'update': {
      out.push(pattern(r.pattern_id as string));
      const data = r.data as InsertLike;
      if (data.parent_pattern_id) out.push(pattern(data.parent_pattern_id));
      if (data.deprecated_by_id) out.push(pattern(data.deprecated_by_id));
      // A rename frees its old name, which the request does not say.
      if (data.pattern_name !== undefined || data.language !== undefined) out.push(NAMES);
      break;
    }
    case 'delete':
      // Its relationships are keyed by both their patterns, so they conflict through p:<id>.
      out.push(pattern(r.pattern_id as string), NAMES);
      break;
    case 'create_relationship':
    case 'update_relationship': {
      const rel = r.relationship_data as { source_pattern_id: string; target_pattern_id: string };
      out.push(pattern(rel.source_pattern_id), pattern(rel.target_pattern_id));
      break;
    }
    case 'compute_analytics':
      out.push(typeof r.pattern_id === 'string' ? pattern(r.pattern_id) : ALL);
      break;
    default:
      if (typeof r.pattern_id === 'string') out.push(pattern(r.pattern_id));
      else out.push(ALL);
  }
  return out;
}

/** The pattern ids among some locks (for tests and the live worker's keys). */
export const patternLocks = (locks: Locks): string[] => locks.filter((l) => l.startsWith('p:'));

const classOf = (lock: string) => lock.slice(0, lock.indexOf(':') + 1);

/** A multiset of held locks that answers whether new ones conflict, class locks and `*` included. */
export class LockSet {
  readonly #keys = new Map<string, number>();
  /** Per class (`n:`), how many keys of it are held, and how many class locks. */
  readonly #classKeys = new Map<string, number>();
  readonly #classLocks = new Map<string, number>();
  #all = 0;
  #size = 0;

  get empty(): boolean {
    return this.#size === 0;
  }

  conflicts(locks: Locks): boolean {
    if (this.#all > 0) return !this.empty && locks.length > 0;
    for (const lock of locks) {
      if (lock === ALL) {
        if (!this.empty) return true;
        continue;
      }
      const cls = classOf(lock);
      if (lock.endsWith(':*')) {
        if ((this.#classKeys.get(cls) ?? 0) > 0 || (this.#classLocks.get(cls) ?? 0) > 0) return true;
      } else if (this.#keys.has(lock) || (this.#classLocks.get(cls) ?? 0) > 0) return true;
    }
    return false;
  }

  add(locks: Locks): void {
    for (const lock of locks) this.#change(lock, 1);
  }

  remove(locks: Locks): void {
    for (const lock of locks) this.#change(lock, -1);
  }

  #change(lock: string, by: 1 | -1): void {
    this.#size += by;
    if (lock === ALL) {
      this.#all += by;
      return;
    }
    const cls = classOf(lock);
    const bump = (map: Map<string, number>, key: string) => {
      const n = (map.get(key) ?? 0) + by;
      if (n > 0) map.set(key, n);
      else map.delete(key);
    };
    if (lock.endsWith(':*')) bump(this.#classLocks, cls);
    else {
      bump(this.#keys, lock);
      bump(this.#classKeys, cls);
    }
  }
}
