import { ACTION_PARAMS, describeIssues, isActionName } from './index';

describe('action schemas', () => {
  it('accept the plain browser frame with no id', () => {
    const parsed = ACTION_PARAMS.coordinator.safeParse({
      action: 'coordinator',
      agent: 'my-agent',
      task: 'process-data',
    });
    expect(parsed.success).toBe(true);
  });

  it('name the failing field', () => {
    const parsed = ACTION_PARAMS.coordinator.safeParse({ agent: 'My Agent', task: 7 });
    expect(parsed.success).toBe(false);
    if (parsed.success) return;
    expect(
      describeIssues(parsed.error)
        .map((i) => i.field)
        .sort(),
    ).toEqual(['agent', 'task']);
  });

  it('reject agent names outside the pattern', () => {
    for (const name of ['', '-x', 'A', 'a b', 'x'.repeat(64)]) {
      expect(ACTION_PARAMS.register.safeParse({ name }).success).toBe(false);
    }
    expect(ACTION_PARAMS.register.safeParse({ name: 'a.b_c-9' }).success).toBe(true);
  });

  it('know their action names and nothing else', () => {
    expect(isActionName('coordinator')).toBe(true);
    expect(isActionName('toString')).toBe(false);
    expect(isActionName('__proto__')).toBe(false);
  });
});
