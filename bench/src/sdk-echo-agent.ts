// The TypeScript SDK's echo agent, as a user writes one: the peer of bench/python/echo_agent.py in
// `npm run bench:python`. Usage: node bench/dist/sdk-echo-agent.js <ws-url> <agent-name> <concurrency>
import { connect } from '@openclaw/sdk';

async function main(): Promise<void> {
  const [url = 'ws://127.0.0.1:18789', name = 'echo-ts', concurrency = '256'] = process.argv.slice(2);
  const client = await connect({ url });
  const agent = client.agent(name, { concurrency: Number(concurrency) });
  agent.handle('echo', async (data) => data);
  await agent.register();
  process.stdout.write(`${name} ready\n`);
  // The benchmark holds an IPC channel: it closing (the benchmark ended or died) ends this agent too.
  process.once('disconnect', () => void client.close().then(() => process.exit(0)));
}

void main().catch((error: unknown) => {
  process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
