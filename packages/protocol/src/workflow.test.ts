import { describeIssues } from './validation';
import { joinCount, type ParallelStep, WorkflowDefinitionSchema } from './workflow';

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
