import type { Readable } from 'node:stream';

/**
 * A child process's output, line by line in arrival order, stdout and stderr interleaved. Keeps the
 * most recent `maxLines` lines so a chatty process under load cannot exhaust the test's memory.
 *
 * @internal
 */
export class OutputLog {
  private readonly lines: string[] = [];
  private readonly partials = new Map<Readable, string>();

  constructor(private readonly maxLines = 20_000) {}

  /** Reads `stream` to its end, calling `onLine` with each complete line (without the newline). */
  follow(stream: Readable | null, onLine?: (line: string) => void): void {
    if (!stream) return;
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      const pieces = ((this.partials.get(stream) ?? '') + chunk).split('\n');
      this.partials.set(stream, pieces.pop() ?? '');
      for (const line of pieces) this.push(line.replace(/\r$/, ''), onLine);
    });
    stream.on('end', () => {
      const rest = this.partials.get(stream);
      this.partials.delete(stream);
      if (rest) this.push(rest, onLine);
    });
  }

  /** Everything kept so far, including a last line still missing its newline. */
  text(): string {
    return [...this.lines, ...[...this.partials.values()].filter(Boolean)].join('\n');
  }

  /** The last `count` lines, for error messages. */
  tail(count = 40): string {
    return this.text().split('\n').slice(-count).join('\n');
  }

  private push(line: string, onLine: ((line: string) => void) | undefined): void {
    this.lines.push(line);
    if (this.lines.length > this.maxLines) this.lines.splice(0, this.lines.length - this.maxLines);
    onLine?.(line);
  }
}
