import { describeIssues } from '@openclaw/protocol';
import { GatewayError } from './errors';

type SchemaIssues = Parameters<typeof describeIssues>[0];

/** @internal The part of a zod schema {@link parseResult} uses, so this package needs no zod import of its own. */
export interface ResultSchema<T> {
  safeParse(value: unknown): { success: true; data: T } | { success: false; error: SchemaIssues };
}

/**
 * @internal Checks a result against its protocol schema. Returns the value as the gateway sent it (with
 * any fields a newer gateway added); a result that does not match rejects the request with `INTERNAL`
 * instead of handing the caller something that breaks later.
 */
export function parseResult<T>(schema: ResultSchema<T>, value: unknown, action: string): T {
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    throw new GatewayError('INTERNAL', `the gateway sent a malformed '${action}' result`, {
      retryable: false,
      details: describeIssues(parsed.error),
    });
  }
  return value as T;
}
