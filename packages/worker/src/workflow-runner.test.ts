import type { LedgerTask } from '@openclaw/core';
import { humanWaitOf } from './workflow-steps';

function child(fields: Partial<LedgerTask>): LedgerTask {
  return {
    taskId: 'child-1',
    kind: 'task',
    agent: 'payer',
    task: 'pay',
    status: 'input-required',
    createdAt: 1_000,
    updatedAt: 5_000,
    principal: 'alice',
    tenant: 'default',
    from: { replica: 'r1', session: 's1' } as unknown as LedgerTask['from'],
    roles: [],
    data: null,
    timeoutMs: 30_000,
    maxAttempts: 1,
    backoffMs: 1000,
    attempts: 1,
    cancelRequested: false,
    escalationTimeoutMs: 60_000,
    escalationOnTimeout: 'fail',
    retentionMs: 60_000,
    ...fields,
  };
}

describe('humanWaitOf', () => {
  it('says a step waits for the decision of an approval, by whom, since and until when', () => {
    const wait = humanWaitOf(
      'pay',
      child({
        stepId: 'pay',
        approvalId: 'ap-1',
        escalateUntil: 905_000,
        question: {
          approval: {
            approvalId: 'ap-1',
            validator: 'big-payments',
            reason: 'amount over 1000',
            direction: 'request',
            required: { approvers: 2, role: 'finance' },
            expiresAt: 905_000,
          },
        },
      }),
    );
    expect(wait).toEqual({
      step: 'pay',
      taskId: 'child-1',
      agent: 'payer',
      needs: 'approval',
      permission: 'approval:decide',
      approvalId: 'ap-1',
      required: { approvers: 2, role: 'finance' },
      message: 'amount over 1000',
      since: 5_000,
      until: 905_000,
    });
  });

  it('says a parallel branch waits for an answer with task:respond', () => {
    const wait = humanWaitOf(
      'review',
      child({ stepId: 'legal', escalateUntil: 65_000, question: { message: 'is this clause fine?' } }),
    );
    expect(wait).toEqual({
      step: 'review',
      branch: 'legal',
      taskId: 'child-1',
      agent: 'payer',
      needs: 'answer',
      permission: 'task:respond',
      message: 'is this clause fine?',
      since: 5_000,
      until: 65_000,
    });
  });
});
