// Ids derived from a message identity, so that replaying the same messages into an empty database
// produces the same rows (CONTRACT "Identity and effects"). Name-based UUID, version 5 (RFC 9562).
import { hash, randomUUID } from 'node:crypto';

// Fixed namespace of this project; changing it would change every derived id.
const NAMESPACE = Buffer.from('6f1c2a4e8b5d4f3aa7c9e2d1b0f49a37', 'hex');

export function uuidFromName(name: string): string {
  // One-shot hashing: several times cheaper than createHash() per id, and one id is made per event.
  const bytes = hash('sha1', Buffer.concat([NAMESPACE, Buffer.from(name, 'utf8')]), 'buffer').subarray(0, 16);
  bytes[6] = ((bytes[6] as number) & 0x0f) | 0x50;
  bytes[8] = ((bytes[8] as number) & 0x3f) | 0x80;
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** A deterministic id for the thing `kind` (#index) created by the message `identity`; random without one. */
export function deriveId(identity: string | undefined, kind: string, index = 0): string {
  return identity === undefined ? randomUUID() : uuidFromName(`${identity}|${kind}|${index}`);
}

/** The id an insert without data.pattern_id gets (its #index pattern, for batch_insert): what producers key it by. */
export function derivedPatternId(identity: string, index = 0): string {
  return uuidFromName(`${identity}|pattern|${index}`);
}
