// The `patterns` command tree: one subcommand per file in ./commands (main.ts runs it).
import { Command } from 'commander';
import { dlqCommand } from './commands/dlq.ts';
import { migrateCommand } from './commands/migrate.ts';
import { replayCommand } from './commands/replay.ts';
import { statusCommand } from './commands/status.ts';
import { requestCommands } from './commands/requests.ts';
import { topicsCommand } from './commands/topics.ts';
import { workerCommand } from './commands/worker.ts';

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
