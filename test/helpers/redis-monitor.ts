import * as net from 'node:net';
import { withTimeout } from './wait';

/** One command as MONITOR reported it: its name in lower case, then its arguments. */
export type MonitoredCommand = readonly string[];

/**
 * Reads Redis's MONITOR feed on a connection of its own, for tests that count the commands the
 * gateway sends.
 *
 * Not ioredis's `monitor()`: that client switches to monitor mode only a tick after the `OK`, so a
 * command reported in the same packet as the `OK` lands on an empty command queue and is emitted as
 * a "Command queue state error". This one reads the feed as plain lines, never reconnects, and its
 * socket is unreferenced: a test that fails before closing it cannot keep the test process alive.
 *
 * @example
 * ```ts
 * const monitor = await RedisMonitor.open(redis.url, ([name, channel]) => {
 *   if (name === 'publish') publishes.push(channel!);
 * });
 * // ...
 * monitor.close();
 * ```
 */
export class RedisMonitor {
  private buffered = '';
  private onReply: (line: string) => void = () => undefined;

  private constructor(
    private readonly socket: net.Socket,
    private readonly listener: (command: MonitoredCommand) => void,
  ) {}

  /**
   * Connects to `url` (`redis://host:port`) and sends MONITOR; resolves once Redis has said `OK`.
   * `listener` gets every command Redis runs from then on, in the order it ran them, including those
   * that arrive in the same packet as the `OK`.
   */
  static async open(url: string, listener: (command: MonitoredCommand) => void): Promise<RedisMonitor> {
    const { hostname, port } = new URL(url);
    const socket = net.connect({ host: hostname, port: Number(port) });
    socket.unref();
    socket.setEncoding('utf8');
    const monitor = new RedisMonitor(socket, listener);
    const ready = new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.once('close', () => reject(new Error(`the MONITOR connection to ${url} closed`)));
      monitor.onReply = (line) => {
        if (line !== '+OK') return reject(new Error(`MONITOR was answered ${JSON.stringify(line)}`));
        monitor.onReply = (next) => monitor.report(next);
        resolve();
      };
    });
    socket.on('data', (chunk: string) => monitor.read(chunk));
    socket.write('MONITOR\r\n');
    try {
      await withTimeout(ready, 5_000, `Redis at ${url} to accept MONITOR`);
    } catch (error) {
      socket.destroy();
      throw error;
    }
    socket.on('error', () => undefined);
    return monitor;
  }

  /** Closes the connection; no more commands are reported. */
  close(): void {
    this.socket.destroy();
  }

  private read(chunk: string): void {
    this.buffered += chunk;
    for (let end = this.buffered.indexOf('\r\n'); end >= 0; end = this.buffered.indexOf('\r\n')) {
      const line = this.buffered.slice(0, end);
      this.buffered = this.buffered.slice(end + 2);
      this.onReply(line);
    }
  }

  private report(line: string): void {
    // `+1700000000.123456 [0 127.0.0.1:5000] "publish" "channel" "payload"`
    if (!line.startsWith('+')) return;
    const command = parseMonitorLine(line);
    if (command.length === 0) return;
    command[0] = command[0]!.toLowerCase();
    this.listener(command);
  }
}

const ESCAPES: Record<string, string> = { n: '\n', r: '\r', t: '\t', a: '\x07', b: '\b', '"': '"', '\\': '\\' };

/**
 * The quoted arguments of one MONITOR line, unescaped as Redis escapes them (`\"`, `\\`, `\n`, `\r`,
 * `\t`, `\a`, `\b` and `\xHH`). @internal
 */
export function parseMonitorLine(line: string): string[] {
  const args: string[] = [];
  let i = line.indexOf(']');
  if (i < 0) return args;
  for (i = line.indexOf('"', i); i >= 0 && i < line.length; i = line.indexOf('"', i)) {
    let arg = '';
    for (i += 1; i < line.length && line[i] !== '"'; i += 1) {
      if (line[i] !== '\\') {
        arg += line[i];
        continue;
      }
      const next = line[i + 1] ?? '';
      if (next === 'x') {
        arg += String.fromCharCode(Number.parseInt(line.slice(i + 2, i + 4), 16));
        i += 3;
      } else {
        arg += ESCAPES[next] ?? next;
        i += 1;
      }
    }
    args.push(arg);
    i += 1;
  }
  return args;
}
