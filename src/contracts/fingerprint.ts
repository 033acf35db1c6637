// The fingerprint of a request as it was sent: SHA-256 (128 bits of it) of its canonical JSON (keys sorted, UUIDs in
// lower case), before validation fills defaults, so that it depends only on what the client sent: the
// same request has the same fingerprint whatever its key order or id case, in this version and the next,
// and a replay of the same bytes matches what was stored.
import { hash } from 'node:crypto';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`;
  }
  if (typeof value === 'string' && UUID.test(value)) return JSON.stringify(value.toLowerCase());
  return JSON.stringify(value) ?? 'null';
}

/** 128 bits of SHA-256, base64url (22 characters): kept beside every identity, so it is kept short. */
export function requestFingerprint(request: unknown): string {
  return hash('sha256', canonical(request), 'buffer').subarray(0, 16).toString('base64url');
}
