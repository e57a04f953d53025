import type { z } from 'zod';

/** One failing field, as it appears in `error.details` of a `BAD_REQUEST`. */
export interface FieldIssue {
  /** Dotted path of the field (`data.items.0`), or `""` for the frame itself. */
  field: string;
  message: string;
}

type Issue = z.core.$ZodIssue;

/** Turns a zod error into the list of failing fields a client sees in `details`: the first problem of each field, at most 10. */
export function describeIssues(error: z.ZodError): FieldIssue[] {
  const byField = new Map<string, string>();
  for (const issue of flatten(error.issues as Issue[], [])) {
    const field = issue.path.map(String).join('.');
    if (!byField.has(field)) byField.set(field, issue.message);
    if (byField.size === 10) break;
  }
  return [...byField].map(([field, message]) => ({ field, message }));
}

/**
 * Issues with the failure of a union of objects (a workflow step is one of two shapes) replaced by the
 * issues of the alternative that came closest: the one that failed on fewest fields, so the client
 * is told which field is wrong rather than only that the value matched neither shape.
 */
function flatten(issues: readonly Issue[], prefix: PropertyKey[]): Issue[] {
  const out: Issue[] = [];
  for (const issue of issues) {
    const path = [...prefix, ...issue.path];
    if (issue.code === 'invalid_union' && issue.errors.length > 0) {
      const closest = [...issue.errors].sort((a, b) => a.length - b.length)[0]!;
      // A branch that failed on its very shape (not an object) says nothing better than the union.
      if (closest.length > 0 && closest.every((i) => i.path.length > 0)) {
        out.push(...flatten(closest, path));
        continue;
      }
    }
    if (issue.code === 'invalid_key' && issue.issues.length > 0) {
      // A record's key was refused: say why (its pattern), not only that it was.
      out.push({ ...issue, path, message: `invalid key: ${issue.issues[0]!.message}` } as Issue);
      continue;
    }
    out.push({ ...issue, path } as Issue);
  }
  return out;
}
