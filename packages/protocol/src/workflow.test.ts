import { describeIssues } from './validation';
import { joinCount, type ParallelStep, PlanSchema, WorkflowDefinitionSchema, workflowCalls } from './workflow';

describe('WorkflowDefinitionSchema', () => {
  it('accepts sequential and parallel steps with their policies', () => {
    const parsed = WorkflowDefinitionSchema.safeParse({
      name: 'pipeline',
      deadlineMs: 60_000,
      steps: [
        { id: 'fetch', agent: 'fetcher', task: 'fetch', retry: { attempts: 3, backoffMs: 100 }, onFailure: 'fail' },
        {
          id: 'vote',
          parallel: [
            { id: 'a', agent: 'voter-a', task: 'vote' },
            { id: 'b', agent: 'voter-b', task: 'vote', input: { fixed: true } },
          ],
          join: { mode: 'first', count: 1 },
          onFailure: 'escalate',
          escalation: { timeoutMs: 1000, onTimeout: 'continue' },
        },
      ],
    });
    expect(parsed.success).toBe(true);
  });

  it.each([
    [{ steps: [] }, 'steps'],
    [{ steps: [{ id: 'x', agent: 'A B', task: 't' }] }, 'steps.0.agent'],
    [{ steps: [{ id: 'x', agent: 'a', task: 't', onFailure: 'ignore' }] }, 'steps.0.onFailure'],
    [{ steps: [{ id: 'x', agent: 'a', task: 't', retry: { attempts: 0 } }] }, 'steps.0.retry.attempts'],
    [{ steps: [{ id: 'x', agent: 'a', task: 't', colour: 'red' }] }, 'steps.0'],
    [
      {
        steps: [
          { id: 'x', agent: 'a', task: 't' },
          { id: 'x', agent: 'b', task: 't' },
        ],
      },
      'steps.1.id',
    ],
    [{ steps: [{ id: 'p', parallel: [{ id: 'p', agent: 'a', task: 't' }] }] }, 'steps.0.parallel.0.id'],
    [
      { steps: [{ id: 'p', parallel: [{ id: 'a', agent: 'a', task: 't' }], join: { mode: 'first', count: 2 } }] },
      'steps.0.join.count',
    ],
  ])('refuses %j, naming %s', (definition, field) => {
    const parsed = WorkflowDefinitionSchema.safeParse(definition);
    expect(parsed.success).toBe(false);
    if (!parsed.success) expect(describeIssues(parsed.error).map((i) => i.field)).toContain(field);
  });
});

describe('conditional, switch and plan steps', () => {
  const customerService = {
    name: 'customer-service',
    steps: [
      { id: 'query', agent: 'query-agent', task: 'answer' },
      {
        id: 'route',
        switch: 'steps.query.output.route',
        cases: {
          answered: [],
          technical: [
            { id: 'support', agent: 'tech-support', task: 'answer' },
            {
              id: 'escalate',
              when: { path: 'steps.support.output.resolved', eq: false },
              agent: 'human-desk',
              task: 'take-over',
            },
          ],
        },
        default: [{ id: 'handoff', agent: 'human-desk', task: 'take-over' }],
      },
      { id: 'plan', plan: { agent: 'planner', task: 'plan' }, maxSteps: 4, when: { path: 'input.plan', eq: true } },
      { id: 'reply', agent: 'mailer', task: 'send', when: { path: 'steps.route.case', ne: 'none' } },
    ],
  };

  it('accepts when, switch with nested cases, and plan steps', () => {
    expect(WorkflowDefinitionSchema.safeParse(customerService).success).toBe(true);
  });

  it('lists every call a workflow can make: every case, and the planner', () => {
    const def = WorkflowDefinitionSchema.parse(customerService);
    expect(workflowCalls(def.steps).map((c) => c.agent)).toEqual([
      'query-agent',
      'tech-support',
      'human-desk',
      'human-desk',
      'planner',
      'mailer',
    ]);
  });

  const step = (extra: object) => ({ id: 'later', agent: 'a', task: 't', ...extra });
  it.each<[string, object, string, string]>([
    [
      'a condition on a later step',
      { steps: [step({ id: 'first', when: { path: 'steps.later.output.x', eq: 1 } }), step({})] },
      'steps.0.when',
      "step 'first': its condition reads step 'later', which is not an earlier step",
    ],
    [
      'a condition on itself',
      { steps: [step({ when: { path: 'steps.later.status', eq: 'completed' } })] },
      'steps.0.when',
      "reads step 'later'",
    ],
    [
      'a switch on an unknown step',
      { steps: [{ id: 'route', switch: 'steps.ghost.output', cases: {} }] },
      'steps.0.switch',
      "the switch reads step 'ghost'",
    ],
    [
      'a bad path',
      { steps: [{ id: 'route', switch: 'output.route', cases: {} }] },
      'steps.0.switch',
      'a path starts with input, previous, steps',
    ],
    [
      'an id used in two cases',
      {
        steps: [
          {
            id: 'route',
            switch: 'input.kind',
            cases: { a: [step({ id: 'x' })], b: [step({ id: 'x' })] },
          },
        ],
      },
      'steps.0.cases.b.0.id',
      "step id 'x' is used twice",
    ],
    [
      'a bad case name',
      { steps: [{ id: 'route', switch: 'input.kind', cases: { __proto__x: [] } }] },
      'steps.0.cases.__proto__x',
      'case names are',
    ],
    [
      'a plan allowed too many steps',
      { steps: [{ id: 'p', plan: { agent: 'planner', task: 'plan' }, maxSteps: 65 }] },
      'steps.0.maxSteps',
      '',
    ],
    [
      'a bad condition in a nested case',
      {
        steps: [{ id: 'route', switch: 'input.kind', cases: { a: [step({ when: { path: 'input.x' } })] } }],
      },
      'steps.0.cases.a.0.when',
      'exactly one of',
    ],
  ])('refuses %s, naming the step', (_what, definition, field, message) => {
    const parsed = WorkflowDefinitionSchema.safeParse(definition);
    expect(parsed.success).toBe(false);
    if (parsed.success) return;
    const issues = describeIssues(parsed.error);
    expect(issues.map((i) => i.field)).toContain(field);
    expect(issues.find((i) => i.field === field)!.message).toContain(message);
  });

  it('bounds how deep switches nest', () => {
    let steps: object[] = [step({})];
    for (let i = 0; i < 5; i++) steps = [{ id: `s${i}`, switch: 'input.k', cases: { a: steps } }];
    const parsed = WorkflowDefinitionSchema.safeParse({ steps });
    expect(parsed.success).toBe(false);
    if (!parsed.success) expect(describeIssues(parsed.error)[0]!.message).toContain('switch steps nest at most 4 deep');
  });

  it('reads a plan as steps and an optional input', () => {
    expect(PlanSchema.safeParse({ steps: [step({})], input: { x: 1 } }).success).toBe(true);
    expect(PlanSchema.safeParse({ steps: [] }).success).toBe(true);
    expect(PlanSchema.safeParse([step({})]).success).toBe(false);
    expect(PlanSchema.safeParse({ steps: [step({})], extra: 1 }).success).toBe(false);
  });
});

describe('joinCount', () => {
  const step = (n: number, join?: ParallelStep['join']): ParallelStep => ({
    id: 's',
    parallel: Array.from({ length: n }, (_, i) => ({ id: `b${i}`, agent: 'a', task: 't' })),
    ...(join ? { join } : {}),
  });
  it('needs every branch by default, the first N, or a majority for a quorum', () => {
    expect(joinCount(step(3))).toBe(3);
    expect(joinCount(step(3, { mode: 'first' }))).toBe(1);
    expect(joinCount(step(5, { mode: 'first', count: 2 }))).toBe(2);
    expect(joinCount(step(3, { mode: 'quorum' }))).toBe(2);
    expect(joinCount(step(4, { mode: 'quorum' }))).toBe(3);
    expect(joinCount(step(5, { mode: 'quorum', count: 4 }))).toBe(4);
  });
});
