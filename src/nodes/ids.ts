// Ids derived from a message identity, so that replaying the same messages into an empty database
// produces the same rows (CONTRACT "Identity and effects"). Name-based UUID, version 5 (RFC 9562).
import { hash, randomBytes, randomUUID } from 'node:crypto';

// Fixed namespace of this project; changing it would change every derived id.
const NAMESPACE = Buffer.from('6f1c2a4e8b5d4f3aa7c9e2d1b0f49a37', 'hex');

/** SHA-1 of the project namespace and `name`: the bits of every derived id. */
function nameHash(name: string): Buffer {
  // One-shot hashing: several times cheaper than createHash() per id, and one id is made per event.
  return hash('sha1', Buffer.concat([NAMESPACE, Buffer.from(name, 'utf8')]), 'buffer');
}

/** The first 16 bytes as a UUID of `version` (RFC 9562 variant). */
function formatUuid(bytes: Buffer, version: number): string {
  bytes[6] = ((bytes[6] as number) & 0x0f) | (version << 4);
  bytes[8] = ((bytes[8] as number) & 0x3f) | 0x80;
  const hex = bytes.toString('hex', 0, 16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

const nameOf = (identity: string, kind: string, index: number) => `${identity}|${kind}|${index}`;

export function uuidFromName(name: string): string {
  return formatUuid(nameHash(name), 5);
}

/**
 * The id of a usage event: a version 7 UUID (RFC 9562) whose time is the event's message time and whose
 * other bits come from the message identity, so it is still a function of the message. Events arrive
 * in about time order, so their primary key grows at its right edge instead of dirtying a random page
 * of a large index for every event (half the insert's cost on a table larger than shared_buffers).
 */
export function usageEventId(identity: string | undefined, eventTime: Date): string {
  const bytes = identity === undefined ? randomBytes(16) : nameHash(nameOf(identity, 'usage_event', 0));
  const ms = Math.min(Math.max(Math.trunc(eventTime.getTime()) || 0, 0), 0xffff_ffff_ffff);
  bytes.writeUIntBE(ms, 0, 6);
  return formatUuid(bytes, 7);
}

/** A deterministic id for the thing `kind` (#index) created by the message `identity`; random without one. */
export function deriveId(identity: string | undefined, kind: string, index = 0): string {
  return identity === undefined ? randomUUID() : uuidFromName(nameOf(identity, kind, index));
}

/** The id an insert without data.pattern_id gets (its #index pattern, for batch_insert): what producers key it by. */
export function derivedPatternId(identity: string, index = 0): string {
  return uuidFromName(nameOf(identity, 'pattern', index));
}
