// A caller: asks `my-agent` to process some text and prints the progress and the output.
// Run from the repository root while examples/agent.mjs runs: node examples/caller.mjs
import { connect, GatewayError } from '@openclaw/sdk';

const client = await connect({
  url: process.env.OPENCLAW_URL ?? 'ws://127.0.0.1:18789',
  apiKey: process.env.OPENCLAW_API_KEY,
});
try {
  const output = await client.call(
    'my-agent',
    'process-data',
    { text: 'hello from the caller' },
    { timeoutMs: 10_000, onProgress: (progress) => console.log('progress', progress) },
  );
  console.log('output', output);
} catch (error) {
  if (!(error instanceof GatewayError)) throw error;
  console.error(error.code, error.message);
  process.exitCode = 1;
} finally {
  await client.close();
}
