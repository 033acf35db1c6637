// Flag parsers and table style the commands share, so every command words a bad value the same way
// (naming the flag) and draws its tables alike.
import Table from 'cli-table3';
import { InvalidArgumentError } from 'commander';
import { REQUEST_TOPICS, type RequestTopic } from '../contracts/topics.ts';

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

/** A parser of a whole number of at least `min`, naming the flag when the value is not one. */
export function wholeNumber(flag: string, min: number): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isInteger(n) || n < min) {
      throw new InvalidArgumentError(`${flag} must be a whole number of at least ${min}, got "${value}"`);
    }
    return n;
  };
}

/** A comma-separated list of logical request topics. */
export function parseRequestTopics(value: string): RequestTopic[] {
  const topics = parseList(value);
  const unknown = topics.filter((t) => !(REQUEST_TOPICS as readonly string[]).includes(t));
  if (unknown.length > 0) {
    throw new InvalidArgumentError(
      `unknown topic ${unknown.join(', ')}; choose from ${REQUEST_TOPICS.join(', ')}`,
    );
  }
  return topics as RequestTopic[];
}

/** A table without lines between rows, which stays readable with many rows. */
export function compactTable(head?: string[]): Table.Table {
  return new Table({
    ...(head ? { head } : {}),
    style: { head: [], border: [] },
    chars: { mid: '', 'left-mid': '', 'mid-mid': '', 'right-mid': '' },
  });
}
