// kafkajs's own record encoder and decoder, for round trips in-process: what kafkajs makes of the
// headers it fetches (header bytes chosen freely, nulls included), and whether it can encode a record
// the worker builds (it throws on a null or function header value).
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

interface Encoder {
  writeInt8(n: number): Encoder;
  writeVarLong(n: number): Encoder;
  writeVarInt(n: number): Encoder;
  writeVarIntBytes(b: Buffer | string | null): Encoder;
  writeVarIntString(s: string): Encoder;
  writeVarIntArray(a: Encoder[]): Encoder;
  buffer: Buffer;
}
interface Decoder {
  readVarInt(): number;
}
export interface DecodedRecord {
  key: Buffer | null;
  value: Buffer | null;
  headers: Record<string, unknown>;
}
export interface EncodableRecord {
  key?: Buffer | string | null;
  value: Buffer | string | null;
  headers?: Record<string, unknown>;
}

const EncoderClass = require('kafkajs/src/protocol/encoder') as new () => Encoder;
const DecoderClass = require('kafkajs/src/protocol/decoder') as new (b: Buffer) => Decoder;
const encodeRecord = require('kafkajs/src/protocol/recordBatch/record/v0') as (r: EncodableRecord) => Encoder;
const decodeRecord = require('kafkajs/src/protocol/recordBatch/record/v0/decoder') as (
  d: Decoder,
  context: { firstOffset: string; firstTimestamp: string },
) => DecodedRecord;

const context = { firstOffset: '0', firstTimestamp: '0' };

/** A record with these raw headers (null: a header without a value), as kafkajs's consumer hands it over. */
export function fetchedByKafkajs(
  key: Buffer | null,
  value: Buffer | null,
  headers: [string, Buffer | null][],
): DecodedRecord {
  const body = new EncoderClass()
    .writeInt8(0)
    .writeVarLong(0)
    .writeVarInt(0)
    .writeVarIntBytes(key)
    .writeVarIntBytes(value)
    .writeVarIntArray(headers.map(([k, v]) => new EncoderClass().writeVarIntString(k).writeVarIntBytes(v)));
  return decodeRecord(new DecoderClass(body.buffer), context);
}

/** The record through kafkajs's producer encoder and back through its consumer decoder. */
export function roundTrip(record: EncodableRecord): DecodedRecord {
  const decoder = new DecoderClass(encodeRecord(record).buffer);
  decoder.readVarInt(); // the record's length
  return decodeRecord(decoder, context);
}
