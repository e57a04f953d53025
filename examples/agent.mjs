// An agent: registers as `my-agent` and counts the words of the text it is given.
// Run from the repository root with the stack up (`npm start`): node examples/agent.mjs
import { connect } from '@openclaw/sdk';

const client = await connect({
  url: process.env.OPENCLAW_URL ?? 'ws://127.0.0.1:18789',
  apiKey: process.env.OPENCLAW_API_KEY,
});

const agent = client.agent('my-agent', { concurrency: 4 });
agent.handle('process-data', async (data, ctx) => {
  ctx.progress({ stage: 'counting' });
  const text = typeof data?.text === 'string' ? data.text : '';
  return { words: text.split(/\s+/).filter(Boolean).length };
});
await agent.register();
console.log('my-agent is ready; Ctrl-C to stop');

process.once('SIGINT', () => void client.close());
process.once('SIGTERM', () => void client.close());
