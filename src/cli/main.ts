// `patterns` command line: one subcommand per file in ./commands.
import { Command, CommanderError } from 'commander';
import { ConfigError } from '../config.ts';
import { dlqCommand } from './commands/dlq.ts';
import { migrateCommand } from './commands/migrate.ts';
import { replayCommand } from './commands/replay.ts';
import { statusCommand } from './commands/status.ts';
import { requestCommands } from './commands/requests.ts';
import { topicsCommand } from './commands/topics.ts';
import { workerCommand } from './commands/worker.ts';

// kafkajs' request queue computes a negative delay on Node 24 and Node warns; the delay is clamped and harmless.
process.removeAllListeners('warning');
process.on('warning', (warning) => {
  if (warning.name !== 'TimeoutNegativeWarning')
    process.stderr.write(`${warning.name}: ${warning.message}\n`);
});

export function buildProgram(): Command {
  const program = new Command('patterns')
    .description(
      'Pattern Learning Engine worker: Kafka requests applied to PostgreSQL, with correlated results.',
    )
    .showHelpAfterError('(run with --help for usage)')
    .configureHelp({ sortSubcommands: true });
  program.addCommand(migrateCommand());
  program.addCommand(topicsCommand());
  program.addCommand(workerCommand());
  program.addCommand(replayCommand());
  program.addCommand(dlqCommand());
  program.addCommand(statusCommand());
  for (const command of requestCommands()) program.addCommand(command);
  // Usage errors become exit code 2 (main below) instead of commander's process.exit(1).
  const all = (c: Command): Command[] => [c, ...c.commands.flatMap(all)];
  for (const command of all(program)) command.exitOverride();
  return program;
}

export async function main(argv: string[] = process.argv): Promise<void> {
  try {
    await buildProgram().parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      process.exitCode = err.exitCode === 0 ? 0 : 2;
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
