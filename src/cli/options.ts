// Flag parsers the commands share, so every command words a bad value the same way (naming the flag).
import { InvalidArgumentError } from 'commander';

export function parseTime(flag: string, value: string): Date {
  const time = new Date(value);
  if (Number.isNaN(time.getTime()) || !/^\d{4}-\d{2}-\d{2}/.test(value)) {
    throw new InvalidArgumentError(
      `${flag} must be an ISO-8601 time such as 2026-11-01T00:00:00Z, got "${value}"`,
    );
  }
  return time;
}

/** A comma-separated list, blanks dropped. */
export function parseList(value: string): string[] {
  return value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}
