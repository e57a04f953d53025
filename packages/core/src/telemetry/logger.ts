import { trace } from '@opentelemetry/api';
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
    // Inside a traced span, every line names it, so logs and traces find each other.
    mixin: traceIds,
    redact: { paths: ['apiKey', 'token', '*.apiKey', '*.token', 'headers.authorization', 'headers["x-api-key"]'] },
  });
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
