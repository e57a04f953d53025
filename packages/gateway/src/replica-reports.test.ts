import type { ValidatorStats } from '@openclaw/core';
import { type ReplicaReport, summarizeValidators } from './replica-reports';

const stats = (s: Partial<ValidatorStats>): ValidatorStats => ({
  checks: 0,
  denies: 0,
  redactions: 0,
  approvals: 0,
  wouldDeny: 0,
  failures: 0,
  overBudget: 0,
  totalMs: 0,
  maxMs: 0,
  ...s,
});

const report = (replicaId: string, validators: Record<string, ValidatorStats> | undefined) =>
  ({ replicaId, validators }) as unknown as ReplicaReport;

describe('summarizeValidators', () => {
  it('sums every replica’s verdicts by validator, with the mean and the worst time', () => {
    const summary = summarizeValidators([
      report('A', {
        'rule:pii': stats({ checks: 10, denies: 2, redactions: 3, totalMs: 5, maxMs: 1.5 }),
        'model:tone': stats({
          checks: 4,
          approvals: 1,
          failures: 1,
          denies: 1,
          overBudget: 2,
          totalMs: 400,
          maxMs: 150,
        }),
      }),
      report('B', { 'rule:pii': stats({ checks: 30, denies: 1, totalMs: 15, maxMs: 0.5 }) }),
      // A replica of an older version reports no validators.
      report('C', undefined),
    ]);
    expect(summary).toEqual([
      {
        validator: 'model:tone',
        checks: 4,
        allows: 2,
        denies: 1,
        redactions: 0,
        approvals: 1,
        wouldDeny: 0,
        failures: 1,
        overBudget: 2,
        meanMs: 100,
        maxMs: 150,
      },
      {
        validator: 'rule:pii',
        checks: 40,
        allows: 34,
        denies: 3,
        redactions: 3,
        approvals: 0,
        wouldDeny: 0,
        failures: 0,
        overBudget: 0,
        meanMs: 0.5,
        maxMs: 1.5,
      },
    ]);
  });

  it('does not count a dry run’s would-be deny as an allow', () => {
    const [shadow] = summarizeValidators([report('A', { 'rule:shadow': stats({ checks: 5, wouldDeny: 2 }) })]);
    expect(shadow).toMatchObject({ checks: 5, allows: 3, wouldDeny: 2, denies: 0 });
  });
});
