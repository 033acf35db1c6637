// Request commands: build one request from flags, send it through Kafka with PatternClient, print the
// result as JSON. Exit codes: 0 success, 1 a result with success false, 2 bad input, 3 no reply,
// 4 (`patterns result`) nothing recorded for that request.
import { readFile } from 'node:fs/promises';
import { Argument, Command, InvalidArgumentError, Option } from 'commander';
import {
  ClientClosedError,
  PatternClient,
  RequestTimeoutError,
  RequestValidationError,
} from '../../client/index.ts';
import type { RequestBody, ResultOf } from '../../client/pattern-client.ts';
import { loadConfig } from '../../config.ts';
import {
  ALL_OPERATIONS,
  OPERATIONS,
  type CliCommand,
  type Operation,
  type OperationOf,
} from '../../contracts/operations.ts';
import { kafkaConnection } from '../../messaging/kafka/client.ts';
import { parseList, printableJson } from '../options.ts';

export const EXIT = { ok: 0, failedResult: 1, badInput: 2, noReply: 3, notRecorded: 4 } as const;

const number = (flag: string) => (value: string) => {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n)) throw new InvalidArgumentError(`${flag} must be a number`);
  return n;
};
const integer = (flag: string) => (value: string) => {
  const n = number(flag)(value);
  if (!Number.isInteger(n)) throw new InvalidArgumentError(`${flag} must be an integer`);
  return n;
};
const json = (flag: string) => (value: string) => {
  try {
    const parsed: unknown = JSON.parse(value);
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
      throw new Error('not an object');
    return parsed as Record<string, unknown>;
  } catch {
    throw new InvalidArgumentError(`${flag} must be a JSON object`);
  }
};

/** Drops undefined values so that flags not given are not sent at all. */
function defined<T extends Record<string, unknown>>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

interface CommonOptions {
  timeout: number;
  wait: boolean;
}

function withCommon(command: Command, canSkipWait = false): Command {
  command.addOption(
    new Option('--timeout <ms>', 'how long to wait for the reply')
      .default(30_000)
      .argParser(integer('--timeout')),
  );
  if (canSkipWait) command.option('--no-wait', 'return once Kafka has the request; print its correlation id');
  command.addHelpText(
    'after',
    `
Sends through Kafka (KAFKA_BROKERS, TOPIC_PREFIX, KAFKA_SASL_*, KAFKA_SSL from the environment) to a
running worker and prints the result as JSON. Exit codes: 0 success, 1 the result has success false,
2 invalid input, 3 no reply within --timeout.`,
  );
  return command;
}

async function send<Op extends Operation>(
  operation: Op,
  body: RequestBody<Op>,
  options: CommonOptions,
  exitCodeOf: (result: ResultOf<Op>) => number = (result) => (result.success ? EXIT.ok : EXIT.failedResult),
): Promise<void> {
  const config = loadConfig();
  const client = new PatternClient({
    connection: kafkaConnection(config),
    topicPrefix: config.TOPIC_PREFIX,
    clientId: `${config.KAFKA_CLIENT_ID}-cli`,
    timeoutMs: options.timeout,
  });
  try {
    await client.connect();
    if (options.wait === false) {
      const sent = await client.emit(operation, body);
      process.stdout.write(
        `${printableJson({ sent: true, topic: sent.topic, correlation_id: sent.correlationId })}\n`,
      );
      return;
    }
    const result = await client.request(operation, body);
    process.stdout.write(`${printableJson(result, 2)}\n`);
    process.exitCode = exitCodeOf(result);
  } catch (err) {
    if (err instanceof RequestValidationError) {
      process.stderr.write(`patterns: ${err.message}\n`);
      process.exitCode = EXIT.badInput;
    } else if (err instanceof RequestTimeoutError || err instanceof ClientClosedError) {
      process.stderr.write(`patterns: ${err.message}\n`);
      process.exitCode = EXIT.noReply;
    } else throw err;
  } finally {
    await client.close();
  }
}

function insertCommand(): Command {
  const command = new Command('insert')
    .description('Insert a pattern (operation insert on pattern.insert).')
    .option('--name <name>', 'pattern_name')
    .option('--type <type>', 'pattern_type', 'code')
    .option('--language <language>', 'language')
    .option('--category <category>', 'category')
    .option('--description <text>', 'description')
    .option('--template <code>', 'template_code')
    .option('--template-file <path>', 'read template_code from a file')
    .addOption(
      new Option('--confidence <score>', 'confidence_score, 0 to 1').argParser(number('--confidence')),
    )
    .addOption(new Option('--tags <a,b>', 'tags, comma-separated').argParser(parseList))
    .option('--id <uuid>', 'pattern_id (default: derived from the message, so replays give the same id)')
    .addOption(
      new Option('--data <json>', 'more fields as a JSON object; flags win').argParser(json('--data')),
    )
    .action(async (o: Record<string, unknown> & CommonOptions) => {
      const template =
        typeof o.templateFile === 'string' ? await readFile(o.templateFile, 'utf8') : (o.template as string);
      const data = {
        ...(o.data as Record<string, unknown> | undefined),
        ...defined({
          pattern_name: o.name,
          pattern_type: o.type,
          language: o.language,
          category: o.category,
          description: o.description,
          template_code: template,
          confidence_score: o.confidence,
          tags: o.tags,
          pattern_id: o.id,
        }),
      };
      await send('insert', { data } as RequestBody<'insert'>, o);
    });
  return withCommon(command);
}

function searchCommand(): Command {
  const command = new Command('search')
    .description('Full-text and fuzzy search over name, description, template and tags.')
    .argument('<query>', 'words to look for, e.g. "async database"')
    .option('--language <language>', 'only this language')
    .option('--type <type>', 'only this pattern_type')
    .option('--category <category>', 'only this category')
    .addOption(new Option('--tags <a,b>', 'only patterns with all these tags').argParser(parseList))
    .addOption(
      new Option('--min-confidence <score>', 'confidence_score at least').argParser(
        number('--min-confidence'),
      ),
    )
    .addOption(
      new Option('--min-success-rate <rate>', 'success_rate at least').argParser(
        number('--min-success-rate'),
      ),
    )
    .option('--include-deprecated', 'include deprecated patterns')
    .addOption(
      new Option('--limit <n>', 'at most n results (1-1000)').default(10).argParser(integer('--limit')),
    )
    .addOption(new Option('--offset <n>', 'skip n results').default(0).argParser(integer('--offset')))
    .action(async (query: string, o: Record<string, unknown> & CommonOptions) => {
      const filters = defined({
        language: o.language,
        pattern_type: o.type,
        category: o.category,
        tags: o.tags,
        min_confidence_score: o.minConfidence,
        min_success_rate: o.minSuccessRate,
        include_deprecated: o.includeDeprecated,
      });
      await send(
        'search',
        {
          search_query: query,
          ...(Object.keys(filters).length > 0 ? { filters } : {}),
          limit: o.limit,
          offset: o.offset,
        } as RequestBody<'search'>,
        o,
      );
    });
  return withCommon(command);
}

function usageCommand(): Command {
  const command = new Command('usage')
    .description('Record one use of a pattern (operation record_usage on pattern.usage).')
    .argument('<pattern-id>', 'the pattern that was used')
    .addOption(new Option('--success', 'the use succeeded').conflicts('failure'))
    .addOption(new Option('--failure', 'the use failed'))
    .addOption(new Option('--quality-before <score>', '0 to 1').argParser(number('--quality-before')))
    .addOption(new Option('--quality-after <score>', '0 to 1').argParser(number('--quality-after')))
    .addOption(
      new Option('--execution-time-ms <ms>', 'how long it ran').argParser(number('--execution-time-ms')),
    )
    .option('--file-path <path>', 'where it was used')
    .option('--project-id <id>', 'which project used it')
    .option('--error-message <text>', 'why it failed')
    .addOption(new Option('--tags <a,b>', 'tags, comma-separated').argParser(parseList))
    .action(async (patternId: string, o: Record<string, unknown> & CommonOptions) => {
      if (!o.success && !o.failure) {
        process.stderr.write('patterns: say whether the use succeeded: --success or --failure\n');
        process.exitCode = EXIT.badInput;
        return;
      }
      const usage_data = defined({
        success: Boolean(o.success),
        quality_before: o.qualityBefore,
        quality_after: o.qualityAfter,
        execution_time_ms: o.executionTimeMs,
        file_path: o.filePath,
        project_id: o.projectId,
        error_message: o.errorMessage,
        tags: o.tags,
      });
      await send('record_usage', { pattern_id: patternId, usage_data } as RequestBody<'record_usage'>, o);
    });
  return withCommon(command, true);
}

const ANALYTICS_OPERATIONS = ALL_OPERATIONS.filter(
  (o) => OPERATIONS[o].cli === 'analytics',
) as OperationOf<'pattern.analytics.compute'>[];

function analyticsCommand(): Command {
  const command = new Command('analytics')
    .description('Compute analytics for one pattern or all of them (default: the last 30 days).')
    .argument('[pattern-id]', 'one pattern; all patterns when left out')
    .addOption(
      new Option('--operation <op>', 'what to compute')
        .choices(ANALYTICS_OPERATIONS)
        .default('compute_analytics'),
    )
    .option('--from <iso-time>', 'period_start, e.g. 2026-11-01T00:00:00Z')
    .option('--to <iso-time>', 'period_end')
    .addOption(new Option('--by <bucket>', 'get_usage_trends buckets').choices(['day', 'week', 'month']))
    .addOption(
      new Option('--limit <n>', 'get_effectiveness: at most n patterns').argParser(integer('--limit')),
    )
    .action(async (patternId: string | undefined, o: Record<string, unknown> & CommonOptions) => {
      const operation = o.operation as OperationOf<'pattern.analytics.compute'>;
      const body = defined({
        pattern_id: operation === 'get_global_stats' ? undefined : patternId,
        period_start: o.from,
        period_end: o.to,
        aggregate_by: operation === 'get_usage_trends' ? o.by : undefined,
        limit: operation === 'get_effectiveness' ? o.limit : undefined,
      });
      if (operation === 'get_global_stats' && patternId) {
        process.stderr.write('patterns: get_global_stats covers all patterns; leave out the pattern id\n');
        process.exitCode = EXIT.badInput;
        return;
      }
      await send(operation, body as RequestBody<typeof operation>, o);
    });
  return withCommon(command);
}

function resultCommand(): Command {
  const command = new Command('result')
    .description(
      'What became of an earlier request (late-reply pickup): its recorded result, asked through Kafka by its correlation id, e.g. after a call timed out.',
    )
    .argument('<correlation-id>', "the request's correlation id (or, with --identity, its message identity)")
    .option(
      '--identity',
      'the argument is a message identity: cid:<uuid>, hdr:<base64> or off:<topic>/<p>/<offset>[@<timestamp> or #<fingerprint>]',
    )
    .addOption(
      new Option(
        '--operation <op>',
        'the request\'s operation, so that a read is answered "not_stored"',
      ).choices(ALL_OPERATIONS),
    )
    .addHelpText(
      'after',
      `
Prints the get_result answer: data.status "applied" with data.result (the result first published), or
"unknown" (not applied yet, failed and dead-lettered, or never received) or "not_stored" (a read).
Exit code 0 when applied with success, 1 applied with success false, 4 when nothing is recorded.`,
    )
    .action(async (id: string, o: Record<string, unknown> & CommonOptions) => {
      const target = o.identity ? { request_identity: id } : { request_correlation_id: id };
      await send(
        'get_result',
        { ...target, request_operation: (o.operation as Operation | undefined) ?? null },
        o,
        (result) => {
          const lookup = result.data;
          if (!result.success || !lookup) return EXIT.failedResult;
          if (lookup.status === 'applied') return lookup.result.success ? EXIT.ok : EXIT.failedResult;
          process.stderr.write(`patterns: ${lookup.status}: ${lookup.hint}\n`);
          return EXIT.notRecorded;
        },
      );
    });
  return withCommon(command);
}

/** Any operation, with its fields as JSON: what the registry declares, whether or not it has flags. */
function requestCommand(): Command {
  const command = new Command('request')
    .description('Send any operation with its fields as a JSON object (operations.ts lists them all).')
    .addArgument(new Argument('<operation>', 'the operation').choices(ALL_OPERATIONS))
    .argument(
      '[fields]',
      'the request fields as a JSON object, e.g. \'{"pattern_name":"X","language":"go"}\'',
    )
    .option('--fields-file <path>', 'read the fields from a file (- for standard input)')
    .addHelpText(
      'after',
      `
Operations:
${ALL_OPERATIONS.map((o) => `  ${o.padEnd(20)} ${OPERATIONS[o].summary}`).join('\n')}`,
    )
    .action(
      async (
        operation: Operation,
        fields: string | undefined,
        o: { fieldsFile?: string } & CommonOptions,
      ) => {
        const text =
          o.fieldsFile === undefined
            ? (fields ?? '{}')
            : await readFile(o.fieldsFile === '-' ? '/dev/stdin' : o.fieldsFile, 'utf8');
        let body: Record<string, unknown>;
        try {
          body = json('the fields')(text);
        } catch (err) {
          process.stderr.write(`patterns: ${(err as Error).message}\n`);
          process.exitCode = EXIT.badInput;
          return;
        }
        await send(operation, body as RequestBody<Operation>, o);
      },
    );
  return withCommon(command, true);
}

// One builder per CLI command the registry names: a command declared without one does not compile.
const BUILDERS: Record<CliCommand, () => Command> = {
  insert: insertCommand,
  search: searchCommand,
  usage: usageCommand,
  analytics: analyticsCommand,
  result: resultCommand,
};

export function requestCommands(): Command[] {
  const named = new Set(ALL_OPERATIONS.flatMap((o) => OPERATIONS[o].cli ?? []));
  return [...[...named].map((c) => BUILDERS[c]()), requestCommand()];
}
