import { randomUUID } from 'node:crypto';
import { newTaskId, taskIdTime } from './task-ids';

describe('task ids', () => {
  it('are version 7 UUIDs that carry their creation time', () => {
    const at = Date.UTC(2026, 11, 3, 4, 5, 6, 789);
    const id = newTaskId(at);
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(taskIdTime(id)).toBe(at);
    expect(newTaskId(at)).not.toBe(id);
  });

  it('tell no time for other ids', () => {
    expect(taskIdTime(randomUUID())).toBeUndefined();
    expect(taskIdTime('a-task-of-mine')).toBeUndefined();
  });
});
