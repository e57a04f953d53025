import type { z } from 'zod';

/** One failing field, as it appears in `error.details` of a `BAD_REQUEST`. */
export interface FieldIssue {
  /** Dotted path of the field (`data.items.0`), or `""` for the frame itself. */
  field: string;
  message: string;
}

/** Turns a zod error into the list of failing fields a client sees in `details`: the first problem of each field, at most 10. */
export function describeIssues(error: z.ZodError): FieldIssue[] {
  const byField = new Map<string, string>();
  for (const issue of error.issues) {
    const field = issue.path.map(String).join('.');
    if (!byField.has(field)) byField.set(field, issue.message);
    if (byField.size === 10) break;
  }
  return [...byField].map(([field, message]) => ({ field, message }));
}
