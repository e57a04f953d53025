import type { LedgerTask } from '@openclaw/core';
import { A2aWire, dataOfParts } from './a2a-wire';

const task = (fields: Partial<LedgerTask>): LedgerTask =>
  ({
    taskId: 't-1',
    kind: 'task',
    agent: 'pricer',
    task: 'quote',
    status: 'working',
    createdAt: 1_800_000_000_000,
    updatedAt: 1_800_000_001_000,
    thread: 'case-7',
    ...fields,
  }) as LedgerTask;

describe('A2A wire formats', () => {
  it('writes a completed task in 1.0 (ProtoJSON) and 0.3 (kinds, lower-case states)', () => {
    const done = task({ status: 'completed', output: { price: 3 } });
    expect(new A2aWire('1.0').taskEvent(done)).toEqual({
      task: {
        id: 't-1',
        contextId: 'case-7',
        status: { state: 'TASK_STATE_COMPLETED', timestamp: '2027-01-15T08:00:01.000Z' },
        artifacts: [
          { artifactId: 't-1:output', name: 'output', parts: [{ data: { price: 3 }, mediaType: 'application/json' }] },
        ],
        history: [],
        metadata: { 'openclaw/agent': 'pricer', 'openclaw/task': 'quote' },
      },
    });
    expect(new A2aWire('0.3').taskEvent(done)).toMatchObject({
      kind: 'task',
      status: { state: 'completed' },
      artifacts: [{ parts: [{ kind: 'data', data: { price: 3 } }] }],
    });
  });

  it('wraps a value that is not an object in a 0.3 data part, and reads it back', () => {
    const wire = new A2aWire('0.3');
    expect(wire.part([1, 2])).toEqual({ kind: 'data', data: { value: [1, 2] }, metadata: { data_part_compat: true } });
    expect(wire.part('hi')).toEqual({ kind: 'text', text: 'hi' });
    expect(dataOfParts([wire.part([1, 2])])).toEqual([1, 2]);
    expect(dataOfParts([{ text: 'a' }, { data: { b: 1 } }])).toEqual(['a', { b: 1 }]);
  });

  it('says why a task failed or waits, and marks the last 0.3 status update final', () => {
    const wire = new A2aWire('1.0');
    const rejected = wire.task(
      task({ status: 'rejected', error: { code: 'POLICY_DENIED', message: 'no bulk', retryable: false } }),
    );
    expect(rejected.status).toMatchObject({
      state: 'TASK_STATE_REJECTED',
      message: {
        role: 'ROLE_AGENT',
        parts: [{ text: 'POLICY_DENIED: no bulk' }, { data: { error: { code: 'POLICY_DENIED' } } }],
      },
    });
    const waiting = wire.task(
      task({
        status: 'input-required',
        approvalId: 'ap-1',
        question: { approval: { approvalId: 'ap-1', validator: 'rule:big', reason: 'over ten' } },
      }),
    );
    expect(waiting.status).toMatchObject({
      state: 'TASK_STATE_INPUT_REQUIRED',
      message: { parts: [{ text: 'waiting for an approval (rule:big: over ten); approval ap-1' }, {}] },
    });
    expect(new A2aWire('0.3').statusEvent('t-1', 'c', 'completed', undefined, true)).toMatchObject({
      kind: 'status-update',
      final: true,
      status: { state: 'completed' },
    });
    expect(wire.statusEvent('t-1', 'c', 'working', undefined, false)).toEqual({
      statusUpdate: {
        taskId: 't-1',
        contextId: 'c',
        status: { state: 'TASK_STATE_WORKING', timestamp: expect.any(String) },
      },
    });
  });

  it('refuses messages it cannot read, naming the part', () => {
    expect(() => dataOfParts([])).toThrow('message.parts must be a non-empty list');
    expect(() => dataOfParts([{ url: 'https://example.com/a.pdf' }])).toThrow('message.parts[0] is a file');
    expect(() => dataOfParts([{ text: 'a' }, 3])).toThrow('message.parts[1] must be an object');
    expect(() => dataOfParts([{ mediaType: 'text/plain' }])).toThrow('message.parts[0] has no text or data');
  });
});
