import { Command, Option } from 'commander';
import { loadConfig } from '../../config.ts';
import { TopicNames } from '../../contracts/topics.ts';
import { createKafka } from '../../messaging/kafka.ts';
import { createTopics, DEFAULT_LAYOUT, missingTopics, RETENTION_MS } from '../../messaging/topic-admin.ts';

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
      'Create every missing topic (request topics keep data forever, results 7 days, dead letters 30 days).',
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
      new Option('--replication-factor <n>', 'replicas per partition')
        .default(DEFAULT_LAYOUT.replicationFactor)
        .argParser(positive('--replication-factor')),
    )
    .action(async (opts: { partitions: number; resultPartitions: number; replicationFactor: number }) => {
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
        });
        for (const t of names.all()) {
          const state = created.includes(t.name) ? 'created' : 'exists ';
          const retention =
            RETENTION_MS[t.role] === '-1' ? 'forever' : `${Number(RETENTION_MS[t.role]) / 86_400_000} days`;
          process.stdout.write(`${state}  ${t.name.padEnd(48)} ${t.role.padEnd(8)} retention ${retention}\n`);
        }
      } finally {
        await admin.disconnect();
      }
    });
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
