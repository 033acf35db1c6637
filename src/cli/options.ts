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

// C0 and C1 controls, DEL, the marks that reorder text (bidirectional overrides and isolates), and the
// invisible ones (zero-width spaces and joiners, line and paragraph separators, the byte order mark).
const UNSAFE_FOR_TERMINALS =
  // eslint-disable-next-line no-control-regex -- these are what is being escaped
  /[\u0000-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/g;

/**
 * Text any producer wrote (header names, correlation ids, keys, messages), made safe to print: an escape
 * sequence in a dead letter would otherwise set the operator's window title, clear the screen or hide
 * what follows, and a right-to-left override would show text in another order. Each such character is
 * shown as \u{XX}.
 */
export function terminalSafe(text: string): string {
  return text.replace(UNSAFE_FOR_TERMINALS, (c) => `\\u{${(c.codePointAt(0) as number).toString(16)}}`);
}

/** In JSON, C0 controls are escaped already; these others only ever stand inside strings. */
const UNSAFE_IN_JSON = /[\u007f-\u009f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/g;

/**
 * JSON for a terminal or a pipe: as JSON.stringify, with the characters terminalSafe shows escaped written
 * as JSON escapes, so the output stays the same JSON. A pattern's name is any producer's text: an 8-bit
 * CSI (U+009B) in it drove the operator's terminal from `patterns request get_by_id`.
 */
export function printableJson(value: unknown, indent?: number): string {
  return JSON.stringify(value, null, indent).replace(
    UNSAFE_IN_JSON,
    (c) => `\\u${(c.codePointAt(0) as number).toString(16).padStart(4, '0')}`,
  );
}

type Cell = Table.Cell;
type TableRow = Table.HorizontalTableRow | Table.VerticalTableRow | Table.CrossTableRow;
const safeCell = (cell: Cell): Cell => (typeof cell === 'string' ? terminalSafe(cell) : cell);

/** A table without lines between rows, which stays readable with many rows; every cell printed safely. */
export function compactTable(head?: string[]): Table.Table {
  const table = new Table({
    ...(head ? { head } : {}),
    style: { head: [], border: [] },
    chars: { mid: '', 'left-mid': '', 'mid-mid': '', 'right-mid': '' },
  });
  const push = table.push.bind(table);
  table.push = (...rows: TableRow[]) =>
    push(
      ...rows.map((row): TableRow => {
        if (Array.isArray(row)) return row.map(safeCell);
        // A vertical table's row: { name: value }.
        const entries: [string, Cell][] = Object.entries(row as Record<string, Cell>);
        return Object.fromEntries(entries.map(([name, value]) => [terminalSafe(name), safeCell(value)]));
      }),
    );
  return table;
}
