// Fetched Kafka messages to the engine's InboundMessage, and kafkajs's header decoding made linear.
import { createRequire } from 'node:module';
import type { InboundMessage } from '../engine/records.ts';
import { emptyHeaders, type HeaderValue, type MessageHeaders } from '../../contracts/headers.ts';

/** The fields of a fetched kafkajs message the engine reads. */
export interface FetchedMessage {
  offset: string;
  key: Buffer | null;
  value: Buffer | null;
  /** As kafkajs decodes them: see readHeaders. */
  headers?: Record<string, unknown> | undefined;
  timestamp: string;
}

interface WireHeader {
  key: string;
  value: Buffer | null;
}
interface KafkajsDecoder {
  readVarIntArray: (this: KafkajsDecoder, reader: (decoder: KafkajsDecoder) => unknown) => unknown[];
}

/** Maps headerMap built: bytes or null, without a prototype, so readHeaders takes them as they are. */
const decodedMaps = new WeakSet<object>();

function headerMap(items: readonly WireHeader[]): MessageHeaders {
  const headers = emptyHeaders<HeaderValue>();
  decodedMaps.add(headers);
  for (const { key, value } of items) {
    const prev = headers[key];
    if (prev === undefined) headers[key] = value;
    else if (Array.isArray(prev)) prev.push(value);
    else headers[key] = [prev, value];
  }
  return headers;
}

/**
 * kafkajs folds a record's headers into an object with `({...obj, [key]: ...})` per header: quadratic in
 * their number (measured: 2,000 headers 1.2 s, 8,000 headers 46 s on the main thread, and a 1 MiB record
 * holds 100,000). Its record decoder reads them with `decoder.readVarIntArray(HeaderDecoder).reduce(...)`,
 * so the array it gets for headers answers `reduce` with a map built in one pass, without a prototype,
 * duplicates in order, nulls kept (100,000 headers: 0.8 s). Idempotent; installed when this module loads,
 * before any fetch.
 */
export function installLinearHeaderDecoding(): void {
  const require = createRequire(import.meta.url);
  const Decoder = require('kafkajs/src/protocol/decoder') as { prototype: KafkajsDecoder };
  const headerReader = require('kafkajs/src/protocol/recordBatch/header/v0/decoder') as unknown;
  const original = Decoder.prototype.readVarIntArray;
  if ((original as { linearHeaders?: boolean }).linearHeaders) return;
  const patched = function (this: KafkajsDecoder, reader: (decoder: KafkajsDecoder) => unknown) {
    const items = original.call(this, reader);
    if (reader === headerReader) {
      Object.defineProperty(items, 'reduce', { value: () => headerMap(items as WireHeader[]) });
    }
    return items;
  };
  Object.defineProperty(patched, 'linearHeaders', { value: true });
  Decoder.prototype.readVarIntArray = patched;
}

installLinearHeaderDecoding();

/**
 * The headers of a fetched message, as bytes in a map without a prototype. Decoded by the linear
 * decoder above they already are. Otherwise (kafkajs's own fold, or a caller's object), a header named
 * after an Object.prototype member (`constructor`, `toString`, `__proto__`) arrives as `[inherited member,
 * value, ...]`: header values from the wire are only ever Buffers or null (no value), so anything else is
 * that artefact and is dropped; a header sent once is a single value again, several times an array.
 */
export function readHeaders(raw: Record<string, unknown> | undefined): MessageHeaders {
  if (raw !== undefined && raw !== null && decodedMaps.has(raw)) return raw as MessageHeaders;
  const headers = emptyHeaders<HeaderValue>();
  if (raw === undefined || raw === null) return headers;
  for (const name of Object.keys(raw)) {
    const value: unknown = raw[name];
    const values = (Array.isArray(value) ? value : [value]).filter(
      (v: unknown): v is Buffer | string | null => v === null || Buffer.isBuffer(v) || typeof v === 'string',
    );
    if (values.length === 0) continue;
    headers[name] = values.length === 1 ? values[0] : values;
  }
  return headers;
}

export function toInbound(topic: string, partition: number, message: FetchedMessage): InboundMessage {
  return {
    topic,
    partition,
    offset: message.offset,
    key: message.key ?? null,
    value: message.value ?? null,
    headers: readHeaders(message.headers),
    timestamp: message.timestamp,
  };
}
