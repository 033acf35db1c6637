// Builds the Kafka client from configuration: brokers, client id, SASL and TLS. The client library
// (@platformatic/kafka) is imported only under src/messaging/kafka/ (an eslint rule); the rest of the code
// holds a KafkaClient and the project's own types that this module's neighbours export.
import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import type { BaseOptions, SASLOptions } from '@platformatic/kafka';
import { ConfigError, type Config } from '../../config.ts';
import type { Logger } from '../../telemetry/logger.ts';
import { KafkaAdmin } from './admin.ts';

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

const MECHANISMS = {
  plain: 'PLAIN',
  'scram-sha-256': 'SCRAM-SHA-256',
  'scram-sha-512': 'SCRAM-SHA-512',
} as const satisfies Record<NonNullable<KafkaConnection['sasl']>['mechanism'], SASLOptions['mechanism']>;

/** A connection and a client id: what every producer, consumer and admin of this process is made from. */
export class KafkaClient {
  readonly connection: KafkaConnection;
  readonly clientId: string;
  readonly logger: Logger | undefined;

  constructor(clientId: string, connection: KafkaConnection, logger?: Logger) {
    this.clientId = clientId;
    this.connection = connection;
    this.logger = logger;
  }

  /** The library's options for a client of this connection; `suffix` tells its connections apart. */
  options(suffix = ''): BaseOptions {
    const { brokers, sasl, tls } = this.connection;
    const options: BaseOptions = {
      clientId: `${this.clientId}${suffix}`,
      bootstrapBrokers: brokers,
      connectTimeout: 3_000,
      requestTimeout: 30_000,
      retries: 8,
      retryDelay: 300,
    };
    if (sasl)
      options.sasl = {
        mechanism: MECHANISMS[sasl.mechanism],
        username: sasl.username,
        password: sasl.password,
      };
    if (tls) options.tls = tls === true ? {} : tls;
    return options;
  }

  /** An admin client; close it with disconnect(). */
  admin(): KafkaAdmin {
    return new KafkaAdmin(this.options('-admin'));
  }
}

export function createKafka(config: Config, logger?: Logger, clientIdSuffix = ''): KafkaClient {
  return new KafkaClient(`${config.KAFKA_CLIENT_ID}${clientIdSuffix}`, kafkaConnection(config), logger);
}

/** A client for a connection that logs nothing (PatternClient's). */
export function quietKafkaClient(clientId: string, connection: KafkaConnection): KafkaClient {
  return new KafkaClient(clientId, connection);
}
