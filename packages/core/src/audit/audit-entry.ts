/** One audit record as appended: what happened, by whom, with what outcome. Never payloads or secrets. */
export interface AuditEvent {
  /** e.g. `connection.opened`, `auth.failed`, `authz.denied`, `task.routed`, `apikey.revoked`. */
  type: string;
  /** Principal id, when known. */
  principal?: string;
  /** `ok`, or an error code. */
  outcome: string;
  /** Replica that recorded it (filled in by the log). */
  replica?: string;
  /** Small, non-secret facts: agent, task, taskId, permission, address, close code... */
  details?: Record<string, string | number | boolean | null>;
}

/** A stored audit entry. */
export interface AuditEntry extends AuditEvent {
  /** Stream id (`<ms>-<seq>`). */
  id: string;
  /** Epoch ms when it was recorded. */
  ts: number;
  tenant: string;
  /**
   * Position in the tenant's trail: 1, 2, 3... without gaps, kept across retention trimming. Absent on
   * entries written by versions before sequence numbers.
   */
  seq?: number;
  /** Chain hash of the previous entry ('' for the first). */
  prev: string;
  /** This entry's chain hash: HMAC-SHA256(secret, prev + body) (SHA-256 without a secret). */
  hash: string;
}

/** A stream entry as Redis returns it. */
export type StreamRow = [id: string, fields: string[]];

/** The value of a field of a stream entry ('' when it has none). */
export function field(fields: string[], name: string): string {
  const i = fields.indexOf(name);
  return i >= 0 && i % 2 === 0 ? (fields[i + 1] ?? '') : '';
}

/** JSON parsed, or undefined if it is not JSON. */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/** The chain fields of an entry's body, or undefined if it is not a JSON object. */
export function bodyOf([, fields]: StreamRow): { prev?: unknown; seq?: unknown } | undefined {
  const value = parseJson(field(fields, 'body'));
  return typeof value === 'object' && value !== null ? (value as { prev?: unknown; seq?: unknown }) : undefined;
}

/** Epoch ms of a stream id. */
export function streamMs(id: string): number {
  return Number(id.split('-')[0]);
}

/** A stored entry as read; one whose body is not JSON reads as `unreadable`. */
export function parseEntry(tenant: string, id: string, fields: string[]): AuditEntry {
  const hash = field(fields, 'hash');
  try {
    const body = JSON.parse(field(fields, 'body')) as Omit<AuditEntry, 'id' | 'hash'>;
    return { ...body, tenant, id, hash };
  } catch {
    return { id, tenant, ts: 0, prev: '', hash, type: 'unreadable', outcome: 'unreadable' };
  }
}
