/** How logs are written: `auto` picks `pretty` on a terminal and `json` otherwise. */
export type LogFormat = 'auto' | 'pretty' | 'json';

/** Where pretty lines go: `process.stdout`, or a test's collector. */
export interface LineSink {
  write(text: string): unknown;
}

/** pino's numeric levels, as a reader names them. */
const LEVEL_NAMES: Readonly<Record<number, string>> = {
  10: 'TRACE',
  20: 'DEBUG',
  30: 'INFO',
  40: 'WARN',
  50: 'ERROR',
  60: 'FATAL',
};

/** Fields every line has, shown in the line's head rather than as `key=value`. */
const HEAD_FIELDS = new Set(['level', 'time', 'msg']);

/**
 * `auto` resolved for a stream: `pretty` when it is a terminal, `json` otherwise, so a pipe, a file or
 * a log collector still gets one JSON object per line.
 * @example
 * resolveLogFormat('auto', process.stdout.isTTY); // 'pretty' in a terminal
 */
export function resolveLogFormat(format: LogFormat, isTTY: boolean | undefined): 'pretty' | 'json' {
  if (format === 'auto') return isTTY === true ? 'pretty' : 'json';
  return format;
}

/**
 * Turns one pino JSON line into a line for people: `HH:MM:SS.mmm LEVEL message key=value ...` (local
 * time), then an error's stack, indented, if a field holds one. It formats what pino wrote, so the
 * logger's redaction has already applied. A line that is not a JSON object is returned as it is.
 * @example
 * formatLogLine('{"level":30,"time":"2025-01-02T03:04:05.006Z","port":8080,"msg":"gateway ready"}');
 * // '03:04:05.006 INFO gateway ready port=8080' (in UTC)
 */
export function formatLogLine(line: string): string {
  const text = line.trimEnd();
  let record: unknown;
  try {
    record = JSON.parse(text);
  } catch {
    return text;
  }
  if (typeof record !== 'object' || record === null || Array.isArray(record)) return text;
  const fields = record as Record<string, unknown>;
  const head = [clock(fields.time), levelName(fields.level)];
  if (typeof fields.msg === 'string' && fields.msg !== '') head.push(fields.msg);
  const stacks: string[] = [];
  for (const [key, value] of Object.entries(fields)) {
    if (HEAD_FIELDS.has(key) || value === undefined) continue;
    const stack = stackOf(value);
    if (stack !== undefined) {
      // The stack already starts with the error's message; the field shows the message alone.
      head.push(
        `${key}=${formatValue((value as { message?: unknown }).message ?? (value as { type?: unknown }).type)}`,
      );
      stacks.push(stack);
    } else {
      head.push(`${key}=${formatValue(value)}`);
    }
  }
  return [head.join(' '), ...stacks.flatMap((s) => s.split('\n').map((l) => `    ${l}`))].join('\n');
}

/**
 * A pino destination that writes each line as {@link formatLogLine} shows it.
 * @param sink where the lines go, `process.stdout` by default.
 */
export function prettyDestination(sink: LineSink = process.stdout): { write(line: string): void } {
  return {
    write(line: string): void {
      sink.write(`${formatLogLine(line)}\n`);
    },
  };
}

/** `HH:MM:SS.mmm` in local time, from pino's ISO time (or epoch milliseconds). */
function clock(time: unknown): string {
  const date = typeof time === 'string' || typeof time === 'number' ? new Date(time) : new Date();
  const at = Number.isNaN(date.getTime()) ? new Date() : date;
  const two = (n: number): string => String(n).padStart(2, '0');
  return `${two(at.getHours())}:${two(at.getMinutes())}:${two(at.getSeconds())}.${String(at.getMilliseconds()).padStart(3, '0')}`;
}

function levelName(level: unknown): string {
  if (typeof level === 'number') return LEVEL_NAMES[level] ?? `LEVEL${level}`;
  return typeof level === 'string' ? level.toUpperCase() : 'LOG';
}

/** A bare word when that reads unambiguously; JSON (quoted) when it has spaces, quotes or `=`, or is not a string. */
function formatValue(value: unknown): string {
  if (typeof value === 'string') return value !== '' && /^[^\s"=]+$/.test(value) ? value : JSON.stringify(value);
  if (value === null || typeof value === 'number' || typeof value === 'boolean') return String(value);
  return JSON.stringify(value) ?? String(value);
}

/** The stack of a serialized error (`{ type, message, stack }`), if the value is one. */
function stackOf(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const stack = (value as { stack?: unknown }).stack;
  return typeof stack === 'string' && stack !== '' ? stack : undefined;
}
