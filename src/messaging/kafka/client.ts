// Builds the Kafka client from configuration: brokers, client id, SASL and TLS, logs through pino. The
// client library (kafkajs) is imported only under src/messaging/kafka/ (an eslint rule); the rest of the
// code passes these handles around by the names below.
import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import {
  Kafka,
  logLevel,
  type Admin,
  type IHeaders,
  type KafkaConfig,
  type KafkaMessage,
  type Producer,
  type SASLOptions,
  type logCreator,
} from 'kafkajs';
import { ConfigError, type Config } from '../../config.ts';
import type { Logger } from '../../telemetry/logger.ts';

const LEVELS: Record<number, 'error' | 'warn' | 'info' | 'debug'> = {
  [logLevel.ERROR]: 'error',
  [logLevel.WARN]: 'warn',
  [logLevel.INFO]: 'info',
  [logLevel.DEBUG]: 'debug',
};

// Warnings kafkajs prints on every start that say nothing about this deployment: the partitioner
// change of kafkajs 2.0 (we set none) and bounded retries on the idempotent producer (a failed send is
// retried by re-processing the message, whose effect is already deduplicated).
const KNOWN_NOISE = /switched default partitioner|Limiting retries for the idempotent producer/;

function pinoLogCreator(logger: Logger): logCreator {
  const kafkaLogger = logger.child({ component: 'kafkajs' });
  return () =>
    ({ level, log }) => {
      const { message, ...rest } = log;
      // kafkajs logs every retried request at ERROR; it is noise unless the retry budget runs out.
      const effective = KNOWN_NOISE.test(message)
        ? 'debug'
        : level === logLevel.ERROR && /retry|reconnect|not available/i.test(message)
          ? 'warn'
          : LEVELS[level];
      kafkaLogger[effective ?? 'info'](rest, message);
    };
}

export function saslOptions(config: Config): KafkaConnection['sasl'] {
  const {
    KAFKA_SASL_MECHANISM: mechanism,
    KAFKA_SASL_USERNAME: username,
    KAFKA_SASL_PASSWORD: password,
  } = config;
  if (!mechanism || !username || !password) return undefined;
  return { mechanism, username, password };
}

function readPem(variable: string, path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    const reason = err instanceof Error && 'code' in err ? String(err.code) : 'unreadable';
    throw new ConfigError(`Invalid configuration:\n  ${variable}: cannot read "${path}" (${reason})`);
  }
}

/** TLS options for the brokers: false when KAFKA_SSL is off; certificates are verified unless told not to. */
export function tlsOptions(config: Config): ConnectionOptions | false {
  if (!config.KAFKA_SSL) return false;
  const tls: ConnectionOptions = { rejectUnauthorized: config.KAFKA_SSL_REJECT_UNAUTHORIZED };
  if (config.KAFKA_SSL_CA_FILE) tls.ca = readPem('KAFKA_SSL_CA_FILE', config.KAFKA_SSL_CA_FILE);
  if (config.KAFKA_SSL_CERT_FILE) tls.cert = readPem('KAFKA_SSL_CERT_FILE', config.KAFKA_SSL_CERT_FILE);
  if (config.KAFKA_SSL_KEY_FILE) tls.key = readPem('KAFKA_SSL_KEY_FILE', config.KAFKA_SSL_KEY_FILE);
  return tls;
}

export function kafkaConfig(config: Config, logger?: Logger, clientIdSuffix = ''): KafkaConfig {
  const sasl = saslOptions(config);
  const kafka: KafkaConfig = {
    clientId: `${config.KAFKA_CLIENT_ID}${clientIdSuffix}`,
    brokers: config.KAFKA_BROKERS,
    connectionTimeout: 3_000,
    requestTimeout: 30_000,
    retry: { initialRetryTime: 300, retries: 8 },
    logLevel: logger ? logLevel.WARN : logLevel.NOTHING,
  };
  const tls = tlsOptions(config);
  if (tls) kafka.ssl = tls;
  if (sasl) kafka.sasl = sasl as SASLOptions;
  if (logger) kafka.logCreator = pinoLogCreator(logger);
  return kafka;
}

export function createKafka(config: Config, logger?: Logger, clientIdSuffix = ''): Kafka {
  return new Kafka(kafkaConfig(config, logger, clientIdSuffix));
}

/** The Kafka client handle the rest of the code passes around. */
export type KafkaClient = Kafka;
export type KafkaAdmin = Admin;
export type KafkaProducer = Producer;
export type KafkaHeaders = IHeaders;
export type KafkaFetchedMessage = KafkaMessage;

/** Where and how to reach the brokers, as plain settings: what PatternClient takes, whatever the client
 * library behind this module. */
export interface KafkaConnection {
  brokers: string[];
  sasl?: { mechanism: 'plain' | 'scram-sha-256' | 'scram-sha-512'; username: string; password: string };
  /** TLS: true for the system's certificate authorities, or Node's TLS options (ca, cert, key, ...). */
  tls?: boolean | ConnectionOptions;
}

/** The connection settings of a configuration (KAFKA_BROKERS, KAFKA_SASL_*, KAFKA_SSL*). */
export function kafkaConnection(config: Config): KafkaConnection {
  const connection: KafkaConnection = { brokers: config.KAFKA_BROKERS };
  const sasl = saslOptions(config);
  if (sasl) connection.sasl = sasl;
  const tls = tlsOptions(config);
  if (tls) connection.tls = tls;
  return connection;
}

/** A client for a connection that logs nothing (PatternClient's). */
export function quietKafkaClient(clientId: string, connection: KafkaConnection): KafkaClient {
  return new Kafka({
    clientId,
    brokers: connection.brokers,
    logLevel: logLevel.NOTHING,
    ...(connection.sasl ? { sasl: connection.sasl as SASLOptions } : {}),
    ...(connection.tls ? { ssl: connection.tls } : {}),
  });
}
