import { trace } from '@opentelemetry/api';
import pino from 'pino';
import { type LineSink, type LogFormat, prettyDestination, resolveLogFormat } from './pretty-log';

/** The structured logger every component takes. JSON lines on stdout, or readable ones in a terminal. */
export type Logger = pino.Logger;

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  level: string;
  /** Fields on every line, e.g. `{ replicaId }`. */
  base?: Record<string, unknown>;
  /** `json` (the default here), `pretty`, or `auto`: pretty when stdout is a terminal. */
  format?: LogFormat;
  /** Whether stdout is a terminal, for `auto`. Default `process.stdout.isTTY`. */
  isTTY?: boolean;
  /** Where pretty lines go. Default `process.stdout`. */
  prettySink?: LineSink;
}

/**
 * A JSON logger, or in `pretty` format one that writes `HH:MM:SS.mmm LEVEL message key=value` lines.
 * Secrets never go in log fields: credentials are redacted by path as a second line of defence, in
 * either format (pretty lines are made from the redacted JSON).
 * @example
 * const logger = createLogger({ level: config.logLevel, format: config.logFormat, base: { replicaId } });
 */
export function createLogger(options: LoggerOptions): Logger {
  const format = resolveLogFormat(options.format ?? 'json', options.isTTY ?? process.stdout.isTTY);
  const pinoOptions: pino.LoggerOptions = {
    level: options.level,
    base: options.base ?? {},
    timestamp: pino.stdTimeFunctions.isoTime,
    // Inside a traced span, every line names it, so logs and traces find each other.
    mixin: traceIds,
    redact: { paths: ['apiKey', 'token', '*.apiKey', '*.token', 'headers.authorization', 'headers["x-api-key"]'] },
  };
  return format === 'pretty' ? pino(pinoOptions, prettyDestination(options.prettySink)) : pino(pinoOptions);
}

/** `trace_id` and `span_id` of the active span, when there is a real (sampled or recorded) one. */
function traceIds(): Record<string, string> {
  const span = trace.getActiveSpan();
  if (!span) return {};
  const { traceId, spanId } = span.spanContext();
  if (!trace.isSpanContextValid(span.spanContext())) return {};
  return { trace_id: traceId, span_id: spanId };
}

/** A logger that writes nothing, for tests. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
