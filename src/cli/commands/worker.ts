import { Command } from 'commander';
import { startWorkerApp } from '../../app.ts';
import { loadConfig } from '../../config.ts';
import { startTelemetry } from '../../telemetry/otel.ts';
import { cliLogger } from '../logging.ts';

export function workerCommand(): Command {
  return new Command('worker')
    .description(
      'Consume the request topics, apply them through the effect nodes and publish correlated results.',
    )
    .addHelpText(
      'after',
      `
Configuration comes from the environment (see README, "Configuration"): KAFKA_BROKERS, DATABASE_URL,
KAFKA_GROUP_ID, TOPIC_PREFIX, PORT, WORKER_LANES (some of writes,reads,analytics; default all, so that
searches can run in processes of their own), WORKER_WRITES_CONCURRENCY (WORKER_WRITES_CONCURRENCY_WHILE_READS
while searches run), WORKER_READS_CONCURRENCY, WORKER_ANALYTICS_CONCURRENCY, WORKER_MAX_ATTEMPTS,
WORKER_BATCH_SIZE, ...
OpenTelemetry: the standard OTEL_* variables, e.g. OTEL_EXPORTER_OTLP_ENDPOINT=http://collector:4318;
nothing is exported unless an exporter or endpoint is set. PORT also serves /metrics (Prometheus).

SIGTERM or SIGINT stops fetching, finishes what is in flight, publishes its results, commits offsets and
exits 0 within WORKER_SHUTDOWN_TIMEOUT_MS. A second signal exits at once; nothing is lost even then,
because effects are applied exactly once and redelivered messages republish their stored results.`,
    )
    .action(async () => {
      const config = loadConfig();
      // Before anything it instruments; configured by the OTEL_* variables.
      const telemetry = await startTelemetry();
      const logger = cliLogger(config.LOG_LEVEL);
      const app = await startWorkerApp({ config, logger, metricsEndpoint: telemetry.metricsEndpoint });
      await new Promise<void>((resolve) => {
        let stopping = false;
        const onSignal = (signal: NodeJS.Signals) => {
          if (stopping) {
            logger.warn({ signal }, 'second signal: exiting now');
            process.exit(130);
          }
          stopping = true;
          logger.info({ signal, bound_ms: config.WORKER_SHUTDOWN_TIMEOUT_MS }, 'shutting down');
          const timer = setTimeout(() => {
            logger.error('shutdown bound exceeded; exiting');
            process.exit(1);
          }, config.WORKER_SHUTDOWN_TIMEOUT_MS);
          timer.unref();
          app
            .stop()
            .then(() => telemetry.shutdown())
            .then(
              () => {
                logger.info('stopped cleanly');
                resolve();
              },
              (err: unknown) => {
                logger.error({ err }, 'shutdown failed');
                process.exit(1);
              },
            );
        };
        process.on('SIGTERM', onSignal);
        process.on('SIGINT', onSignal);
      });
    });
}
