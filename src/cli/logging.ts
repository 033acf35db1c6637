import { pino } from 'pino';
import { createLogger, type Logger } from '../telemetry/logger.ts';

/** JSON logs by default; LOG_FORMAT=pretty for people reading a terminal (npm run dev). */
export function cliLogger(level: string, stream: 'stdout' | 'stderr' = 'stdout'): Logger {
  const fd = stream === 'stdout' ? 1 : 2;
  if (process.env.LOG_FORMAT === 'pretty') {
    return createLogger(level, {
      transport: {
        target: 'pino-pretty',
        options: { colorize: true, translateTime: 'HH:MM:ss.l', destination: fd },
      },
    });
  }
  return createLogger(level, {}, fd === 1 ? undefined : pino.destination(2));
}
