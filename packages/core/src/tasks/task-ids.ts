import { randomBytes } from 'node:crypto';

/**
 * A new task id: a UUID of version 7 (RFC 9562), whose first 48 bits are its creation time in epoch
 * milliseconds and the rest random, so the store of sync-call records finds a record's minute from
 * its id alone ({@link taskIdTime}).
 */
export function newTaskId(now = Date.now()): string {
  const bytes = randomBytes(16);
  bytes.writeUIntBE(now, 0, 6);
  bytes[6] = 0x70 | (bytes[6]! & 0x0f);
  bytes[8] = 0x80 | (bytes[8]! & 0x3f);
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

const V7 = /^([0-9a-f]{8})-([0-9a-f]{4})-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** The creation time of a task id made by {@link newTaskId}, or undefined for any other id. */
export function taskIdTime(taskId: string): number | undefined {
  const m = V7.exec(taskId);
  return m ? Number.parseInt(m[1]! + m[2]!, 16) : undefined;
}
