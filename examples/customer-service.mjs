// Customer service as a workflow: a query agent answers what it can and routes the rest; technical
// support answers what it can; anything left goes to a person. The routing is the workflow's (a
// switch on the query agent's verdict, a condition on technical support's), not coded in an agent.
// The conversation lives in a memory thread, one per case: every agent reads it (the customer's
// question, what the agents before it said) and adds its own part; the calls carry no history.
// Run from the repository root with the stack up (`npm start`): node examples/customer-service.mjs
import { randomUUID } from 'node:crypto';
import { connect, InputRequired } from '@openclaw/sdk';

const customerService = {
  name: 'customer-service',
  steps: [
    { id: 'query', agent: 'query-agent', task: 'answer' },
    {
      id: 'route',
      switch: 'steps.query.output.route', // answered | technical | anything else
      cases: {
        answered: [],
        technical: [
          { id: 'support', agent: 'tech-support', task: 'answer' },
          {
            id: 'escalate',
            when: { path: 'steps.support.output.resolved', eq: false },
            agent: 'human-desk',
            task: 'take-over',
            escalation: { timeoutMs: 3_600_000 },
          },
        ],
      },
      default: [{ id: 'handoff', agent: 'human-desk', task: 'take-over', escalation: { timeoutMs: 3_600_000 } }],
    },
    { id: 'reply', agent: 'mailer', task: 'send' },
  ],
};

const client = await connect({
  url: process.env.OPENCLAW_URL ?? 'ws://127.0.0.1:18789',
  apiKey: process.env.OPENCLAW_API_KEY,
});

/** The customer's question: the first entry of the case's thread. */
async function question(ctx) {
  const [first] = await ctx.memory.read();
  return String(first.content);
}

// The agents. Each would be its own service; here they share one connection to stay on one page.
const query = client.agent('query-agent');
query.handle('answer', async (_data, ctx) => {
  const asked = await question(ctx);
  if (/opening hours/i.test(asked)) {
    await ctx.memory.append({ role: 'query-agent', content: 'We are open 9 to 17.' });
    return { route: 'answered' };
  }
  await ctx.memory.append({ role: 'query-agent', content: 'passed on', meta: { internal: true } });
  return { route: /error|crash/i.test(asked) ? 'technical' : 'person' };
});
const support = client.agent('tech-support');
support.handle('answer', async (_data, ctx) => {
  if (!/error 42/.test(await question(ctx))) return { resolved: false };
  await ctx.memory.append({ role: 'tech-support', content: 'Error 42: update the app to 2.1.' });
  return { resolved: true };
});
const desk = client.agent('human-desk');
desk.handle('take-over', async (_data, ctx) => {
  // The person on duty sees the whole conversation.
  throw new InputRequired('a person must answer this one', {
    thread: ctx.thread,
    conversation: await ctx.memory.read(),
  });
});
const mailer = client.agent('mailer');
mailer.handle('send', async (_data, ctx) => {
  // The answer is the thread's last entry that is not internal.
  const answer = (await ctx.memory.read()).filter((e) => e.role !== 'customer' && !e.meta?.internal).at(-1);
  return { sent: true, by: answer.role, answer: answer.content };
});
await Promise.all([query, support, desk, mailer].map((agent) => agent.register()));

// Four customers, a thread each. When a case waits for a person, this script plays the person on duty.
const questions = [
  'What are your opening hours?',
  'The app shows error 42',
  'The app crashes at start',
  'My bill is wrong',
];
for (const asked of questions) {
  const thread = `case-${randomUUID()}`;
  await client.memory.append(thread, { role: 'customer', content: asked });
  const { taskId } = await client.startWorkflow(customerService, null, { thread });
  const outcome = await client.waitForTask(taskId, {
    onStatus: async (event) => {
      if (event.status !== 'input-required') return;
      await client.memory.append(thread, { role: 'a person', content: 'Reinstall the app; we will call you.' });
      await client.taskRespond(taskId, { by: 'a person' });
    },
  });
  const { steps } = await client.taskGet(taskId);
  const path = steps.map((s) => (s.case ? `${s.id}=${s.case}` : s.status === 'skipped' ? `(${s.id} skipped)` : s.id));
  const conversation = await client.memory.read(thread);
  console.log(
    `${JSON.stringify(asked)}: ${outcome.status}, answered by ${outcome.output.by}: ${outcome.output.answer}`,
  );
  console.log(`  steps: ${path.join(' > ')}`);
  console.log(`  memory: ${conversation.map((e) => e.role).join(' > ')}`);
}
await client.close();
