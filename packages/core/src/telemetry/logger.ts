import pino from 'pino';

/** The structured logger every component takes. JSON lines on stdout. */
export type Logger = pino.Logger;

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  level: string;
  /** Fields on every line, e.g. `{ replicaId }`. */
  base?: Record<string, unknown>;
}

/**
 * A JSON logger. Secrets never go in log fields: credentials are redacted by path as a second line
 * of defence.
 */
export function createLogger(options: LoggerOptions): Logger {
  return pino({
    level: options.level,
    base: options.base ?? {},
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: ['apiKey', 'token', '*.apiKey', '*.token', 'headers.authorization', 'headers["x-api-key"]'] },
  });
}

/** A logger that writes nothing, for tests. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
