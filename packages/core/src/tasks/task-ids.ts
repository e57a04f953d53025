import { randomUUID } from 'node:crypto';

/**
 * A new task id: a UUID of version 7 (RFC 9562), whose first 48 bits are its creation time in epoch
 * milliseconds and the rest random, so the store of sync-call records finds a record's minute from
 * its id alone ({@link taskIdTime}). The random bits come from Node's pooled UUID generator (a fresh
 * `randomBytes` per id costs a system call each).
 */
export function newTaskId(now = Date.now()): string {
  const random = randomUUID();
  const time = now.toString(16).padStart(12, '0');
  // randomUUID: xxxxxxxx-xxxx-4xxx-Vxxx-xxxxxxxxxxxx, V already the RFC variant (8 to b).
  return `${time.slice(0, 8)}-${time.slice(8, 12)}-7${random.slice(15, 18)}-${random.slice(19)}`;
}

const V7 = /^([0-9a-f]{8})-([0-9a-f]{4})-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** The creation time of a task id made by {@link newTaskId}, or undefined for any other id. */
export function taskIdTime(taskId: string): number | undefined {
  const m = V7.exec(taskId);
  return m ? Number.parseInt(m[1]! + m[2]!, 16) : undefined;
}
