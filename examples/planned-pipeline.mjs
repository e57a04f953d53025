// A planned pipeline: a planner agent returns the steps to run as data, and the workflow checks
// them (schema, ids, limits, the caller's permissions), lets governance check each call, and runs
// them. The planner here is a few rules standing in for a language model.
// Run from the repository root with the stack up (`npm start`): node examples/planned-pipeline.mjs
import { connect } from '@openclaw/sdk';

const client = await connect({
  url: process.env.OPENCLAW_URL ?? 'ws://127.0.0.1:18789',
  apiKey: process.env.OPENCLAW_API_KEY,
});

const planner = client.agent('planner');
planner.handle('plan', async ({ source, goal }) => {
  const steps = [{ id: 'fetch', agent: 'fetcher', task: 'fetch' }];
  if (source.endsWith('.csv')) steps.push({ id: 'clean', agent: 'cleaner', task: 'clean' });
  if (goal === 'report') steps.push({ id: 'report', agent: 'reporter', task: 'report' });
  return { steps, input: { url: source } };
});
const fetcher = client.agent('fetcher');
fetcher.handle('fetch', async ({ url }) => ({ rows: [' north ', 'south', ' east'], from: url }));
const cleaner = client.agent('cleaner');
cleaner.handle('clean', async ({ rows }) => ({ rows: rows.map((r) => r.trim()) }));
const reporter = client.agent('reporter');
reporter.handle('report', async ({ rows }) => ({ report: `${rows.length} regions: ${rows.join(', ')}` }));
await Promise.all([planner, fetcher, cleaner, reporter].map((agent) => agent.register()));

const workflow = {
  name: 'planned-pipeline',
  steps: [{ id: 'plan', plan: { agent: 'planner', task: 'plan' }, maxSteps: 8 }],
};
const { taskId } = await client.startWorkflow(workflow, { source: 'https://example.com/sales.csv', goal: 'report' });
const outcome = await client.waitForTask(taskId);
const { steps } = await client.taskGet(taskId);
console.log(`planned: ${steps[0].planned.join(', ')}`);
console.log(`${outcome.status}:`, outcome.output);
await client.close();
