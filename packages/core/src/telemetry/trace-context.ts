import { randomUUID } from 'node:crypto';

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/**
 * A W3C `traceparent` for a new hop. With a parent, the trace id is kept and a new span id is made;
 * without one (or with a malformed one), a new sampled trace starts.
 */
export function childTraceparent(parent?: string): string {
  const match = parent === undefined ? null : TRACEPARENT.exec(parent);
  const traceId = match?.[1] ?? randomHex32();
  const flags = match?.[3] ?? '01';
  return `00-${traceId}-${randomHex32().slice(0, 16)}-${flags}`;
}

/** Whether a string is a well-formed W3C `traceparent` (version 00). */
export function isTraceparent(value: string): boolean {
  return TRACEPARENT.test(value);
}

/**
 * 32 hex digits from a v4 UUID: crypto-strong, from Node's pooled generator (far cheaper per call
 * than randomBytes), 122 random bits; ample for trace and span ids.
 */
function randomHex32(): string {
  return randomUUID().replaceAll('-', '');
}
