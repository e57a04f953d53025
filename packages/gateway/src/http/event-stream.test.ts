import type { ServerResponse } from 'node:http';
import { EventStream } from './http-io';

/** A response whose client reads nothing: every write stays buffered. */
function unreadResponse() {
  const res = {
    writableEnded: false,
    destroyed: false,
    writableLength: 0,
    written: [] as string[],
    writeHead: () => res,
    write(chunk: string) {
      res.written.push(chunk);
      res.writableLength += Buffer.byteLength(chunk);
      return false;
    },
    end() {
      res.writableEnded = true;
    },
    destroy() {
      res.destroyed = true;
    },
  };
  return res;
}

describe('an event stream', () => {
  it('writes events as server-sent events, and ends with the last', () => {
    const res = unreadResponse();
    const stream = new EventStream(res as unknown as ServerResponse);
    stream.message({ a: 1 });
    stream.end({ b: 2 });
    expect(res.written).toEqual(['event: message\ndata: {"a":1}\n\n', 'event: message\ndata: {"b":2}\n\n']);
    expect(stream.closed).toBe(true);
  });

  it('cuts off a client that lets more than the limit wait, instead of buffering without end', () => {
    const res = unreadResponse();
    const stream = new EventStream(res as unknown as ServerResponse, 1024);
    for (let i = 0; i < 100; i++) stream.message({ progress: 'x'.repeat(100) });
    expect(res.destroyed).toBe(true);
    expect(res.writableLength).toBeLessThan(1024 + 200);
    expect(stream.closed).toBe(true);
  });
});
