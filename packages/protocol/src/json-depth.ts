import type { FieldIssue } from './validation';

/**
 * How deep a JSON value is nested: a scalar is 0, an array or object one more than its deepest member
 * (`{"data": [[1]]}` is 3).
 */
export type JsonDepth = number;

/**
 * Checks that a parsed JSON value is nested no deeper than `maxDepth`, without recursion: a value
 * nested 100 000 levels deep is checked as safely as a flat one. Values this deep cannot be serialised
 * again (`JSON.stringify` recurses), so they are refused where they enter.
 *
 * @returns the failing field (the top-level member the too-deep part is under, `""` for the value
 *   itself) in the shape of `BAD_REQUEST` details, or undefined when the value is within the limit.
 * @example
 * nestingProblem(JSON.parse('{"data":[[[1]]]}'), 3); // → { field: 'data', message: 'nested deeper than 3 levels' }
 */
export function nestingProblem(value: unknown, maxDepth: JsonDepth): FieldIssue | undefined {
  if (value === null || typeof value !== 'object') return undefined;
  // Parallel stacks of containers still to visit, their depth, and the top-level field each is under.
  const containers: object[] = [value];
  const depths: number[] = [1];
  const fields: string[] = [''];
  while (containers.length > 0) {
    const container = containers.pop()!;
    const depth = depths.pop()!;
    const field = fields.pop()!;
    if (depth > maxDepth) return { field, message: `nested deeper than ${maxDepth} levels` };
    if (Array.isArray(container)) {
      for (let i = 0; i < container.length; i++) {
        const item: unknown = container[i];
        if (item === null || typeof item !== 'object') continue;
        containers.push(item);
        depths.push(depth + 1);
        fields.push(depth === 1 ? String(i) : field);
      }
      continue;
    }
    for (const key of Object.keys(container)) {
      const item: unknown = (container as Record<string, unknown>)[key];
      if (item === null || typeof item !== 'object') continue;
      containers.push(item);
      depths.push(depth + 1);
      fields.push(depth === 1 ? key : field);
    }
  }
  return undefined;
}
