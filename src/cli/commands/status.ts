// `patterns status`: one view of the lanes' consumer groups, their lag, its topics and its recent dead letters, for a
// person (tables, --watch) or a script (--json, exit code non-zero when a topic is missing or no worker
// runs).
import { Command, Option } from 'commander';
import { loadConfig } from '../../config.ts';
import { TopicNames } from '../../contracts/topics.ts';
import { createKafka } from '../../messaging/kafka/client.ts';
import { gatherStatus, type WorkerStatus } from '../../messaging/operations/status.ts';
import { compactTable, printableJson, wholeNumber } from '../options.ts';

export function renderStatus(s: WorkerStatus): string {
  const out: string[] = [];
  out.push(`at ${s.at}`);
  const groups = compactTable(['lane', 'group', 'state', 'members']);
  for (const g of s.groups) groups.push([g.lane, g.id, g.state, g.members.length]);
  out.push(groups.toString());
  const all = s.groups.flatMap((g) => g.members);
  if (all.length > 0) {
    const members = compactTable(['member', 'lane', 'client', 'host', 'partitions']);
    for (const m of all) {
      const held = Object.entries(m.partitions)
        .map(([topic, ps]) => `${topic}[${ps.join(',')}]`)
        .join(' ');
      members.push([m.memberId, m.lane, m.clientId, m.host, held || '(none)']);
    }
    out.push(members.toString());
  }
  const lag = compactTable(['topic', 'partition', 'committed', 'end', 'lag']);
  for (const l of s.lag) lag.push([l.topic, l.partition, l.committed ?? '-', l.end, l.lag]);
  out.push(lag.toString());
  out.push(
    `lag: ${s.totalLag} in total` +
      (s.totalLag > 0
        ? ` (${Object.entries(s.lagByTopic)
            .filter(([, n]) => n > 0)
            .map(([t, n]) => `${t} ${n}`)
            .join(', ')})`
        : ''),
  );
  for (const l of s.lag) {
    if (!l.held) continue;
    // A transactional producer holds one for milliseconds; one that stays is worth a look.
    out.push(
      `note: ${l.topic}/${l.partition}: ${l.held.records} records are behind a transaction a producer ` +
        `opened at offset ${l.held.at} and has not ended; no reader gets past it until it ends (the broker ` +
        'aborts it after at most transaction.max.timeout.ms)',
    );
  }
  const codes = Object.entries(s.deadLettersLastHour.byCode)
    .map(([code, n]) => `${code} ${n}`)
    .join(', ');
  out.push(`dead letters in the last hour: ${s.deadLettersLastHour.total}${codes ? ` (${codes})` : ''}`);
  const topics = compactTable(['topic', 'role', 'partitions']);
  for (const t of s.topics) {
    topics.push([
      t.name,
      t.role,
      !t.exists
        ? 'MISSING'
        : t.expected !== undefined
          ? `${t.partitions} (expected ${t.expected})`
          : t.partitions,
    ]);
  }
  out.push(topics.toString());
  out.push(s.problems.length === 0 ? 'ok' : s.problems.map((p) => `problem: ${p}`).join('\n'));
  return `${out.join('\n')}\n`;
}

interface StatusFlags {
  json?: boolean;
  watch?: boolean;
  interval: number;
  partitions?: number;
}

export function statusCommand(): Command {
  return new Command('status')
    .description(
      "Each lane's consumer group and its members, lag per partition, dead letters in the last hour, and the topics.",
    )
    .option('--json', 'print JSON (the default when stdout is not a terminal)')
    .option('--watch', 'refresh until interrupted')
    .addOption(
      new Option('--interval <s>', 'seconds between refreshes with --watch')
        .default(5)
        .argParser(wholeNumber('--interval', 1)),
    )
    .addOption(
      new Option(
        '--partitions <n>',
        'partitions every request topic should have (default: they agree)',
      ).argParser(wholeNumber('--partitions', 1)),
    )
    .addHelpText(
      'after',
      `
Reads the lanes' groups (KAFKA_GROUP_ID.writes, .reads, .analytics) and the topics under TOPIC_PREFIX
without joining them. Exit code 1 when a topic is missing, the request topics' partitions differ from
--partitions (or each other), a lane's group has no members, or workers of an earlier version still
read in the group KAFKA_GROUP_ID; 0 otherwise.`,
    )
    .action(async (o: StatusFlags) => {
      const config = loadConfig();
      const options = {
        kafka: createKafka(config, undefined, '-status'),
        names: new TopicNames(config.TOPIC_PREFIX),
        groupId: config.KAFKA_GROUP_ID,
        requestPartitions: o.partitions,
        clientId: config.KAFKA_CLIENT_ID,
      };
      const json = Boolean(o.json) || !process.stdout.isTTY;
      for (;;) {
        const status = await gatherStatus(options);
        process.exitCode = status.problems.length === 0 ? 0 : 1;
        if (json) process.stdout.write(`${printableJson(status)}\n`);
        else {
          // Redraw in place on a terminal, like watch(1).
          if (o.watch && process.stdout.isTTY) process.stdout.write('\x1b[2J\x1b[H');
          process.stdout.write(renderStatus(status));
        }
        if (!o.watch) return;
        await new Promise((resolve) => setTimeout(resolve, o.interval * 1000));
      }
    });
}
