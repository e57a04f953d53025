// The protocol with nothing but a WebSocket, as a web page speaks it: Node.js 22 and later have the
// browser's global WebSocket, so this file runs unchanged in both. Asks `my-agent` (examples/agent.mjs)
// to count words. Run with the stack and the agent up: node examples/browser-style.mjs
// A browser cannot set headers on a WebSocket: with authentication on, the key goes in the URL
// (`?api_key=<key>`; a token as `?access_token=<token>`). The gateway never logs either.
const url = new URL(process.env.OPENCLAW_URL ?? 'ws://127.0.0.1:18789');
if (process.env.OPENCLAW_API_KEY) url.searchParams.set('api_key', process.env.OPENCLAW_API_KEY);

const ws = new WebSocket(url);
ws.onopen = () => {
  ws.send(
    JSON.stringify({
      action: 'coordinator',
      id: 1,
      agent: 'my-agent',
      task: 'process-data',
      data: { text: 'hello from a bare WebSocket' },
    }),
  );
};
ws.onmessage = (message) => {
  const frame = JSON.parse(message.data);
  if (frame.event === 'task.progress') return console.log('progress', frame.progress);
  if (frame.id !== 1 || frame.ok === undefined) return; // responses have `ok`; events have `event`
  if (frame.ok) console.log('output', frame.result.output);
  else console.error(frame.error.code, frame.error.message);
  process.exitCode = frame.ok ? 0 : 1;
  ws.close();
};
ws.onerror = () => {
  console.error(`could not connect to ${url.origin}${url.pathname}`);
  process.exitCode = 1;
};
