import type { z } from 'zod';

/** One failing field, as it appears in `error.details` of a `BAD_REQUEST`. */
export interface FieldIssue {
  /** Dotted path of the field (`data.items.0`), or `""` for the frame itself. */
  field: string;
  message: string;
}

/** Turns a zod error into the list of failing fields a client sees in `details`. */
export function describeIssues(error: z.ZodError): FieldIssue[] {
  return error.issues.slice(0, 10).map((issue) => ({
    field: issue.path.map(String).join('.'),
    message: issue.message,
  }));
}
