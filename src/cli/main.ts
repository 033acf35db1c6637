// `patterns` command line: one subcommand per file in ./commands.
import { Command, CommanderError } from 'commander';
import { ConfigError } from '../config.ts';
import { migrateCommand } from './commands/migrate.ts';

export function buildProgram(): Command {
  const program = new Command('patterns')
    .description(
      'Pattern Learning Engine worker: Kafka requests applied to PostgreSQL, with correlated results.',
    )
    .showHelpAfterError('(run with --help for usage)')
    .configureHelp({ sortSubcommands: true });
  program.addCommand(migrateCommand());
  return program;
}

export async function main(argv: string[] = process.argv): Promise<void> {
  try {
    await buildProgram().parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      process.exitCode = err.exitCode;
      return;
    }
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exitCode = 2;
      return;
    }
    process.stderr.write(`patterns: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  }
}

await main();
