import { BusMessageSchema, parseBusMessage } from './bus-message';

const envelope = {
  id: 'm1',
  sender: 'A',
  ts: 1,
  traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
};
const dispatch = {
  ...envelope,
  type: 'task.dispatch',
  taskId: 't1',
  instanceId: 'i1',
  task: 'echo',
  data: { any: ['thing'] },
  from: { principal: 'alice' },
  deadline: 10,
  attempt: 1,
};
const reply = {
  ...envelope,
  type: 'task.reply',
  taskId: 't1',
  instanceId: 'i1',
  outcome: { kind: 'result', output: 7 },
};

describe('parseBusMessage', () => {
  it('accepts what the schema accepts, and refuses what it refuses, for the messages every call carries', () => {
    const cases: unknown[] = [
      dispatch,
      reply,
      { ...reply, outcome: { kind: 'progress', progress: { pct: 5 } } },
      { ...dispatch, from: { principal: 'alice', agents: ['x'], chain: ['a'] } },
      { ...reply, outcome: { kind: 'refused', reason: 'busy' } },
      // Malformed ones.
      { ...dispatch, traceparent: 'nope' },
      { ...dispatch, attempt: 0 },
      { ...dispatch, deadline: 1.5 },
      { ...dispatch, from: { principal: 5 } },
      { ...dispatch, from: { principal: 'alice', agents: 'x' } },
      { ...reply, outcome: { kind: 'result' } },
      { ...reply, outcome: { kind: 'refused', reason: 'tired' } },
      { ...reply, id: '' },
      { ...reply, sender: 'x'.repeat(65) },
      { ...reply, taskId: 5 },
      null,
      'task.reply',
    ];
    for (const message of cases) {
      const quick = parseBusMessage(message);
      expect({ message, accepted: quick.success }).toEqual({
        message,
        accepted: BusMessageSchema.safeParse(message).success,
      });
    }
  });

  it('keeps every field of a message it accepts', () => {
    expect(parseBusMessage(dispatch)).toEqual({ success: true, data: dispatch });
  });
});
