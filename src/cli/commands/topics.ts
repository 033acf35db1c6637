import { Command, Option } from 'commander';
import { loadConfig } from '../../config.ts';
import { TopicNames } from '../../contracts/topics.ts';
import { createKafka } from '../../messaging/kafka/client.ts';
import {
  createTopics,
  DEFAULT_LAYOUT,
  missingTopics,
  REPLY_RETENTION_MS,
  RETENTION_MS,
} from '../../messaging/kafka/topic-admin.ts';

function describeRetention(ms: string): string {
  if (ms === '-1') return 'forever';
  const hours = Number(ms) / 3_600_000;
  return hours < 24 ? `${hours} hour${hours === 1 ? '' : 's'}` : `${hours / 24} days`;
}

const positive = (name: string) => (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive integer, got "${value}"`);
  return n;
};

export function topicsCommand(): Command {
  const topics = new Command('topics').description(
    'Create or check the request, result and dead-letter topics.',
  );
  topics
    .command('create')
    .description(
      'Create every missing topic (requests kept forever, results 7 days, dead letters 30 days, replies 1 hour).',
    )
    .addOption(
      new Option('--partitions <n>', 'partitions per request topic')
        .default(DEFAULT_LAYOUT.requestPartitions)
        .argParser(positive('--partitions')),
    )
    .addOption(
      new Option('--result-partitions <n>', 'partitions per result topic')
        .default(DEFAULT_LAYOUT.resultPartitions)
        .argParser(positive('--result-partitions')),
    )
    .addOption(
      new Option('--reply-partitions <n>', 'partitions of the shared reply topic (one per concurrent client)')
        .default(DEFAULT_LAYOUT.replyPartitions)
        .argParser(positive('--reply-partitions')),
    )
    .addOption(
      new Option('--replication-factor <n>', 'replicas per partition')
        .default(DEFAULT_LAYOUT.replicationFactor)
        .argParser(positive('--replication-factor')),
    )
    .action(
      async (opts: {
        partitions: number;
        resultPartitions: number;
        replyPartitions: number;
        replicationFactor: number;
      }) => {
        const config = loadConfig();
        const admin = createKafka(config).admin();
        await admin.connect();
        try {
          const names = new TopicNames(config.TOPIC_PREFIX);
          const created = await createTopics(admin, names, {
            requestPartitions: opts.partitions,
            resultPartitions: opts.resultPartitions,
            dlqPartitions: DEFAULT_LAYOUT.dlqPartitions,
            replicationFactor: opts.replicationFactor,
            replyPartitions: opts.replyPartitions,
          });
          const rows = [
            ...names.all().map((t) => [t.name, t.role, RETENTION_MS[t.role]] as const),
            [names.reply(), 'reply', REPLY_RETENTION_MS] as const,
          ];
          for (const [name, role, retentionMs] of rows) {
            const state = created.includes(name) ? 'created' : 'exists ';
            process.stdout.write(
              `${state}  ${name.padEnd(48)} ${role.padEnd(8)} retention ${describeRetention(retentionMs)}\n`,
            );
          }
        } finally {
          await admin.disconnect();
        }
      },
    );
  topics
    .command('check')
    .description('Exit non-zero and name the topics that are missing.')
    .action(async () => {
      const config = loadConfig();
      const admin = createKafka(config).admin();
      await admin.connect();
      try {
        const missing = await missingTopics(admin, new TopicNames(config.TOPIC_PREFIX));
        if (missing.length > 0) {
          process.stderr.write(`missing topics: ${missing.join(', ')}\n`);
          process.exitCode = 1;
        } else process.stdout.write('all topics exist\n');
      } finally {
        await admin.disconnect();
      }
    });
  return topics;
}
