import { Command } from 'commander';
import { loadConfig } from '../../config.ts';
import { createPool } from '../../db/pool.ts';
import { migrate } from '../../db/migrate.ts';
import { redactUrl } from '../../telemetry/redact.ts';

export function migrateCommand(): Command {
  return new Command('migrate')
    .description('Apply pending SQL migrations from sql/ (safe to run from several replicas at once).')
    .addHelpText(
      'after',
      '\nReads DATABASE_URL. Each migration runs in its own transaction under an advisory lock; a migration\n' +
        'edited after it was applied is an error (add a new one instead).',
    )
    .action(async () => {
      const config = loadConfig();
      const pool = createPool({ connectionString: config.DATABASE_URL, min: 0, max: 1 });
      try {
        const report = await migrate(pool);
        for (const name of report.applied) process.stdout.write(`applied  ${name}\n`);
        process.stdout.write(
          `${report.applied.length} applied, ${report.alreadyApplied.length} already applied ` +
            `(${redactUrl(config.DATABASE_URL)})\n`,
        );
      } finally {
        await pool.end();
      }
    });
}
