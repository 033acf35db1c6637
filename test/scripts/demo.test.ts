// `npm run demo` keeps working: the seed's four examples through Kafka request/reply, exit 0.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { childCoverageEnv } from '../support/child-coverage.ts';
import { uniquePrefix } from '../support/kafka.ts';

const run = promisify(execFile);

describe('npm run demo', () => {
  it('prints the four results and exits 0', { timeout: 90_000 }, async () => {
    const { stdout } = await run(process.execPath, [join(import.meta.dirname, '../../scripts/demo.ts')], {
      env: { ...process.env, TOPIC_PREFIX: uniquePrefix(), LOG_LEVEL: 'warn', ...childCoverageEnv() },
      timeout: 80_000,
    });
    expect(stdout).toContain('"pattern_name": "AsyncDatabaseWriterPattern"');
    expect(stdout).toContain('"quality_improvement": 0.23');
    expect(stdout).toMatch(/"total_usage_count": 1,[\s\S]*"success_rate": 1,/);
    expect(stdout).toContain('four requests, four correlated results');
  });
});
