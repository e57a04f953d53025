// An A2A client of the gateway: runs `my-agent`'s task `process-data` through its A2A endpoint, once
// waiting for the task and once as a stream. It uses the official A2A SDK (npm install @a2a-js/sdk).
// Run from the repository root while examples/agent.mjs runs: node examples/a2a-client.mjs
import { randomUUID } from 'node:crypto';
import { Role, TaskState } from '@a2a-js/sdk';
import { ClientFactory, DefaultAgentCardResolver, JsonRpcTransportFactory } from '@a2a-js/sdk/client';

const key = process.env.OPENCLAW_API_KEY;
const fetchImpl = (url, init = {}) => {
  const headers = new Headers(init.headers);
  if (key) headers.set('x-api-key', key);
  return fetch(url, { ...init, headers });
};
// The agent's card is at <gateway>/a2a/my-agent/.well-known/agent-card.json: mind the trailing slash.
const client = await new ClientFactory({
  transports: [new JsonRpcTransportFactory({ fetchImpl })],
  cardResolver: new DefaultAgentCardResolver({ fetchImpl }),
}).createFromUrl(process.env.OPENCLAW_A2A_URL ?? 'http://127.0.0.1:18789/a2a/my-agent/');

const message = () => ({
  messageId: randomUUID(),
  role: Role.ROLE_USER,
  parts: [{ content: { $case: 'data', value: { text: 'hello over A2A' } } }],
  metadata: { 'openclaw/task': 'process-data' },
});

// Blocking: the answer is the task once it has ended (or waits for a person).
const task = await client.sendMessage({ message: message() });
console.log('task', TaskState[task.status.state], task.artifacts[0]?.parts[0]?.content?.value);

// Streaming: the agent's progress and its output as they come.
let state;
for await (const { payload } of client.sendMessageStream({ message: message() })) {
  if (payload.$case === 'statusUpdate') {
    state = payload.value.status.state;
    const said = payload.value.status.message?.parts[0]?.content?.value;
    if (state === TaskState.TASK_STATE_WORKING && said !== undefined) console.log('progress', said);
  }
  if (payload.$case === 'artifactUpdate') console.log('artifact', payload.value.artifact.parts[0].content.value);
}
console.log('stream ended', TaskState[state]);
