// Fetch responses read with bounded decompression, one batch at a time. A compressed record batch is
// bytes anyone who can write to a topic chooses: 9.6 KB of zstd on the wire decompress to 300 MiB, which
// the client library inflates whole (no output limit), so one such batch takes a 512 MiB pod down, and
// it again after every restart. Here a batch that would decompress to more than the limit, or whose
// records cannot be read, is not decompressed: it comes back as an *unreadable* batch (its offsets, no
// records) that the worker answers and dead-letters like any refused message, and the rest of the
// response (other batches, other partitions) is read as usual. A response decompresses at most about
// twice the limit, and materialises about 2 x MAX_ENTRIES records and headers at most: past either, the
// rest is left for the next fetch (a batch of more records is read in parts, from the fetch position).
//
// The library negotiates the Fetch version per broker; versions 13-17 (Kafka 3.1 and later, every 4.x)
// share one response layout, parsed here. An older broker is refused, by name: its Fetch speaks topic
// names, which the fetcher does not ask in, and the library's reader for it has no bounds.
import zlib from 'node:zlib';
import {
  compressionsAlgorithms,
  fetchV13,
  fetchV14,
  fetchV15,
  fetchV16,
  fetchV17,
  createAPI,
  kGetApi,
  readKnownTaggedFields,
  Reader,
  ResponseError,
  type Consumer,
  type KafkaRecord,
  type RecordsBatch,
} from '@platformatic/kafka';

/** A batch whose records were not read: why, and enough to answer for its offsets. */
export interface Unreadable {
  tooLarge: boolean;
  message: string;
  /** The records the batch says it holds. */
  records: number;
}

/** A record as read: `offsetDelta` is one the batch can hold; `forgedOffsetDelta`, the one its producer
 * wrote, when that one could not be (see trustedDelta). */
export type ReadRecord = KafkaRecord & { forgedOffsetDelta?: number };

/** `truncated`: only the records up to the last one given were read; the rest is fetched again. */
export type ReadBatch = Omit<RecordsBatch, 'records'> & {
  records: ReadRecord[];
  unreadable?: Unreadable;
  truncated?: boolean;
};

/**
 * The offset delta of a batch's record, given the one before it (-1 for the first), the batch's last
 * delta and how many records follow it. The broker keeps the deltas a producer writes: a record can say
 * it lies before the record ahead of it, or past its batch, where an honest message will be. Taken as
 * written, such a delta skips the honest messages (the consumer moves past them) or holds the fetch
 * position still (a partition stuck). Deltas increase within the batch and leave room for the records
 * after it; compaction leaves gaps, never reorders. One that does not is read as the next free offset.
 * Decided from the records before it alone, so a batch read again from its middle gives the same
 * offsets.
 */
export function trustedDelta(
  written: number,
  previous: number,
  lastDelta: number,
  following: number,
): number {
  return written > previous && written <= lastDelta - following ? written : previous + 1;
}

const IS_COMPRESSED = 0x07;
const CONTROL = 0x20;
/** A control record that marks nothing (no key): what an unreadable control batch holds. */
const NO_MARKER: KafkaRecord = {
  length: 0,
  attributes: 0,
  timestampDelta: 0n,
  offsetDelta: 0,
  key: null,
  value: null,
  headers: [],
};
/** Compression codecs by the value of a batch's codec bits. */
export const CODECS = ['none', 'gzip', 'snappy', 'lz4', 'zstd'] as const;
// firstOffset, length: what precedes the part of the header `length` counts.
const LENGTH_PREFIX = 12;
// From partitionLeaderEpoch to the records count, inclusive: 4+1+4+2+4+8+8+8+2+4+4.
const HEADER_AFTER_LENGTH = 49;
const MAGIC_AT = 16;

/** What a message of format 0 or 1 (or a batch too short to be one) is handed back as: one unreadable
 * record at its offset. */
function legacy(offset: bigint, length: number, magic: number): ReadBatch {
  return {
    firstOffset: offset,
    length,
    partitionLeaderEpoch: -1,
    magic,
    crc: 0,
    attributes: 0,
    lastOffsetDelta: 0,
    firstTimestamp: -1n,
    maxTimestamp: -1n,
    producerId: -1n,
    producerEpoch: -1,
    firstSequence: -1,
    records: [],
    unreadable: {
      tooLarge: false,
      records: 1,
      message:
        magic === 2
          ? `is ${length} bytes, too short for a record batch`
          : `is of message format ${magic}; only record batches of format 2 are read`,
    },
  };
}

export class BatchTooLargeError extends Error {
  override name = 'BatchTooLargeError';
  readonly limit: number;
  constructor(limit: number) {
    super(`it decompresses to more than ${limit} bytes`);
    this.limit = limit;
  }
}

/** The most bytes an LZ4 frame (Kafka's lz4) can decompress to, from its block sizes alone. */
export function lz4Bound(data: Buffer): number {
  let at = 0;
  let bound = 0;
  const need = (n: number) => {
    if (at + n > data.length) throw new Error('its lz4 frame is truncated');
  };
  while (at < data.length) {
    need(7);
    if (data.readUInt32LE(at) !== 0x184d2204) throw new Error('its lz4 frame has no LZ4 magic number');
    const flags = data[at + 4] as number;
    const blockMax = [0, 0, 0, 0, 64, 256, 1024, 4096][((data[at + 5] as number) >> 4) & 7]! * 1024;
    if (blockMax === 0) throw new Error('its lz4 frame names no block size');
    const blockChecksum = (flags & 0x10) !== 0;
    at += 6 + ((flags & 0x08) !== 0 ? 8 : 0) + ((flags & 0x01) !== 0 ? 4 : 0) + 1;
    for (;;) {
      need(4);
      const word = data.readUInt32LE(at);
      at += 4;
      if (word === 0) break;
      const stored = (word & 0x80000000) !== 0;
      const size = word & 0x7fffffff;
      need(size);
      bound += stored ? size : blockMax;
      at += size + (blockChecksum ? 4 : 0);
    }
    if ((flags & 0x04) !== 0) at += 4;
  }
  return bound;
}

function varintAt(data: Buffer, at: number): number {
  let value = 0;
  for (let shift = 0; shift < 35; shift += 7) {
    const byte = data[at++];
    if (byte === undefined) throw new Error('its snappy length is truncated');
    value += (byte & 0x7f) * 2 ** shift;
    if ((byte & 0x80) === 0) return value;
  }
  throw new Error('its snappy length is not a varint');
}

const XERIAL = Buffer.from([0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00]);

/** What snappy data decompresses to, from its length preambles (raw, or Xerial's chunks). */
export function snappyBound(data: Buffer): number {
  if (!data.subarray(0, XERIAL.length).equals(XERIAL)) return varintAt(data, 0);
  let bound = 0;
  for (let at = 16; at < data.length;) {
    if (at + 4 > data.length) throw new Error('its snappy chunk is truncated');
    const size = data.readUInt32BE(at);
    bound += varintAt(data, at + 4);
    at += 4 + size;
  }
  return bound;
}

/** `data` decompressed, or BatchTooLargeError before more than `limit` bytes are made. */
export function decompressBounded(codec: number, data: Buffer, limit: number): Buffer {
  const checked = (bound: number) => {
    if (bound > limit) throw new BatchTooLargeError(limit);
  };
  try {
    switch (CODECS[codec]) {
      case 'gzip':
        return zlib.gunzipSync(data, { maxOutputLength: limit });
      case 'zstd':
        return zlib.zstdDecompressSync(data, { maxOutputLength: limit });
      case 'snappy':
        checked(snappyBound(data));
        return compressionsAlgorithms.snappy.decompressSync(data);
      case 'lz4':
        checked(lz4Bound(data));
        return compressionsAlgorithms.lz4.decompressSync(data);
      default:
        throw new Error(`its compression (attribute bits ${codec}) is not one Kafka defines`);
    }
  } catch (err) {
    if ((err as { code?: unknown }).code === 'ERR_BUFFER_TOO_LARGE') throw new BatchTooLargeError(limit);
    throw err;
  }
}

/** The most records and headers a fetch response materialises, about: a batch or record starts only
 * below it. 1 KB of zstd can hold a record of 4 million headers, or 745 KB a million empty records; read
 * whole, either exhausts the worker's heap (128 MB as shipped). */
export const MAX_ENTRIES = 50_000;

/** What a response may still read: a batch starts only while less than `limit` bytes were decompressed
 * and fewer than `maxEntries` records and headers read; a batch is cut short at `maxEntries`. */
export interface Budget {
  limit: number;
  used: number;
  maxEntries?: number;
  entries?: number;
}

function bytesOf(reader: Reader, end: number): Buffer | null {
  const length = reader.readVarInt();
  if (length === -1) return null;
  if (length < 0 || reader.position + length > end) throw new Error(`a field says it is ${length} bytes`);
  const value = reader.buffer.slice(reader.position, reader.position + length);
  reader.position += length;
  return value;
}

/** One record, its fields checked against its own length before anything is allocated. */
function readRecordChecked(reader: Reader, maxHeaders: number): KafkaRecord {
  const length = reader.readVarInt();
  const end = reader.position + length;
  if (length < 0 || end > reader.length) throw new Error(`a record says it is ${length} bytes`);
  const record: KafkaRecord = {
    length,
    attributes: reader.readInt8(),
    timestampDelta: reader.readVarInt64(),
    offsetDelta: reader.readVarInt(),
    key: bytesOf(reader, end),
    value: bytesOf(reader, end),
    headers: [],
  };
  const count = reader.readVarInt();
  // A header takes two bytes at least.
  if (count < 0 || count * 2 > end - reader.position)
    throw new Error(`a record says it holds ${count} headers in ${end - reader.position} bytes`);
  if (count > maxHeaders)
    throw new Error(`a record holds ${count} headers, more than the ${maxHeaders} a fetch reads`);
  for (let i = 0; i < count; i++) record.headers.push([bytesOf(reader, end), bytesOf(reader, end)]);
  reader.position = end;
  return record;
}

/** The offset delta of the record at the reader, which is moved past the record. */
function skipRecord(reader: Reader): number {
  const length = reader.readVarInt();
  const end = reader.position + length;
  if (length < 0 || end > reader.length) throw new Error(`a record says it is ${length} bytes`);
  reader.readInt8();
  reader.readVarInt64();
  const offsetDelta = reader.readVarInt();
  reader.position = end;
  return offsetDelta;
}

/**
 * The batches of one partition's records, from offset `from` (records below it are skipped unread).
 * Reading stops before a batch once the response has used its budget, and a batch is cut short
 * (`truncated`) when its records reach the budget's entries: the rest is fetched again.
 */
export function readBatches(reader: Reader, budget: Budget, from = -1n): ReadBatch[] {
  const maxEntries = budget.maxEntries ?? MAX_ENTRIES;
  const batches: ReadBatch[] = [];
  while (reader.remaining > MAGIC_AT) {
    const start = reader.position;
    const length = reader.peekInt32(start + 8);
    // Cut off at the end of the response (the broker sends partial batches): fetched again from here.
    if (length < 0 || reader.remaining - LENGTH_PREFIX < length) break;
    const end = start + LENGTH_PREFIX + length;
    const magic = reader.peekInt8(start + MAGIC_AT);
    // A message set of format 0 or 1 (written before Kafka 4) is framed alike: one message, or a
    // compressed wrapper at the offset of its last; kept whole as unreadable.
    if (magic !== 2 || length < HEADER_AFTER_LENGTH) {
      batches.push(legacy(reader.readInt64(), length, magic));
      reader.position = end;
      continue;
    }
    const batch: ReadBatch = {
      firstOffset: reader.readInt64(),
      length: reader.readInt32(),
      partitionLeaderEpoch: reader.readInt32(),
      magic: reader.readInt8(),
      crc: reader.readUnsignedInt32(),
      attributes: reader.readInt16(),
      lastOffsetDelta: reader.readInt32(),
      firstTimestamp: reader.readInt64(),
      maxTimestamp: reader.readInt64(),
      producerId: reader.readInt64(),
      producerEpoch: reader.readInt16(),
      firstSequence: reader.readInt32(),
      records: [],
    };
    const count = reader.readInt32();
    const codec = batch.attributes & IS_COMPRESSED;
    const control = (batch.attributes & CONTROL) !== 0;
    // Wholly below the position (the fetch starts at the batch holding it): its header is enough.
    if (!control && batch.firstOffset + BigInt(batch.lastOffsetDelta) < from) {
      reader.position = end;
      batches.push(batch);
      continue;
    }
    if ((codec !== 0 && budget.used >= budget.limit) || (budget.entries ?? 0) >= maxEntries) {
      reader.position = start;
      break;
    }
    let cut = false;
    try {
      let records = reader;
      if (codec !== 0) {
        const out = decompressBounded(codec, reader.buffer.slice(reader.position, end), budget.limit);
        budget.used += out.length;
        records = Reader.from(out);
      }
      // A batch takes the offsets up to its last delta (the broker checks that at append, not in a log
      // written before it): more records than those cannot be told apart.
      if (count < 0 || count > batch.lastOffsetDelta + 1)
        throw new Error(`it says it holds ${count} records in ${batch.lastOffsetDelta + 1} offsets`);
      const read: ReadRecord[] = [];
      // Only the batch holding the position has records below it.
      const skipping = batch.firstOffset < from;
      let previous = -1;
      for (let i = 0; i < count; i++) {
        if (skipping) {
          const at = records.position;
          const delta = trustedDelta(skipRecord(records), previous, batch.lastOffsetDelta, count - 1 - i);
          if (batch.firstOffset + BigInt(delta) < from) {
            previous = delta;
            continue;
          }
          records.position = at;
        }
        if (read.length > 0 && (budget.entries ?? 0) >= maxEntries) {
          cut = true;
          break;
        }
        const record: ReadRecord = readRecordChecked(records, maxEntries);
        const delta = trustedDelta(record.offsetDelta, previous, batch.lastOffsetDelta, count - 1 - i);
        if (delta !== record.offsetDelta) {
          record.forgedOffsetDelta = record.offsetDelta;
          record.offsetDelta = delta;
        }
        previous = delta;
        budget.entries = (budget.entries ?? 0) + 1 + record.headers.length;
        read.push(record);
      }
      batch.records = read;
      if (cut) batch.truncated = true;
    } catch (err) {
      const tooLarge = err instanceof BatchTooLargeError;
      const why = err instanceof Error ? err.message : String(err);
      batch.unreadable = {
        tooLarge,
        records: count,
        message: tooLarge ? why : `its records cannot be read (${why})`,
      };
    }
    // The library reads a transaction marker's first record to filter aborted transactions.
    if (control && batch.records.length === 0) batch.records = [NO_MARKER];
    reader.position = end;
    batches.push(batch);
    if (cut) break;
  }
  return batches;
}

type FetchResponse = Awaited<ReturnType<Consumer['fetch']>>;

export interface FetchBounds {
  /** The most bytes a batch may decompress to. */
  limit: number;
  /** Records and headers a response reads, about (default MAX_ENTRIES). */
  maxEntries?: number | undefined;
  /** Where the fetch of a partition starts (records below it are not read); undefined: anywhere. */
  positionOf?: ((topicId: string, partition: number) => bigint | undefined) | undefined;
}

/** Fetch v13-v17's response (the library's layout and shape), records read by readBatches. */
function parseFetchResponse(bounds: FetchBounds) {
  return (_correlationId: number, apiKey: number, apiVersion: number, reader: Reader): FetchResponse => {
    const budget: Budget = { limit: bounds.limit, used: 0, maxEntries: bounds.maxEntries };
    const errors: [string, [number, null]][] = [];
    const throttleTimeMs = reader.readInt32();
    const errorCode = reader.readInt16();
    if (errorCode !== 0) errors.push(['', [errorCode, null]]);
    const response = {
      throttleTimeMs,
      errorCode,
      sessionId: reader.readInt32(),
      nodeEndpoints: [] as FetchResponse['nodeEndpoints'],
      responses: reader.readArray((r, i) => {
        const topicId = r.readUUID();
        return {
          topicId,
          partitions: r.readArray(
            (r, j) => {
              const partition = {
                partitionIndex: r.readInt32(),
                errorCode: r.readInt16(),
                highWatermark: r.readInt64(),
                lastStableOffset: r.readInt64(),
                logStartOffset: r.readInt64(),
                divergingEpoch: { epoch: -1, endOffset: -1n },
                currentLeader: { leaderId: -1, leaderEpoch: -1 },
                snapshotId: { endOffset: -1n, epoch: -1 },
                abortedTransactions: r.readNullableArray((r) => ({
                  producerId: r.readInt64(),
                  firstOffset: r.readInt64(),
                })),
                preferredReadReplica: r.readInt32(),
                records: [] as ReadBatch[] | null,
              };
              if (partition.errorCode !== 0)
                errors.push([`/responses/${i}/partitions/${j}`, [partition.errorCode, null]]);
              // COMPACT_RECORDS: the length plus one, 0 for null.
              let size = r.readUnsignedVarInt();
              if (size === 0) partition.records = null;
              if (size > 1) {
                size--;
                partition.records = readBatches(
                  Reader.from(r.buffer.subarray(r.position, r.position + size)),
                  budget,
                  bounds.positionOf?.(topicId, partition.partitionIndex),
                );
                r.skip(size);
              }
              readKnownTaggedFields(r, {
                0: (t) => (partition.divergingEpoch = { epoch: t.readInt32(), endOffset: t.readInt64() }),
                1: (t) => (partition.currentLeader = { leaderId: t.readInt32(), leaderEpoch: t.readInt32() }),
                2: (t) => (partition.snapshotId = { endOffset: t.readInt64(), epoch: t.readInt32() }),
              });
              return partition;
            },
            true,
            false,
          ),
        };
      }),
    };
    readKnownTaggedFields(reader, {
      0: (t) =>
        (response.nodeEndpoints = t.readArray((e) => ({
          nodeId: e.readInt32(),
          host: e.readString(),
          port: e.readInt32(),
          rack: e.readNullableString(),
        }))),
    });
    const typed = response as unknown as FetchResponse;
    if (errors.length > 0) throw new ResponseError(apiKey, apiVersion, Object.fromEntries(errors), typed);
    return typed;
  };
}

const REQUESTS: Record<number, { createRequest: unknown }> = {
  13: fetchV13,
  14: fetchV14,
  15: fetchV15,
  16: fetchV16,
  17: fetchV17,
};

type GetApi = (name: string, callback: (error: Error | null, api?: { version: number }) => void) => void;

/** The lowest Fetch version read here (Kafka 3.1). */
export const MIN_FETCH_VERSION = 13;

/** A broker older than Kafka 3.1. Not retriable: the same broker answers the same way. */
export class UnsupportedBrokerError extends Error {
  override readonly name = 'UnsupportedBrokerError';
  readonly fetchVersion: number;
  constructor(fetchVersion: number) {
    super(
      `the broker speaks Fetch only up to version ${fetchVersion}, so it is older than Kafka 3.1; ` +
        `pattern-worker reads from Kafka 3.1 or later (its lanes need 4.0, for KIP-848): upgrade the broker`,
    );
    this.fetchVersion = fetchVersion;
  }
}
/** Per consumer: the bounds of every fetcher that uses it (the lowest limit holds; a position is asked
 * of each in turn). */
const installed = new WeakMap<object, FetchBounds[]>();

/** Makes `consumer`'s fetches read records through readBatches, within `bounds`. */
export function boundFetches(consumer: Consumer, bounds: FetchBounds): void {
  const known = installed.get(consumer);
  if (known) {
    known.push(bounds);
    return;
  }
  const all = [bounds];
  installed.set(consumer, all);
  const combined: FetchBounds = {
    get limit() {
      return Math.min(...all.map((b) => b.limit));
    },
    get maxEntries() {
      return Math.min(...all.map((b) => b.maxEntries ?? MAX_ENTRIES));
    },
    positionOf: (topicId, partition) => {
      for (const b of all) {
        const at = b.positionOf?.(topicId, partition);
        if (at !== undefined) return at;
      }
      return undefined;
    },
  };
  const target = consumer as unknown as Record<typeof kGetApi, GetApi>;
  const original = target[kGetApi].bind(consumer);
  const apis = new Map<number, unknown>();
  target[kGetApi] = (name, callback) =>
    original(name, (error, api) => {
      if (!error && api && name === 'Fetch' && api.version < MIN_FETCH_VERSION)
        return callback(new UnsupportedBrokerError(api.version));
      const request = api && name === 'Fetch' ? REQUESTS[api.version] : undefined;
      if (error || !api || !request) return callback(error, api);
      let bounded = apis.get(api.version);
      if (!bounded) {
        const create = request.createRequest as (...args: unknown[]) => never;
        bounded = createAPI(1, api.version, create, parseFetchResponse(combined));
        apis.set(api.version, bounded);
      }
      callback(null, bounded as { version: number });
    });
}
