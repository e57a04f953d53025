import { createLogger } from './logger';
import { formatLogLine, resolveLogFormat } from './pretty-log';

/** An ISO time whose local clock reads 03:04:05.006, whatever the time zone of the machine. */
const AT = new Date(2025, 0, 2, 3, 4, 5, 6).toISOString();

/** A sink that keeps what a pretty logger writes. */
function collector(): { lines: string[]; write(text: string): void } {
  const lines: string[] = [];
  return { lines, write: (text: string) => void lines.push(text) };
}

describe('formatLogLine', () => {
  it('shows time, level, message, then the fields as key=value', () => {
    const line = JSON.stringify({
      level: 30,
      time: AT,
      replicaId: 'gw-1a2b3c4d',
      port: 18789,
      ready: true,
      redis: 'redis://127.0.0.1:6379',
      msg: 'gateway ready',
    });
    expect(formatLogLine(`${line}\n`)).toBe(
      '03:04:05.006 INFO gateway ready replicaId=gw-1a2b3c4d port=18789 ready=true redis=redis://127.0.0.1:6379',
    );
  });

  it('names every pino level', () => {
    const names = [10, 20, 30, 40, 50, 60].map((level) => formatLogLine(JSON.stringify({ level, time: AT, msg: 'm' })));
    expect(names).toEqual([
      '03:04:05.006 TRACE m',
      '03:04:05.006 DEBUG m',
      '03:04:05.006 INFO m',
      '03:04:05.006 WARN m',
      '03:04:05.006 ERROR m',
      '03:04:05.006 FATAL m',
    ]);
  });

  it('quotes values with spaces, quotes or "=", and writes objects and null as JSON', () => {
    const line = JSON.stringify({
      level: 40,
      time: AT,
      reason: 'connect ECONNREFUSED 127.0.0.1:6379',
      expr: 'a=b',
      empty: '',
      agent: { name: 'echo', tags: ['x'] },
      nothing: null,
      msg: 'redis connection error',
    });
    expect(formatLogLine(line)).toBe(
      '03:04:05.006 WARN redis connection error reason="connect ECONNREFUSED 127.0.0.1:6379" expr="a=b" empty="" agent={"name":"echo","tags":["x"]} nothing=null',
    );
  });

  it("shows an error's message as its field and its stack indented below", () => {
    const line = JSON.stringify({
      level: 50,
      time: AT,
      err: { type: 'Error', message: 'boom', stack: 'Error: boom\n    at f (a.js:1:1)' },
      msg: 'error while stopping',
    });
    expect(formatLogLine(line)).toBe(
      '03:04:05.006 ERROR error while stopping err=boom\n    Error: boom\n        at f (a.js:1:1)',
    );
  });

  it('passes a line that is not a JSON object through as it is', () => {
    expect(formatLogLine('not json\n')).toBe('not json');
    expect(formatLogLine('[1,2]')).toBe('[1,2]');
  });
});

describe('resolveLogFormat', () => {
  it('makes auto pretty on a terminal and JSON otherwise; explicit formats win', () => {
    expect(resolveLogFormat('auto', true)).toBe('pretty');
    expect(resolveLogFormat('auto', false)).toBe('json');
    expect(resolveLogFormat('auto', undefined)).toBe('json');
    expect(resolveLogFormat('json', true)).toBe('json');
    expect(resolveLogFormat('pretty', false)).toBe('pretty');
  });
});

describe('createLogger in pretty format', () => {
  it('writes readable lines with the base fields', () => {
    const sink = collector();
    const logger = createLogger({ level: 'info', format: 'pretty', base: { replicaId: 'gw-1' }, prettySink: sink });
    logger.info({ port: 8080 }, 'gateway ready');
    logger.debug('below the level');
    expect(sink.lines).toHaveLength(1);
    expect(sink.lines[0]).toMatch(/^\d\d:\d\d:\d\d\.\d{3} INFO gateway ready replicaId=gw-1 port=8080\n$/);
  });

  it('still redacts credentials', () => {
    const sink = collector();
    const logger = createLogger({ level: 'info', format: 'pretty', prettySink: sink });
    logger.info(
      { apiKey: 'sk-secret-1', client: { token: 'tok-secret-2' }, headers: { authorization: 'Bearer secret-3' } },
      'connected',
    );
    expect(sink.lines[0]).toMatch(
      /^\d\d:\d\d:\d\d\.\d{3} INFO connected apiKey=\[Redacted\] client={"token":"\[Redacted\]"} headers={"authorization":"\[Redacted\]"}\n$/,
    );
    expect(sink.lines[0]).not.toMatch(/secret/);
  });

  it('is chosen by auto only when stdout is a terminal', () => {
    const tty = collector();
    createLogger({ level: 'info', format: 'auto', isTTY: true, prettySink: tty }).info('hello');
    expect(tty.lines).toHaveLength(1);
    expect(tty.lines[0]).toMatch(/^\d\d:\d\d:\d\d\.\d{3} INFO hello\n$/);
    const piped = collector();
    // JSON goes to stdout, never to the pretty sink.
    createLogger({ level: 'silent', format: 'auto', isTTY: false, prettySink: piped }).info('hello');
    expect(piped.lines).toEqual([]);
  });
});
