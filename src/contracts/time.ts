// Kafka timestamps are what the producer sent wherever a topic keeps CreateTime: any int64, negative
// included (Kafka 4.4 stores -9e18 as sent). Only 1970-01-01 to 9999-12-31 count as times here: a JS
// Date, an ISO string of four year digits and a PostgreSQL timestamptz all hold every one of them.

/** 9999-12-31T23:59:59.999Z. */
export const MAX_TIME_MS = 253_402_300_799_999;

export function isTimeMs(ms: number): boolean {
  return Number.isInteger(ms) && ms >= 0 && ms <= MAX_TIME_MS;
}

/** The ISO form of `ms`, or null where it is not a time (missing, negative, past 9999). */
export function isoTimeOrNull(ms: number | null | undefined): string | null {
  return ms === null || ms === undefined || !isTimeMs(ms) ? null : new Date(ms).toISOString();
}
