// Load generation shared by the smaller benchmarks: a request/response WebSocket client speaking raw
// frames, and a timed loop of operations at a fixed number in flight.
import WebSocket from 'ws';

/** A connection that sends request frames and resolves each with its response frame. */
export interface FrameClient {
  ws: WebSocket;
  /** Sends `frame` with a fresh id; resolves with the response, or rejects with it when it is an error. */
  request(frame: Record<string, unknown>): Promise<Record<string, unknown>>;
}

/** Opens a {@link FrameClient} on `url`. */
export async function frameClient(url: string): Promise<FrameClient> {
  const ws = new WebSocket(url, { perMessageDeflate: false });
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  const waiting = new Map<number, { resolve: (f: Record<string, unknown>) => void; reject: (e: Error) => void }>();
  let next = 1;
  ws.on('message', (raw) => {
    const frame = JSON.parse(String(raw)) as Record<string, unknown>;
    if (typeof frame.id !== 'number') return;
    const waiter = waiting.get(frame.id);
    waiting.delete(frame.id);
    if (frame.ok === true) waiter?.resolve(frame);
    else waiter?.reject(new Error(`request failed: ${String(raw)}`));
  });
  return {
    ws,
    request: (frame) =>
      new Promise((resolve, reject) => {
        const id = next++;
        waiting.set(id, { resolve, reject });
        ws.send(JSON.stringify({ ...frame, id }));
      }),
  };
}

/**
 * Runs `op` in `inFlight` loops for `ms` milliseconds (the `i`-th operation gets `i`). @returns the
 * latencies (ms) of the operations that ended within the time.
 */
export async function measureFor(ms: number, inFlight: number, op: (i: number) => Promise<unknown>): Promise<number[]> {
  const until = performance.now() + ms;
  const samples: number[] = [];
  let n = 0;
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (performance.now() < until) {
        const t = performance.now();
        await op(n++);
        if (performance.now() <= until) samples.push(performance.now() - t);
      }
    }),
  );
  return samples;
}
