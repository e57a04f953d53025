import type { Frame, TestSocket } from './ws-client';

const TERMINAL = new Set(['completed', 'failed', 'canceled', 'rejected']);

/** Reads the `task.status` events of a task until a terminal one; returns them all, in order. */
export async function taskStatuses(socket: TestSocket, taskId: string, timeoutMs = 30_000): Promise<Frame[]> {
  const seen: Frame[] = [];
  for (;;) {
    const event = await socket.nextFrame(
      (f) => f.event === 'task.status' && f.taskId === taskId,
      timeoutMs,
      `task.status of ${taskId}`,
    );
    seen.push(event);
    if (TERMINAL.has(event.status as string)) return seen;
  }
}

/** The terminal `task.status` event of a task (the ones before it are consumed). */
export async function taskEnd(socket: TestSocket, taskId: string, timeoutMs = 30_000): Promise<Frame> {
  return (await taskStatuses(socket, taskId, timeoutMs)).at(-1)!;
}

/** Submits an async task over a raw socket and returns its id; fails the test if it is refused. */
export async function submitAsync(socket: TestSocket, params: Record<string, unknown>): Promise<string> {
  const reply = await socket.request({ action: 'coordinator', id: `s-${Math.random()}`, mode: 'async', ...params });
  if (reply.ok !== true) throw new Error(`async submit failed: ${JSON.stringify(reply)}`);
  return (reply.result as { taskId: string }).taskId;
}
