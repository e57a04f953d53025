import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, stat, truncate, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { AuditChain, SealedAnchor } from './audit-chain';
import { parseJson, type StreamRow, streamMs } from './audit-entry';

/** A new segment is begun past this size (and on each new UTC day). */
export const AUDIT_SEGMENT_BYTES = 64 * 1024 * 1024;

/** One file of a tenant's archive: entries from `firstSeq` on, the first written at `firstMs`. */
interface Segment {
  name: string;
  path: string;
  firstSeq: number;
  firstMs: number;
}

/** Where a tenant's archive ends: the last entry's sequence number, hash and stream id. */
export interface ArchiveEnd {
  seq: number;
  hash: string;
  id: string;
}

/** The archive's sealed anchor file: how a tenant's archive starts after retention removed segments. */
const ANCHOR_FILE = 'anchor.json';
const SEGMENT = /^(\d{16})-(\d+)\.jsonl$/;

/**
 * The audit archive: each tenant's entries older than the recent window that Redis keeps, moved
 * to append-only files in a directory (`OPENCLAW_AUDIT_ARCHIVE_DIR`, a volume every replica
 * mounts). Each line is an entry exactly as it was chained (`{"id","body","hash"}`), so the chain
 * goes on unbroken from the archive into Redis and is verified across both. A tenant's entries are
 * split into segments named by their first sequence number and time, begun each UTC day and past
 * 64 MiB, so that retention removes whole segments and reading a time span opens only the segments
 * that hold it. When retention removes segments, the first kept entry's number and the hash it
 * follows become the archive's sealed anchor (`anchor.json`, MAC'd like Redis's anchor).
 *
 * One process writes a tenant's archive at a time (the caller holds a lock). Appends are written
 * and synced before the entries leave Redis; a crash between the two leaves entries in both, which
 * the next append and every read skip by their sequence numbers. A crash in the middle of a write
 * leaves a last line without its newline: readers ignore it, and the next append cuts it off first.
 */
export class AuditArchive {
  constructor(
    private readonly dir: string,
    private readonly chain: AuditChain,
    private readonly segmentBytes = AUDIT_SEGMENT_BYTES,
  ) {}

  /**
   * Checks that the archive's folder can be written (creating it if needed), so that a replica with
   * a missing or read-only volume refuses to start instead of letting Redis grow.
   * @throws {Error} naming the folder and what went wrong.
   */
  static async checkWritable(dir: string): Promise<void> {
    const probe = join(dir, `.write-check-${process.pid}`);
    try {
      await mkdir(dir, { recursive: true });
      await writeSynced(probe, 'ok\n', 'w');
      await unlink(probe);
    } catch (error) {
      throw new Error(`OPENCLAW_AUDIT_ARCHIVE_DIR: cannot write to ${dir}: ${(error as Error).message}`);
    }
  }

  /** Tenants with an archive. */
  async tenants(): Promise<string[]> {
    const names = await readdir(this.dir).catch(() => [] as string[]);
    return names.flatMap((name) => {
      try {
        return name.startsWith('t-') ? [decodeURIComponent(name.slice(2))] : [];
      } catch {
        return [];
      }
    });
  }

  /**
   * The archive's sealed anchor: `undefined` when retention never removed anything (the archive
   * starts with sequence number 1, or where Redis's anchor said when archiving began), `'invalid'`
   * when its MAC does not hold.
   */
  async anchor(tenant: string): Promise<SealedAnchor | 'invalid' | undefined> {
    const text = await readFile(join(this.tenantDir(tenant), ANCHOR_FILE), 'utf8').catch(() => undefined);
    if (text === undefined) return undefined;
    return this.chain.openAnchor(tenant, text.trim()) ?? 'invalid';
  }

  /** Records where the archive starts (atomically: a new file renamed over the old one). */
  async setAnchor(tenant: string, anchor: SealedAnchor): Promise<void> {
    const dir = await this.ensureDir(tenant);
    const tmp = join(dir, `${ANCHOR_FILE}.tmp`);
    await writeSynced(tmp, `${this.chain.sealAnchor(tenant, anchor)}\n`, 'w');
    await rename(tmp, join(dir, ANCHOR_FILE));
    await syncDir(dir);
  }

  /**
   * Where the archive ends, or undefined when it has no entries. With `repair`, a last line left
   * without its newline by a crash is cut off first (only the process that appends may repair).
   */
  async end(tenant: string, repair = false): Promise<ArchiveEnd | undefined> {
    const segments = await this.segments(tenant);
    for (let i = segments.length - 1; i >= 0; i--) {
      const last = await lastLine(segments[i]!.path, repair);
      if (last === undefined) continue;
      const row = parseLine(last);
      const seq = row && sequenceOf(row);
      if (!row || seq === undefined) throw new Error(`the last line of ${segments[i]!.path} is not an audit entry`);
      return { seq, hash: row.hash, id: row.id };
    }
    return undefined;
  }

  /**
   * Appends entries (in order, each carrying the sequence number after the archive's end), and
   * syncs them to disk before it returns.
   */
  async append(tenant: string, rows: readonly StreamRow[]): Promise<void> {
    if (rows.length === 0) return;
    const dir = await this.ensureDir(tenant);
    const segments = await this.segments(tenant);
    let current = segments.at(-1);
    let size = current ? (await stat(current.path)).size : 0;
    let lines: string[] = [];
    const flush = async (): Promise<void> => {
      if (current && lines.length > 0) await writeSynced(current.path, lines.join(''), 'a');
      lines = [];
    };
    for (const [id, fields] of rows) {
      const body = fields[1] ?? '';
      const line = `${JSON.stringify({ id, body, hash: fields[3] ?? '' })}\n`;
      const ms = streamMs(id);
      if (!current || size + line.length > this.segmentBytes || utcDay(ms) !== utcDay(current.firstMs)) {
        await flush();
        // A segment begun by a write that a crash cut short holds nothing: begin it again.
        if (current && size === 0) await unlink(current.path);
        const seq = sequenceOf({ id, body, hash: '' });
        if (seq === undefined) throw new Error(`audit entry ${id} has no sequence number`);
        const name = `${String(seq).padStart(16, '0')}-${ms}.jsonl`;
        current = { name, path: join(dir, name), firstSeq: seq, firstMs: ms };
        size = 0;
        await writeSynced(current.path, '', 'a');
        await syncDir(dir);
      }
      lines.push(line);
      size += Buffer.byteLength(line);
    }
    await flush();
  }

  /**
   * The entries after sequence number `afterSeq` (0: from the start), oldest first, as stream rows;
   * with `fromMs`, only segments that may hold entries written at or after it are read.
   */
  async *rows(tenant: string, afterSeq = 0, fromMs = 0): AsyncGenerator<StreamRow> {
    const segments = await this.segments(tenant);
    for (let i = 0; i < segments.length; i++) {
      const next = segments[i + 1];
      // A segment ends where the next one begins.
      if (next && (next.firstSeq <= afterSeq + 1 || next.firstMs < fromMs)) continue;
      for await (const row of readSegment(segments[i]!.path)) {
        const seq = sequenceOf(row);
        if (seq !== undefined && seq <= afterSeq) continue;
        yield [row.id, ['body', row.body, 'hash', row.hash]];
      }
    }
  }

  /** The last `count` entries, oldest first. */
  async tail(tenant: string, count: number, beforeSeq = Number.MAX_SAFE_INTEGER): Promise<StreamRow[]> {
    const segments = await this.segments(tenant);
    const out: StreamRow[][] = [];
    let have = 0;
    for (let i = segments.length - 1; i >= 0 && have < count; i--) {
      if (segments[i]!.firstSeq >= beforeSeq) continue;
      const rows: StreamRow[] = [];
      for await (const row of readSegment(segments[i]!.path)) {
        const seq = sequenceOf(row);
        if (seq === undefined || seq < beforeSeq) rows.push([row.id, ['body', row.body, 'hash', row.hash]]);
      }
      const taken = rows.slice(Math.max(0, rows.length - (count - have)));
      out.unshift(taken);
      have += taken.length;
    }
    return out.flat();
  }

  /**
   * Removes whole segments whose entries are all older than `before` (epoch ms), never the last
   * one, after recording the first kept entry's number and the hash it follows as the archive's
   * sealed anchor. Segments are removed only if the chain through them verifies (`verified`).
   * @returns how many segments were removed.
   */
  async expire(tenant: string, before: number): Promise<number> {
    const segments = await this.segments(tenant);
    let cut = 0;
    while (cut + 1 < segments.length && segments[cut + 1]!.firstMs < before) cut += 1;
    if (cut === 0) return 0;
    const first = await firstRow(segments[cut]!.path);
    const parsed = first && (parseJson(first.body) as { prev?: unknown; seq?: unknown } | undefined);
    if (!parsed || typeof parsed.prev !== 'string' || typeof parsed.seq !== 'number') {
      throw new Error(`the first line of ${segments[cut]!.path} is not an audit entry`);
    }
    await this.setAnchor(tenant, { seq: parsed.seq, prev: parsed.prev });
    // (Another replica expiring the same days at once may have removed some already.)
    for (const segment of segments.slice(0, cut)) await unlink(segment.path).catch(ignoreMissing);
    return cut;
  }

  /** A tenant's segments, oldest first. */
  async segments(tenant: string): Promise<Segment[]> {
    const dir = this.tenantDir(tenant);
    const names = await readdir(dir).catch(() => [] as string[]);
    return names
      .flatMap((name) => {
        const match = SEGMENT.exec(name);
        return match ? [{ name, path: join(dir, name), firstSeq: Number(match[1]), firstMs: Number(match[2]) }] : [];
      })
      .sort((a, b) => a.firstSeq - b.firstSeq);
  }

  /** A tenant's folder: its name encoded, so that no tenant name can reach outside the archive. */
  private tenantDir(tenant: string): string {
    return join(this.dir, `t-${encodeURIComponent(tenant).replace(/\./g, '%2E').replace(/\*/g, '%2A')}`);
  }

  private async ensureDir(tenant: string): Promise<string> {
    const dir = this.tenantDir(tenant);
    await mkdir(dir, { recursive: true });
    return dir;
  }
}

/** A line of a segment. */
interface Line {
  id: string;
  body: string;
  hash: string;
}

function parseLine(text: string): Line | undefined {
  const value = parseJson(text) as Partial<Line> | undefined;
  return value && typeof value.id === 'string' && typeof value.body === 'string' && typeof value.hash === 'string'
    ? (value as Line)
    : undefined;
}

/** The sequence number in an entry's body, if it has one. */
function sequenceOf(line: Line): number | undefined {
  // The body starts {"ts":...,"tenant":...,"seq":N: read the number without parsing the whole entry.
  const match = /"seq":(\d+)/.exec(line.body);
  return match ? Number(match[1]) : undefined;
}

/**
 * The lines of a segment in order. A last line without its newline (a write cut by a crash) is not
 * an entry yet; a line that is not an entry is given with empty fields, so that verification names it.
 */
async function* readSegment(path: string): AsyncGenerator<Line> {
  const stream = createReadStream(path, { encoding: 'utf8' });
  let rest = '';
  try {
    for await (const chunk of stream as AsyncIterable<string>) {
      rest += chunk;
      let start = 0;
      for (let nl = rest.indexOf('\n', start); nl >= 0; nl = rest.indexOf('\n', start)) {
        const text = rest.slice(start, nl);
        start = nl + 1;
        yield parseLine(text) ?? { id: '0-0', body: text, hash: '' };
      }
      rest = rest.slice(start);
    }
  } finally {
    stream.destroy();
  }
}

async function firstRow(path: string): Promise<Line | undefined> {
  const stream = createReadStream(path, { encoding: 'utf8' });
  const lines = createInterface({ input: stream, crlfDelay: Infinity });
  try {
    for await (const text of lines) return parseLine(text);
    return undefined;
  } finally {
    lines.close();
    stream.destroy();
  }
}

/** The last complete line of a file; with `repair`, an unterminated tail is cut off. */
async function lastLine(path: string, repair: boolean): Promise<string | undefined> {
  const file = await open(path, 'r');
  try {
    const { size } = await file.stat();
    let buffer = Buffer.alloc(0);
    /** File offset just past the last newline, once found. */
    let end = -1;
    // Read backwards in chunks until the last complete line is whole.
    for (let pos = size; pos > 0; ) {
      const from = Math.max(0, pos - 64 * 1024);
      const chunk = Buffer.alloc(pos - from);
      await file.read(chunk, 0, chunk.length, from);
      buffer = Buffer.concat([chunk, buffer]);
      pos = from;
      if (end < 0) {
        const nl = buffer.lastIndexOf(0x0a);
        if (nl < 0) continue;
        end = pos + nl + 1;
      }
      const lineEnd = end - 1 - pos;
      const start = lineEnd > 0 ? buffer.lastIndexOf(0x0a, lineEnd - 1) : -1;
      if (start >= 0 || pos === 0) {
        if (repair && end < size) await truncate(path, end);
        return buffer.subarray(start + 1, lineEnd).toString('utf8');
      }
    }
    if (repair && size > 0) await truncate(path, 0);
    return undefined;
  } finally {
    await file.close();
  }
}

async function writeSynced(path: string, text: string, flags: 'a' | 'w'): Promise<void> {
  const file = await open(path, flags, 0o640);
  try {
    if (text !== '') await file.writeFile(text);
    await file.datasync();
  } finally {
    await file.close();
  }
}

/** Syncs a directory, so that a file created or renamed in it survives a crash. */
async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r').catch(() => undefined);
  if (!handle) return;
  try {
    await handle.sync().catch(() => undefined);
  } finally {
    await handle.close();
  }
}

function utcDay(ms: number): number {
  return Math.floor(ms / 86_400_000);
}

function ignoreMissing(error: NodeJS.ErrnoException): void {
  if (error.code !== 'ENOENT') throw error;
}
