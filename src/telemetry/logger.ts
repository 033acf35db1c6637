import { logContext } from './tracing.ts';
import { pino, type DestinationStream, type Logger, type LoggerOptions } from 'pino';
import { redactUrl } from './redact.ts';

export type { Logger };

const SECRET_PATHS = [
  'password',
  '*.password',
  'config.KAFKA_SASL_PASSWORD',
  'KAFKA_SASL_PASSWORD',
  'sasl.password',
  '*.sasl.password',
];

export function createLogger(
  level: string = 'info',
  options: LoggerOptions = {},
  destination?: DestinationStream,
): Logger {
  const settings: LoggerOptions = {
    level,
    base: { service: 'pattern-worker' },
    // trace_id, span_id and correlation_id of the message being handled, when there is one.
    mixin: logContext,
    redact: { paths: SECRET_PATHS, censor: '***' },
    formatters: {
      log(object) {
        // Connection strings can hide anywhere (error messages included); scrub every string value.
        for (const [key, value] of Object.entries(object)) {
          if (typeof value === 'string') object[key] = redactUrl(value);
        }
        return object;
      },
    },
    hooks: {
      logMethod(args, method) {
        const redacted = args.map((a: unknown) => (typeof a === 'string' ? redactUrl(a) : a)) as Parameters<
          typeof method
        >;
        method.apply(this, redacted);
      },
    },
    ...options,
  };
  return destination ? pino(settings, destination) : pino(settings);
}
