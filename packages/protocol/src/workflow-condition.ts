import { z } from 'zod';

/**
 * The small condition language of workflows: comparisons of one value of the workflow's data with
 * a literal, combined with `all`, `any` and `not`. Declarative and evaluated here, never `eval`ed:
 * a condition can only read the workflow's input and its earlier steps' results.
 *
 * ```yaml
 * when: {path: steps.query.output.category, eq: technical}
 * when:
 *   all:
 *     - {path: steps.query.output.confidence, lt: 0.8}
 *     - not: {path: input.customer.tier, in: [gold, platinum]}
 * ```
 */

/** The roots a path starts from. */
export const PATH_ROOTS = ['input', 'previous', 'steps'] as const;

/** What `steps.<id>.` may be followed by. */
export const STEP_FIELDS = ['output', 'status', 'error', 'case'] as const;

const SEGMENT = /^[^.\s]{1,128}$/;

/**
 * Why a path is not well formed, or undefined. Paths are dotted: `input.<...>` (the workflow's
 * input), `previous.<...>` (what the step would get: the previous step's output), and
 * `steps.<id>.output.<...>`, `steps.<id>.status`, `steps.<id>.error.code`, `steps.<id>.case`.
 * Array elements are numbers: `input.items.0`.
 */
export function pathProblem(path: string): string | undefined {
  const parts = path.split('.');
  const root = parts[0] as (typeof PATH_ROOTS)[number];
  if (!PATH_ROOTS.includes(root)) {
    return `a path starts with ${PATH_ROOTS.join(', ')} (got '${parts[0]}')`;
  }
  if (parts.some((p) => !SEGMENT.test(p))) return 'a path is dot-separated names without spaces, none empty';
  if (root === 'steps') {
    if (parts.length < 3) return 'a step path names the step and a field: steps.<id>.output, .status, .error or .case';
    if (!(STEP_FIELDS as readonly string[]).includes(parts[2]!)) {
      return `after steps.${parts[1]}. comes ${STEP_FIELDS.join(', ')} (got '${parts[2]}')`;
    }
  }
  return undefined;
}

export const ValuePathSchema = z
  .string()
  .min(1)
  .max(256)
  .superRefine((path, ctx) => {
    const problem = pathProblem(path);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  });

const OPERATORS = ['eq', 'ne', 'gt', 'gte', 'lt', 'lte', 'in', 'contains', 'exists'] as const;
type Operator = (typeof OPERATORS)[number];

const Ordered = z.union([z.number(), z.string()]);

/** One comparison: the value at `path` against a literal, with exactly one operator. */
export const ComparisonSchema = z
  .strictObject({
    path: ValuePathSchema,
    eq: z.unknown().optional(),
    ne: z.unknown().optional(),
    gt: Ordered.optional(),
    gte: Ordered.optional(),
    lt: Ordered.optional(),
    lte: Ordered.optional(),
    in: z.array(z.unknown()).max(256).optional(),
    contains: z.unknown().optional(),
    exists: z.boolean().optional(),
  })
  .superRefine((comparison, ctx) => {
    const used = OPERATORS.filter((op) => comparison[op] !== undefined);
    if (used.length !== 1) {
      ctx.addIssue({
        code: 'custom',
        message: `a comparison has exactly one of ${OPERATORS.join(', ')} (got ${used.length === 0 ? 'none' : used.join(', ')})`,
      });
    }
  });
export type Comparison = z.infer<typeof ComparisonSchema>;

export type Condition = Comparison | { all: Condition[] } | { any: Condition[] } | { not: Condition };

/** The most comparisons and combinators in one condition, and how deep they nest. */
export const MAX_CONDITION_NODES = 64;
export const MAX_CONDITION_DEPTH = 8;

export const ConditionSchema: z.ZodType<Condition> = z
  .lazy(() =>
    z.union([
      ComparisonSchema,
      z.strictObject({ all: z.array(ConditionSchema).min(1).max(MAX_CONDITION_NODES) }),
      z.strictObject({ any: z.array(ConditionSchema).min(1).max(MAX_CONDITION_NODES) }),
      z.strictObject({ not: ConditionSchema }),
    ]),
  )
  .superRefine((condition, ctx) => {
    const { nodes, depth } = measure(condition);
    if (nodes > MAX_CONDITION_NODES) {
      ctx.addIssue({ code: 'custom', message: `a condition has at most ${MAX_CONDITION_NODES} parts (got ${nodes})` });
    }
    if (depth > MAX_CONDITION_DEPTH) {
      ctx.addIssue({ code: 'custom', message: `a condition nests at most ${MAX_CONDITION_DEPTH} deep (got ${depth})` });
    }
  })
  .meta({ id: 'Condition' }) as z.ZodType<Condition>;

function measure(condition: Condition): { nodes: number; depth: number } {
  const parts = 'all' in condition ? condition.all : 'any' in condition ? condition.any : [];
  const inner = 'not' in condition ? [condition.not] : parts;
  let nodes = 1;
  let depth = 0;
  for (const c of inner) {
    const m = measure(c);
    nodes += m.nodes;
    depth = Math.max(depth, m.depth);
  }
  return { nodes, depth: depth + 1 };
}

/** Every path a condition reads. */
export function conditionPaths(condition: Condition): string[] {
  if ('all' in condition) return condition.all.flatMap(conditionPaths);
  if ('any' in condition) return condition.any.flatMap(conditionPaths);
  if ('not' in condition) return conditionPaths(condition.not);
  return [condition.path];
}

/** What a condition can read: the workflow's input, the running input, earlier steps' results. */
export interface ConditionScope {
  input: unknown;
  previous: unknown;
  steps: Readonly<Record<string, { status: string; output?: unknown; error?: unknown; case?: string }>>;
}

/**
 * The value at a path, or undefined where there is none. Only own properties are followed (a path
 * never reaches an object's prototype), and array elements by index.
 */
export function valueAt(path: string, scope: ConditionScope): unknown {
  const parts = path.split('.');
  let value: unknown;
  let rest: string[];
  if (parts[0] === 'steps') {
    const id = parts[1]!;
    if (!Object.hasOwn(scope.steps, id)) return undefined;
    value = scope.steps[id];
    rest = parts.slice(2);
  } else {
    value = parts[0] === 'input' ? scope.input : parts[0] === 'previous' ? scope.previous : undefined;
    rest = parts.slice(1);
  }
  for (const key of rest) {
    if (Array.isArray(value)) {
      if (!/^\d+$/.test(key)) return undefined;
      value = value[Number(key)];
    } else if (value !== null && typeof value === 'object' && Object.hasOwn(value, key)) {
      value = (value as Record<string, unknown>)[key];
    } else {
      return undefined;
    }
  }
  return value;
}

/**
 * Whether a condition holds. A missing value equals nothing and orders with nothing (`ne` is
 * exactly `not eq`, so it holds for a missing value); `gt`, `gte`, `lt`, `lte` compare two numbers
 * or two strings and are false otherwise; `contains` looks in a string or an array; `exists`
 * tells whether the path has a value (`null` is one).
 */
export function evaluateCondition(condition: Condition, scope: ConditionScope): boolean {
  if ('all' in condition) return condition.all.every((c) => evaluateCondition(c, scope));
  if ('any' in condition) return condition.any.some((c) => evaluateCondition(c, scope));
  if ('not' in condition) return !evaluateCondition(condition.not, scope);
  const value = valueAt(condition.path, scope);
  const op = OPERATORS.find((o) => condition[o] !== undefined) as Operator;
  const operand = condition[op];
  switch (op) {
    case 'eq':
      return value !== undefined && jsonEqual(value, operand);
    case 'ne':
      return !(value !== undefined && jsonEqual(value, operand));
    case 'gt':
    case 'gte':
    case 'lt':
    case 'lte':
      return ordered(value, operand, op);
    case 'in':
      return value !== undefined && (operand as unknown[]).some((o) => jsonEqual(value, o));
    case 'contains':
      if (typeof value === 'string') return typeof operand === 'string' && value.includes(operand);
      return Array.isArray(value) && value.some((v) => jsonEqual(v, operand));
    case 'exists':
      return (value !== undefined) === operand;
  }
}

function ordered(value: unknown, operand: unknown, op: 'gt' | 'gte' | 'lt' | 'lte'): boolean {
  const comparable =
    (typeof value === 'number' && typeof operand === 'number') ||
    (typeof value === 'string' && typeof operand === 'string');
  if (!comparable) return false;
  const a = value as number | string;
  const b = operand as number | string;
  if (op === 'gt') return a > b;
  if (op === 'gte') return a >= b;
  if (op === 'lt') return a < b;
  return a <= b;
}

/** Equality of two JSON values (objects by their keys, whatever the order). */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const other = b as unknown[];
    return a.length === other.length && a.every((v, i) => jsonEqual(v, other[i]));
  }
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  return (
    ka.length === kb.length &&
    ka.every(
      (k) => Object.hasOwn(b, k) && jsonEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]),
    )
  );
}
