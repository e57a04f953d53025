import { describeIssues } from './validation';
import { type Condition, ConditionSchema, type ConditionScope, evaluateCondition, valueAt } from './workflow-condition';

const scope: ConditionScope = {
  input: { customer: { tier: 'gold' }, items: [{ sku: 'a' }, { sku: 'b' }], text: 'the app shows error 42' },
  previous: { confidence: 0.6, tags: ['billing', 'urgent'] },
  steps: {
    query: { status: 'completed', output: { route: 'technical', score: 3, resolved: false, note: null } },
    pay: { status: 'failed', error: { code: 'TIMEOUT', message: 'late' } },
  },
};

const holds = (condition: Condition): boolean => evaluateCondition(ConditionSchema.parse(condition), scope);

describe('workflow conditions', () => {
  it('reads the input, the previous output and earlier steps, by own properties and array indexes only', () => {
    expect(valueAt('input.customer.tier', scope)).toBe('gold');
    expect(valueAt('input.items.1.sku', scope)).toBe('b');
    expect(valueAt('input.items.x', scope)).toBeUndefined();
    expect(valueAt('previous.tags.0', scope)).toBe('billing');
    expect(valueAt('steps.query.output.route', scope)).toBe('technical');
    expect(valueAt('steps.pay.error.code', scope)).toBe('TIMEOUT');
    expect(valueAt('steps.nope.status', scope)).toBeUndefined();
    expect(valueAt('input.customer.constructor', scope)).toBeUndefined();
    expect(valueAt('input.text.length', scope)).toBeUndefined();
    expect(valueAt('steps.toString.status', scope)).toBeUndefined();
  });

  it.each<[Condition, boolean]>([
    [{ path: 'steps.query.output.route', eq: 'technical' }, true],
    [{ path: 'steps.query.output.route', eq: 'billing' }, false],
    [{ path: 'steps.query.output.resolved', eq: false }, true],
    [{ path: 'steps.query.output.note', eq: null }, true],
    [{ path: 'steps.query.output.missing', eq: null }, false],
    [{ path: 'steps.query.output.missing', ne: 'x' }, true],
    [{ path: 'steps.query.output.route', ne: 'technical' }, false],
    [{ path: 'input.customer', eq: { tier: 'gold' } }, true],
    [{ path: 'previous.tags', eq: ['billing', 'urgent'] }, true],
    [{ path: 'previous.tags', eq: ['urgent', 'billing'] }, false],
    [{ path: 'steps.query.output.score', gt: 2 }, true],
    [{ path: 'steps.query.output.score', gte: 3 }, true],
    [{ path: 'steps.query.output.score', lt: 3 }, false],
    [{ path: 'steps.query.output.score', lte: 3 }, true],
    [{ path: 'previous.confidence', lt: 0.8 }, true],
    [{ path: 'steps.query.output.route', gt: 3 }, false],
    [{ path: 'steps.query.output.route', gt: 'alpha' }, true],
    [{ path: 'steps.query.output.missing', lt: 10 }, false],
    [{ path: 'input.customer.tier', in: ['gold', 'platinum'] }, true],
    [{ path: 'input.customer.tier', in: ['silver'] }, false],
    [{ path: 'input.text', contains: 'error 42' }, true],
    [{ path: 'previous.tags', contains: 'urgent' }, true],
    [{ path: 'previous.tags', contains: 'nope' }, false],
    [{ path: 'steps.query.output.score', contains: 3 }, false],
    [{ path: 'steps.query.output.note', exists: true }, true],
    [{ path: 'steps.query.output.missing', exists: false }, true],
    [{ path: 'steps.pay.status', eq: 'failed' }, true],
    [
      {
        all: [
          { path: 'steps.pay.error.code', eq: 'TIMEOUT' },
          { path: 'input.customer.tier', eq: 'gold' },
        ],
      },
      true,
    ],
    [
      {
        all: [
          { path: 'steps.pay.error.code', eq: 'TIMEOUT' },
          { path: 'input.customer.tier', eq: 'x' },
        ],
      },
      false,
    ],
    [
      {
        any: [
          { path: 'input.customer.tier', eq: 'x' },
          { path: 'previous.confidence', gt: 0.5 },
        ],
      },
      true,
    ],
    [{ not: { path: 'input.customer.tier', in: ['gold'] } }, false],
  ])('%j holds: %s', (condition, expected) => {
    expect(holds(condition)).toBe(expected);
  });

  it.each<[unknown, string, string]>([
    [{ path: 'input.x' }, '', 'exactly one of eq'],
    [{ path: 'input.x', eq: 1, ne: 2 }, '', 'got eq, ne'],
    [{ path: 'output.x', eq: 1 }, 'path', "a path starts with input, previous, steps (got 'output')"],
    [{ path: 'steps.query', eq: 1 }, 'path', 'a step path names the step and a field'],
    [{ path: 'steps.query.outputs.x', eq: 1 }, 'path', "(got 'outputs')"],
    [{ path: 'input..x', eq: 1 }, 'path', 'none empty'],
    [{ path: 'input.x', gt: true }, 'gt', ''],
    [{ path: 'input.x', eq: 1, colour: 'red' }, '', ''],
    [{ all: [] }, 'all', ''],
    [{ not: { path: 'nope', eq: 1 } }, 'not.path', 'a path starts with'],
  ])('refuses %j, naming the field %s', (condition, field, message) => {
    const parsed = ConditionSchema.safeParse(condition);
    expect(parsed.success).toBe(false);
    if (parsed.success) return;
    const issues = describeIssues(parsed.error);
    expect(issues.map((i) => i.field)).toContain(field);
    expect(issues.find((i) => i.field === field)!.message).toContain(message);
  });

  it('bounds how large and deep a condition is', () => {
    let deep: Condition = { path: 'input.x', eq: 1 };
    for (let i = 0; i < 9; i++) deep = { not: deep };
    const tooDeep = ConditionSchema.safeParse(deep);
    expect(tooDeep.success).toBe(false);
    const wide = { any: Array.from({ length: 64 }, () => ({ path: 'input.x', eq: 1 })) };
    const tooWide = ConditionSchema.safeParse(wide);
    expect(tooWide.success).toBe(false);
    if (!tooWide.success) expect(describeIssues(tooWide.error)[0]!.message).toContain('at most 64 parts (got 65)');
  });
});
