import { createLogger, type Logger } from '../telemetry/logger.ts';

/** JSON logs by default; LOG_FORMAT=pretty for people reading a terminal (npm run dev). */
export function cliLogger(level: string): Logger {
  if (process.env.LOG_FORMAT === 'pretty') {
    return createLogger(level, {
      transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'HH:MM:ss.l' } },
    });
  }
  return createLogger(level);
}
