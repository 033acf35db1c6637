// Exactly-once, in one place (CONTRACT "Identity and effects"): the processed_messages record of every
// applied write, claimed in the transaction of its effect, for one message or a batch. Duplicates are
// answered with the stored outcome, and an identity reused for another request gets CONFLICT, here
// and nowhere else. get_result reads the same records.
import { EffectError, RetryableError, type ModelError } from '../contracts/errors.ts';
import type { MessageSource, ResultMetadata } from '../contracts/results.ts';
import type { PoolClient } from '../db/pool.ts';

/** What the identity record holds: the outcome without timing. */
export interface StoredOutcome {
  success: boolean;
  data: unknown;
  error: ModelError | null;
  /** Set once the body was pruned past WORKER_RESULT_RETENTION: `data` holds only the ids. */
  pruned?: boolean;
}

/** The metadata a repeat of an applied identity is answered with. */
export function duplicateMetadata(stored: StoredOutcome): Partial<ResultMetadata> {
  return stored.pruned ? { duplicate: true, result_pruned: true } : { duplicate: true };
}

export interface Claim {
  identity: string;
  topic: string;
  operation: string;
  source?: MessageSource | undefined;
  /** Of the request as sent (contracts/fingerprint.ts). */
  fingerprint?: string | undefined;
}

interface StoredRow {
  identity: string;
  topic: string;
  operation: string;
  result: StoredOutcome;
  fingerprint: string | null;
  /** Kafka timestamp (ms, decimal) of the message whose own coordinates the identity names; see below. */
  source_timestamp: string | null;
}

// As text: the pool reads bigint as a JS number, which would round a (hostile) timestamp past 2^53.
const STORED_COLUMNS =
  'identity, topic, operation, result, fingerprint, source_timestamp::text AS source_timestamp';
const KAFKA_TIMESTAMP = /^-?\d{1,19}$/;
const INT64 = 2n ** 63n;

/**
 * What tells messages known by the same coordinates apart (an identity `off:<topic>/<partition>/<offset>`,
 * from a message without a correlation id). For any other identity: no timestamp, not a redrive.
 */
interface Coordinated {
  /**
   * Its Kafka timestamp, when the identity names the message's own coordinates: the same on every delivery
   * of it, another for the message at those coordinates of a topic since deleted and created again.
   */
  timestamp: string | undefined;
  /** The identity names another message's coordinates (pattern-redrive-of): this is a redrive of it. */
  redrive: boolean;
}

function coordinated(identity: string | undefined, source: MessageSource | undefined): Coordinated {
  if (identity === undefined || !identity.startsWith('off:') || source === undefined) {
    return { timestamp: undefined, redrive: false };
  }
  if (identity !== `off:${source.topic}/${source.partition}/${source.offset}`) {
    return { timestamp: undefined, redrive: true };
  }
  const timestamp = source.timestamp;
  if (timestamp === undefined || !KAFKA_TIMESTAMP.test(timestamp))
    return { timestamp: undefined, redrive: false };
  const value = BigInt(timestamp);
  return { timestamp: value < -INT64 || value >= INT64 ? undefined : value.toString(), redrive: false };
}

/**
 * The identity a message takes when another message holds the one it was given, or undefined when the
 * holder is this message (or its request, sent again). Two cases, both messages known by coordinates:
 * - the message at those coordinates of a topic since deleted and created again (another timestamp):
 *   `off:<t>/<p>/<o>@<timestamp>`. Records without a timestamp (before migration 025) match any.
 * - a redrive of a message whose identity another redrive holds with another request: anyone may write
 *   pattern-redrive-of, and a forged one applied first made the real redrive a CONFLICT for good:
 *   `off:<t>/<p>/<o>#<fingerprint>`. The same request redriven again is still applied once.
 */
function secondIdentity(
  identity: string,
  holder: Pick<StoredRow, 'source_timestamp' | 'topic' | 'operation' | 'fingerprint'>,
  message: Coordinated,
  request: { topic: string; operation: string; fingerprint?: string | undefined },
): string | undefined {
  const timestamp = message.timestamp;
  if (timestamp !== undefined && holder.source_timestamp !== null && holder.source_timestamp !== timestamp) {
    return `${identity}@${timestamp}`;
  }
  if (message.redrive && request.fingerprint !== undefined && reuseError(identity, holder, request)) {
    return `${identity}#${request.fingerprint}`;
  }
  return undefined;
}

/**
 * Why a message may not reuse a stored identity: another operation, or the same correlation id with a
 * different request (a client bug that would otherwise lose the second write without a word).
 */
function reuseError(
  identity: string,
  stored: { topic: string; operation: string; fingerprint: string | null },
  incoming: { topic: string; operation: string; fingerprint?: string | undefined },
): { message: string; details: Record<string, unknown> } | undefined {
  if (stored.topic !== incoming.topic || stored.operation !== incoming.operation) {
    return {
      message:
        `this message identity was already applied as operation "${stored.operation}" on ${stored.topic}; ` +
        'use a fresh correlation_id for every request',
      details: { identity, reason: 'identity_reused_for_other_operation' },
    };
  }
  if (stored.fingerprint && incoming.fingerprint && stored.fingerprint !== incoming.fingerprint) {
    return {
      message:
        'this correlation id was already used for a different request; the first one was applied and this ' +
        'one was not: use a fresh correlation_id for every request (the same one only to retry the same request)',
      details: { identity, reason: 'correlation_id_reused' },
    };
  }
  return undefined;
}

function conflict(reason: { message: string; details: Record<string, unknown> }): StoredOutcome {
  return {
    success: false,
    data: null,
    error: { code: 'CONFLICT', message: reason.message, details: reason.details },
  };
}

/** What a claim settled: the identity the message is applied under, and its stored outcome if a repeat. */
export interface Claimed {
  identity: string;
  /** The outcome recorded before: this message is a duplicate. */
  stored: StoredOutcome | undefined;
}

/**
 * Claims one identity inside the transaction. Answers with the stored outcome when it was applied before
 * (a duplicate), throws CONFLICT when it was applied for another request. A concurrent claim of the same
 * identity waits for the other transaction and then sees its outcome. A message at the coordinates of one
 * recorded before with another timestamp, or a redrive of another request, claims its second identity
 * instead (`secondIdentity`): use the identity answered, not the one asked, for everything the effect
 * derives from it.
 */
export async function claimIdentity(client: PoolClient, claim: Claim): Promise<Claimed> {
  const message = coordinated(claim.identity, claim.source);
  const timestamp = message.timestamp;
  const stored = await insertOrRead(client, claim, claim.identity, timestamp);
  if (stored === undefined) return { identity: claim.identity, stored: undefined };
  const second = secondIdentity(claim.identity, stored, message, claim);
  if (second === undefined) return { identity: claim.identity, stored: answerRepeat(stored, claim) };
  const storedSecond = await insertOrRead(client, claim, second, timestamp);
  return { identity: second, stored: storedSecond && answerRepeat(storedSecond, claim) };
}

/** Inserts the record of `identity`, or reads the one already there. */
async function insertOrRead(
  client: PoolClient,
  claim: Claim,
  identity: string,
  timestamp: string | undefined,
): Promise<StoredRow | undefined> {
  const claimed = await client.query(
    `INSERT INTO processed_messages
            (identity, topic, operation, source_partition, source_offset, result, fingerprint, source_timestamp)
     VALUES ($1, $2, $3, $4, $5, '{}'::json, $6, $7)
     ON CONFLICT (identity) DO NOTHING`,
    [
      identity,
      claim.topic,
      claim.operation,
      claim.source?.partition ?? null,
      claim.source?.offset ?? null,
      claim.fingerprint ?? null,
      timestamp ?? null,
    ],
  );
  if (claimed.rowCount === 1) return undefined;
  const { rows } = await client.query<StoredRow>(
    `SELECT ${STORED_COLUMNS} FROM processed_messages WHERE identity = $1`,
    [identity],
  );
  const stored = rows[0];
  if (!stored) throw new RetryableError('identity record vanished during claim');
  return stored;
}

/** The stored outcome a repeat is answered with; CONFLICT when the identity was another request's. */
function answerRepeat(stored: StoredRow, claim: Claim): StoredOutcome {
  const reused = reuseError(stored.identity, stored, claim);
  if (reused) throw new EffectError('CONFLICT', reused.message, reused.details);
  return stored.result;
}

/** Records the outcome of a claimed identity, in the same transaction as its effect. */
export async function storeOutcome(
  client: PoolClient,
  identity: string,
  outcome: StoredOutcome,
): Promise<void> {
  await client.query('UPDATE processed_messages SET result = $2 WHERE identity = $1', [identity, outcome]);
}

/**
 * A batch whose outcomes depend on which of its messages get recorded (two holding one identity with
 * different requests or timestamps): apply its messages one at a time instead. Rare: a client reusing a
 * correlation id, a forged redrive beside the real one.
 */
export class ApplyOneByOne extends Error {
  constructor() {
    super('a batch holds one identity twice with different requests; applying it one message at a time');
    this.name = 'ApplyOneByOne';
  }
}

/** One item of a batch: its identity, if it has one, and what it would be recorded with. */
export interface BatchItem {
  identity?: string | undefined;
  fingerprint?: string | undefined;
  source?: MessageSource | undefined;
}

export interface BatchAnswer {
  outcome: StoredOutcome;
  duplicate: boolean;
}

/**
 * Exactly-once for many messages of one operation in one transaction: `resolve` answers the identities
 * applied before, `pending` says which items to apply, `identity` what each is applied under (a message at
 * the coordinates of another recorded before takes its second identity, as in claimIdentity), `record`
 * claims the identities of what was applied (a concurrent claim rolls the batch back as retryable), and
 * `answers` fills in repeats of an identity within the batch.
 */
export class IdentityBatch {
  readonly #topic: string;
  readonly #operation: string;
  readonly #items: readonly BatchItem[];
  /** Each item's identity: its own until `resolve` gives it a second one. */
  readonly #identities: (string | undefined)[];
  readonly #coordinated: Coordinated[];
  /** The first item holding each identity; later ones repeat it. */
  #first = new Map<string, number>();
  readonly #answers: (BatchAnswer | undefined)[];
  /** The records of identities applied before this batch. */
  readonly #known = new Map<string, StoredRow>();

  constructor(topic: string, operation: string, items: readonly BatchItem[]) {
    this.#topic = topic;
    this.#operation = operation;
    this.#items = items;
    this.#identities = items.map((item) => item.identity);
    this.#coordinated = items.map((item) => coordinated(item.identity, item.source));
    this.#answers = Array.from({ length: items.length });
    this.#indexHolders();
  }

  #indexHolders(): void {
    this.#first = new Map();
    this.#identities.forEach((identity, i) => {
      if (identity !== undefined && !this.#first.has(identity)) this.#first.set(identity, i);
    });
  }

  /** The identity item `index` is applied under. */
  identity(index: number): string | undefined {
    return this.#identities[index];
  }

  async #load(client: PoolClient, identities: readonly string[]): Promise<StoredRow[]> {
    if (identities.length === 0) return [];
    const { rows } = await client.query<StoredRow>(
      `SELECT ${STORED_COLUMNS} FROM processed_messages WHERE identity = ANY($1)`,
      [identities],
    );
    return rows;
  }

  /**
   * Loads the identities applied before: their first holders answer with the stored outcome (or CONFLICT).
   * A message that a record holds its identity from takes its second identity first, as it would alone.
   * Throws ApplyOneByOne where an earlier item of the batch holds an item's identity with another request
   * or at another timestamp: whether that one is recorded is known only once it ran, so such a batch is
   * applied one message at a time, as a replay that batches otherwise would apply it.
   */
  async resolve(client: PoolClient): Promise<void> {
    let rows = await this.#load(client, [...this.#first.keys()]);
    const stored = new Map(rows.map((row) => [row.identity, row]));
    const seconds: string[] = [];
    this.#identities.forEach((identity, i) => {
      const record = identity === undefined ? undefined : stored.get(identity);
      if (identity === undefined || !record) return;
      const second = secondIdentity(identity, record, this.#coordinated[i] as Coordinated, this.#request(i));
      if (second === undefined) return;
      this.#identities[i] = second;
      seconds.push(second);
    });
    if (seconds.length > 0) {
      this.#indexHolders();
      rows = [...rows.filter((row) => this.#first.has(row.identity)), ...(await this.#load(client, seconds))];
    }
    // Identities as final (second ones included: two messages given one second identity with different
    // requests, found by the property test) that no record holds and an earlier item holds otherwise.
    const recorded = new Set(rows.map((row) => row.identity));
    this.#identities.forEach((identity, i) => {
      if (identity === undefined || recorded.has(identity)) return;
      const holder = this.#heldInBatch(identity, i);
      const request = this.#request(i);
      const message = this.#coordinated[i] as Coordinated;
      if (
        holder &&
        (secondIdentity(identity, holder, message, request) ?? reuseError(identity, holder, request))
      )
        throw new ApplyOneByOne();
    });
    for (const row of rows) {
      this.#known.set(row.identity, row);
      const index = this.#first.get(row.identity) as number;
      const reused = reuseError(row.identity, row, this.#request(index));
      this.#answers[index] = reused
        ? { outcome: conflict(reused), duplicate: false }
        : { outcome: row.result, duplicate: true };
    }
  }

  /** What item `index` would be recorded as. */
  #request(index: number): { topic: string; operation: string; fingerprint: string | undefined } {
    return { topic: this.#topic, operation: this.#operation, fingerprint: this.#items[index]?.fingerprint };
  }

  /** What an earlier item of the batch holding this identity would record, if any. */
  #heldInBatch(
    identity: string,
    before: number,
  ): Pick<StoredRow, 'source_timestamp' | 'topic' | 'operation' | 'fingerprint'> | undefined {
    const at = this.#first.get(identity);
    if (at === undefined || at >= before) return undefined;
    return {
      topic: this.#topic,
      operation: this.#operation,
      fingerprint: this.#items[at]?.fingerprint ?? null,
      source_timestamp: this.#coordinated[at]?.timestamp ?? null,
    };
  }

  /** Items to apply now: no identity, or the first holder of an identity not applied before. */
  pending(): number[] {
    return this.#identities.flatMap((identity, i) =>
      identity === undefined || (!this.#known.has(identity) && this.#first.get(identity) === i) ? [i] : [],
    );
  }

  /**
   * Records the outcomes of applied items, in the batch's transaction. Items that failed record nothing,
   * so a later retry (after the cause is fixed) can still apply them.
   */
  async record(
    client: PoolClient,
    applied: readonly { index: number; outcome: StoredOutcome }[],
  ): Promise<void> {
    const rows = applied.flatMap(({ index, outcome }) => {
      this.#answers[index] = { outcome, duplicate: false };
      const identity = this.#identities[index];
      const item = this.#items[index] as BatchItem;
      return identity === undefined
        ? []
        : [{ item, identity, outcome, timestamp: this.#coordinated[index]?.timestamp ?? null }];
    });
    if (rows.length === 0) return;
    const recorded = await client.query(
      `INSERT INTO processed_messages
              (identity, topic, operation, source_partition, source_offset, result, fingerprint, source_timestamp)
       SELECT i, $2, $3, p, o, r, f, ts
         FROM unnest($1::text[], $4::int[], $5::bigint[], $6::json[], $7::text[], $8::bigint[])
              AS t(i, p, o, r, f, ts)
       ON CONFLICT (identity) DO NOTHING`,
      [
        rows.map((r) => r.identity),
        this.#topic,
        this.#operation,
        rows.map((r) => r.item.source?.partition ?? null),
        rows.map((r) => r.item.source?.offset ?? null),
        rows.map((r) => JSON.stringify(r.outcome)),
        rows.map((r) => r.item.fingerprint ?? null),
        rows.map((r) => r.timestamp),
      ],
    );
    if (recorded.rowCount !== rows.length) {
      throw new RetryableError('another transaction applied one of these messages meanwhile; retrying');
    }
  }

  /** A pending item that could not be applied: it records nothing, so a later retry can still apply it. */
  fail(index: number, outcome: StoredOutcome): void {
    this.#answers[index] = { outcome, duplicate: false };
  }

  /** One answer per item: its own outcome, a stored one, or, for a repeat within the batch (the same
   * request: resolve lets no other through), the first holder's. */
  answers(): BatchAnswer[] {
    return this.#items.map((item, i) => {
      const own = this.#answers[i];
      if (own) return own;
      const identity = this.#identities[i] as string;
      // A repeat of an identity applied before answers as that record does, as it would alone.
      const known = this.#known.get(identity);
      if (known) {
        const reused = reuseError(identity, known, this.#request(i));
        return reused
          ? { outcome: conflict(reused), duplicate: false }
          : { outcome: known.result, duplicate: true };
      }
      const first = this.#answers[this.#first.get(identity) as number];
      if (!first) throw new RetryableError(`identity ${identity} has no answer in its batch`);
      // A repeat of a failed first holder fails the same way; of an applied one, it is a duplicate.
      return { outcome: first.outcome, duplicate: first.outcome.success };
    });
  }
}

/** An identity record as get_result reads it. */
export interface IdentityRecord {
  identity: string;
  topic: string;
  operation: string;
  processed_at: Date;
  outcome: StoredOutcome;
}

/** The first of `identities` (most likely first) that has a record, if any. Committed records only. */
export async function lookupIdentity(
  client: PoolClient,
  identities: readonly string[],
): Promise<IdentityRecord | undefined> {
  const { rows } = await client.query<Omit<IdentityRecord, 'outcome'> & { result: StoredOutcome }>(
    `SELECT identity, topic, operation, processed_at, result
       FROM processed_messages WHERE identity = ANY($1::text[])
      ORDER BY array_position($1::text[], identity) LIMIT 1`,
    [identities],
  );
  const row = rows[0];
  return row && { ...row, outcome: row.result };
}
