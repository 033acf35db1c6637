// `patterns dlq list|show|redrive`: what was dead-lettered and why, one dead letter in full, and sending
// fixed or retried requests back. Reads without moving any consumer group (messaging/kafka/operator-io.ts).
import { Command, InvalidArgumentError, Option } from 'commander';
import { loadConfig, type Config } from '../../config.ts';
import { ERROR_CODES } from '../../contracts/errors.ts';
import { REQUEST_TOPICS, TopicNames, type RequestTopic } from '../../contracts/topics.ts';
import {
  countCode,
  sortedCounts,
  decodeDeadLetter,
  describeDeadLetter,
  matchesFilter,
  redriveRecord,
  type DeadLetter,
  type DeadLetterFilter,
} from '../../messaging/operations/dead-letters.ts';
import type { InboundMessage } from '../../messaging/engine/records.ts';
import { createKafka } from '../../messaging/kafka/client.ts';
import {
  planRanges,
  OrderedSends,
  readRanges,
  type PartitionRange,
} from '../../messaging/kafka/operator-io.ts';
import { createProgress } from '../progress.ts';
import {
  compactTable,
  parseList,
  parseRequestTopics,
  parseTime,
  printableJson,
  terminalSafe,
  wholeNumber,
} from '../options.ts';

interface FilterOptions {
  topic?: RequestTopic[];
  code?: string[];
  since?: Date;
  until?: Date;
  correlationId?: string;
  json?: boolean;
}

function parseCodes(value: string): string[] {
  const codes = parseList(value).map((c) => c.toUpperCase());
  const unknown = codes.filter((c) => !(ERROR_CODES as readonly string[]).includes(c));
  if (unknown.length > 0) {
    throw new InvalidArgumentError(`unknown code ${unknown.join(', ')}; codes are ${ERROR_CODES.join(', ')}`);
  }
  return codes;
}

function withFilters(command: Command): Command {
  return command
    .addOption(
      new Option(
        '--topic <list>',
        'request topics whose dead letters to read, comma-separated (default: all)',
      ).argParser(parseRequestTopics),
    )
    .addOption(
      new Option('--code <list>', 'error codes (kafka_dlt-exception-fqcn), comma-separated').argParser(
        parseCodes,
      ),
    )
    .addOption(
      new Option('--since <iso-time>', 'dead-lettered at or after this time').argParser((v) =>
        parseTime('--since', v),
      ),
    )
    .addOption(
      new Option('--until <iso-time>', 'dead-lettered before this time').argParser((v) =>
        parseTime('--until', v),
      ),
    )
    .option('--correlation-id <id>', 'only the request with this correlation id (body or header)')
    .option('--json', 'print JSON (the default when stdout is not a terminal)');
}

interface Session {
  config: Config;
  names: TopicNames;
  kafka: ReturnType<typeof createKafka>;
}

function session(): Session {
  const config = loadConfig();
  return {
    config,
    names: new TopicNames(config.TOPIC_PREFIX),
    kafka: createKafka(config, undefined, '-dlq'),
  };
}

/** Reads the dead-letter topics' ranges, with a progress bar per topic on a terminal. */
async function readDeadLetters(
  s: Session,
  ranges: PartitionRange[],
  onMessage: (m: InboundMessage) => void | Promise<void>,
): Promise<void> {
  const totals = new Map<string, number>();
  for (const r of ranges) totals.set(r.topic, (totals.get(r.topic) ?? 0) + Number(r.end - r.start));
  const items = [...totals].filter(([, total]) => total > 0).map(([name, total]) => ({ name, total }));
  if (items.length === 0) return;
  const progress = createProgress(items);
  const done = new Map<string, number>();
  try {
    await readRanges(
      s.kafka,
      ranges,
      async (m) => {
        await onMessage(m);
        const n = (done.get(m.topic) ?? 0) + 1;
        done.set(m.topic, n);
        progress.update(m.topic, n);
      },
      { groupPrefix: `${s.config.KAFKA_CLIENT_ID}-dlq` },
    );
  } finally {
    progress.stop();
  }
}

/** Reads the selected dead letters, each passed on decoded with its message. */
async function readSelected(
  s: Session,
  o: FilterOptions,
  onSelected: (letter: DeadLetter, message: InboundMessage) => void | Promise<void>,
): Promise<void> {
  const topics = (o.topic ?? REQUEST_TOPICS).map((t) => s.names.dlq(t));
  const admin = s.kafka.admin();
  await admin.connect();
  const ranges = await planRanges(admin, topics, { since: o.since, until: o.until }).finally(() =>
    admin.disconnect(),
  );
  const filter: DeadLetterFilter = {
    codes: o.code,
    since: o.since,
    until: o.until,
    correlationId: o.correlationId,
  };
  await readDeadLetters(s, ranges, async (message) => {
    const letter = decodeDeadLetter(message);
    if (matchesFilter(letter, filter)) await onSelected(letter, message);
  });
}

// Oldest first: the order they failed in.
const byAge = (a: DeadLetter, b: DeadLetter) => a.time.localeCompare(b.time) || a.ref.localeCompare(b.ref);

const asJson = (o: { json?: boolean }) => Boolean(o.json) || !process.stdout.isTTY;
const clip = (s: string | null, n: number) => (s && s.length > n ? `${s.slice(0, n - 1)}…` : (s ?? ''));

function listCommand(): Command {
  return withFilters(
    new Command('list').description(
      'List dead letters with their original topic, partition, offset, time, code and message, and counts per code.',
    ),
  )
    .addOption(
      new Option('--limit <n>', 'list the n oldest (default 1000); every selected one is counted').argParser(
        wholeNumber('--limit', 1),
      ),
    )
    .action(async (o: FilterOptions & { limit?: number }) => {
      const s = session();
      // Counted as they are read, and only the oldest `limit` kept: a flood of dead letters (450,000) kept
      // whole, values and all, ran the command out of memory.
      const limit = o.limit ?? 1000;
      const byCode = new Map<string, number>();
      let total = 0;
      let letters: DeadLetter[] = [];
      await readSelected(s, o, (letter) => {
        total += 1;
        countCode(byCode, letter.code);
        letters.push(letter);
        if (letters.length >= 2 * limit) letters = letters.sort(byAge).slice(0, limit);
      });
      letters = letters.sort(byAge).slice(0, limit);
      const counts = sortedCounts(byCode);
      if (asJson(o)) {
        process.stdout.write(`${printableJson({ dead_letters: letters, counts, total })}\n`);
        return;
      }
      const table = compactTable([
        'dead letter',
        'dead-lettered at',
        'original',
        'code',
        'message',
        'correlation id',
      ]);
      for (const l of letters) {
        table.push([
          l.ref,
          l.time,
          `${l.original.topic ?? '?'}:${l.original.partition ?? '?'}:${l.original.offset ?? '?'}`,
          l.code ?? '',
          clip(l.message, 60),
          clip(l.correlationId, 36),
        ]);
      }
      if (letters.length > 0) process.stdout.write(`${table.toString()}\n`);
      const summary = Object.entries(counts)
        .map(([code, n]) => `${code} ${n}`)
        .join(', ');
      const shown = letters.length < total ? ` (the oldest ${letters.length} listed; --limit for more)` : '';
      process.stdout.write(
        terminalSafe(`${total} dead letters${summary ? `: ${summary}` : ''}${shown}`) + '\n',
      );
    });
}

function parseRef(value: string): { topic: string; partition: number; offset: bigint } {
  const match = /^(.+):(\d+):(\d+)$/.exec(value);
  if (!match) {
    throw new InvalidArgumentError(
      `give the dead letter as <dlq-topic>:<partition>:<offset> (as \`patterns dlq list\` prints it), got "${value}"`,
    );
  }
  return { topic: match[1] as string, partition: Number(match[2]), offset: BigInt(match[3] as string) };
}

function showCommand(): Command {
  return new Command('show')
    .description('Show one dead letter whole: headers decoded, the value as JSON when it is JSON.')
    .argument('<ref>', '<dlq-topic>:<partition>:<offset>, as `patterns dlq list` prints it', parseRef)
    .option('--json', 'print JSON (the default when stdout is not a terminal)')
    .action(async (ref: ReturnType<typeof parseRef>, o: { json?: boolean }) => {
      const s = session();
      const admin = s.kafka.admin();
      await admin.connect();
      const offsets = await admin
        .fetchTopicOffsets(ref.topic)
        .catch(() => [])
        .finally(() => admin.disconnect());
      const held = offsets.find((p) => p.partition === ref.partition);
      if (!held || ref.offset < BigInt(held.low) || ref.offset >= BigInt(held.high)) {
        process.stderr.write(
          `patterns: no message at ${ref.topic} partition ${ref.partition} offset ${ref.offset}` +
            (held ? ` (it holds offsets ${held.low} to ${BigInt(held.high) - 1n})` : '') +
            '; list them with `patterns dlq list`\n',
        );
        process.exitCode = 1;
        return;
      }
      let found: InboundMessage | undefined;
      await readRanges(
        s.kafka,
        [{ topic: ref.topic, partition: ref.partition, start: ref.offset, end: ref.offset + 1n }],
        (m) => {
          found = m;
        },
        { groupPrefix: `${s.config.KAFKA_CLIENT_ID}-dlq`, idleMs: 5_000 },
      );
      if (!found) {
        process.stderr.write(
          `patterns: no message at ${ref.topic} partition ${ref.partition} offset ${ref.offset}; ` +
            'list them with `patterns dlq list`\n',
        );
        process.exitCode = 1;
        return;
      }
      const letter = describeDeadLetter(found);
      if (asJson(o)) {
        process.stdout.write(`${printableJson(letter, 2)}\n`);
        return;
      }
      const table = compactTable();
      for (const [name, value] of Object.entries(letter.headers)) table.push({ [name]: String(value) });
      const value = typeof letter.value === 'string' ? letter.value : printableJson(letter.value, 2);
      process.stdout.write(
        terminalSafe(`${letter.ref}, dead-lettered ${letter.time}, key ${letter.key ?? '(none)'}`) +
          `\n${table.toString()}\nvalue:\n${value.split('\n').map(terminalSafe).join('\n')}\n`,
      );
    });
}

function redriveCommand(): Command {
  return withFilters(
    new Command('redrive').description(
      'Send the selected dead letters back to their original topics, as they were first sent.',
    ),
  )
    .option('--dry-run', 'show what would be redriven; send nothing')
    .addHelpText(
      'after',
      `
Each redriven message keeps its original key, value and headers (but the dead-letter headers, and the
reply path and deadline of a caller long gone: results go to the result topic), plus
pattern-redrive-count. It keeps its message identity too (its correlation id, or with none
pattern-redrive-of, the original's coordinates), so redriving the same dead letter twice, or one
that was applied since, applies it once. Fix the cause first (for example insert the missing pattern).

Dead letters are sent back as they are read, a hundred at a time, so any number can be redriven in
bounded memory: those of one key in the order they were dead-lettered (they share a dead-letter
partition), those of different keys in no particular order, as Kafka keeps them. If a send fails, what
was sent before stays sent; running the command again sends every selected dead letter again, and each
is applied once.

Examples:
  patterns dlq redrive --code INVALID_REFERENCE --topic pattern.usage --dry-run
  patterns dlq redrive --correlation-id 0b7e…`,
    )
    .action(async (o: FilterOptions & { dryRun?: boolean }) => {
      const s = session();
      // Streamed: a redrive of every dead letter of a flood (hundreds of thousands) kept them all, values
      // and all, and ran out of memory.
      const sends = o.dryRun ? undefined : new OrderedSends(s.kafka);
      let selected = 0;
      let redrivable = 0;
      let skippedTotal = 0;
      const skipped: { ref: string; reason: string }[] = [];
      await sends?.connect();
      try {
        await readSelected(s, o, async (letter, message) => {
          selected += 1;
          const redrive = redriveRecord(message, s.names);
          if ('skip' in redrive) {
            skippedTotal += 1;
            if (skipped.length < MAX_SKIPS_LISTED) skipped.push({ ref: letter.ref, reason: redrive.skip });
            return;
          }
          redrivable += 1;
          await sends?.add(redrive.record);
        });
        await sends?.flush();
      } catch (err) {
        const reason = err instanceof Error ? err.message : String(err);
        throw new Error(
          `the redrive stopped after ${sends?.sent ?? 0} dead letters were sent back: ${reason}. ` +
            'Running it again sends every selected dead letter again; each is applied once',
          { cause: err },
        );
      } finally {
        await sends?.close();
      }
      const redriven = sends?.sent ?? 0;
      if (asJson(o)) {
        process.stdout.write(
          `${printableJson({ dry_run: Boolean(o.dryRun), redriven, selected, would_redrive: redrivable, skipped, skipped_total: skippedTotal })}\n`,
        );
        return;
      }
      for (const skip of skipped)
        process.stdout.write(terminalSafe(`skipped ${skip.ref}: ${skip.reason}`) + '\n');
      const unlisted = skippedTotal > skipped.length ? ` (the first ${skipped.length} listed)` : '';
      process.stdout.write(
        `${o.dryRun ? 'would redrive' : 'redriven'} ${o.dryRun ? redrivable : redriven}, skipped ${skippedTotal}${unlisted}\n`,
      );
    });
}

/** Skipped dead letters listed at most (every one is counted). */
const MAX_SKIPS_LISTED = 1000;

export function dlqCommand(): Command {
  return new Command('dlq')
    .description('Dead letters: list them, show one, redrive them to their original topics.')
    .addHelpText(
      'after',
      `
Reads the <request topic>.dlq topics (with TOPIC_PREFIX) without joining or moving the worker's
consumer group. Tables on a terminal, JSON otherwise or with --json.

Workflow:
  patterns dlq list --since 2026-12-01T00:00:00Z        # what failed, counts per code
  patterns dlq show pattern.usage.dlq:0:42              # one in full
  # fix the cause, then
  patterns dlq redrive --code INVALID_REFERENCE --dry-run
  patterns dlq redrive --code INVALID_REFERENCE`,
    )
    .addCommand(listCommand())
    .addCommand(showCommand())
    .addCommand(redriveCommand());
}
