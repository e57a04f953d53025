import { GovernancePolicySchema } from '../config/governance-policy';
import { approvalHash } from './approval-record';
import { GovernanceGate } from './governance-gate';
import { GovernancePipeline, validatorsOf } from './pipeline';

const message = {
  direction: 'request' as const,
  tenant: 'acme',
  principal: 'apikey:1',
  agent: 'payments',
  task: 'transfer',
  data: { amount: 5000, to: { iban: 'DE02', name: 'Ann' } },
};

describe('approvals', () => {
  it('binds an approval to the message: key order does not matter, any change of field or caller does', () => {
    const hash = approvalHash(message);
    expect(hash).toMatch(/^[0-9a-f]{64}$/);
    expect(approvalHash({ ...message, data: { to: { name: 'Ann', iban: 'DE02' }, amount: 5000 } })).toBe(hash);
    expect(approvalHash({ ...message, data: { ...message.data, amount: 5001 } })).not.toBe(hash);
    expect(approvalHash({ ...message, principal: 'apikey:2' })).not.toBe(hash);
    expect(approvalHash({ ...message, tenant: 'globex' })).not.toBe(hash);
    expect(approvalHash({ ...message, direction: 'response' })).not.toBe(hash);
    expect(approvalHash({ ...message, data: [1, 2] })).not.toBe(approvalHash({ ...message, data: [2, 1] }));
  });

  it("takes a rule's approval settings over the policy's defaults over the built-in ones", async () => {
    const policy = GovernancePolicySchema.parse({
      approvals: { approvers: 2, expiresMs: 60_000 },
      rules: [
        { name: 'a', when: { task: 'a' }, verdict: 'require-approval', approval: { role: 'finance' } },
        { name: 'b', when: { task: 'b' }, verdict: 'require-approval' },
      ],
    });
    const gate = new GovernanceGate({ policy: () => policy });
    const pipeline = new GovernancePipeline(validatorsOf(policy));
    const judged = async (task: string) => (await pipeline.run({ ...message, task, roles: [], agents: [] })).decisive!;
    expect(gate.requirement(await judged('a'))).toEqual({ approvers: 2, expiresMs: 60_000, role: 'finance' });
    expect(gate.requirement(await judged('b'))).toEqual({ approvers: 2, expiresMs: 60_000 });
    expect(new GovernanceGate({ policy: () => undefined }).requirement(await judged('b'))).toEqual({
      approvers: 1,
      expiresMs: 900_000,
    });
  });

  it('refuses approval settings that cannot work, naming the field', () => {
    const wrongVerdict = GovernancePolicySchema.safeParse({
      rules: [{ name: 'x', verdict: 'deny', approval: { approvers: 2 } }],
    });
    expect(wrongVerdict.success).toBe(false);
    expect(wrongVerdict.error?.issues[0]?.path).toEqual(['rules', 0, 'approval']);
    const tooMany = GovernancePolicySchema.safeParse({
      rules: [{ name: 'x', verdict: 'require-approval', approval: { approvers: 3, principals: ['a', 'b'] } }],
    });
    expect(tooMany.success).toBe(false);
    expect(tooMany.error?.issues[0]?.path).toEqual(['rules', 0, 'approval', 'approvers']);
  });

  it('refuses a message needing approval where none can be asked for (no approval store or no caller waiting)', async () => {
    const policy = GovernancePolicySchema.parse({ rules: [{ name: 'all', verdict: 'require-approval' }] });
    const gate = new GovernanceGate({ policy: () => policy });
    await expect(gate.check({ ...message, roles: [], agents: [] })).rejects.toMatchObject({
      code: 'POLICY_DENIED',
      details: { validator: 'rule:all' },
    });
  });
});
