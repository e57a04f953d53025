// Customer service as a workflow: a query agent answers what it can and routes the rest; technical
// support answers what it can; anything left goes to a person. The routing is the workflow's (a
// switch on the query agent's verdict, a condition on technical support's), not coded in an agent.
// Run from the repository root with the stack up (`npm start`): node examples/customer-service.mjs
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

// The agents. Each would be its own service; here they share one connection to stay on one page.
const query = client.agent('query-agent');
query.handle('answer', async ({ question }) => {
  if (/opening hours/i.test(question)) return { route: 'answered', by: 'query-agent', answer: 'We are open 9 to 17.' };
  if (/error|crash/i.test(question)) return { route: 'technical', question };
  return { route: 'person', question };
});
const support = client.agent('tech-support');
support.handle('answer', async ({ question }) =>
  /error 42/.test(question)
    ? { resolved: true, by: 'tech-support', answer: 'Error 42: update the app to 2.1.' }
    : { resolved: false, question },
);
const desk = client.agent('human-desk');
desk.handle('take-over', async ({ question }) => {
  throw new InputRequired('a person must answer this one', { question });
});
const mailer = client.agent('mailer');
mailer.handle('send', async ({ answer, by }) => ({ sent: true, by, answer }));
await Promise.all([query, support, desk, mailer].map((agent) => agent.register()));

// Four customers. When a case waits for a person, this script plays the person on duty.
const questions = [
  'What are your opening hours?',
  'The app shows error 42',
  'The app crashes at start',
  'My bill is wrong',
];
for (const question of questions) {
  const { taskId } = await client.startWorkflow(customerService, { question });
  const outcome = await client.waitForTask(taskId, {
    onStatus: async (event) => {
      if (event.status !== 'input-required') return;
      await client.taskRespond(taskId, { by: 'a person', answer: 'Reinstall the app; we will call you.' });
    },
  });
  const { steps } = await client.taskGet(taskId);
  const path = steps.map((s) => (s.case ? `${s.id}=${s.case}` : s.status === 'skipped' ? `(${s.id} skipped)` : s.id));
  console.log(
    `${JSON.stringify(question)}: ${outcome.status}, answered by ${outcome.output.by}: ${outcome.output.answer}`,
  );
  console.log(`  steps: ${path.join(' > ')}`);
}
await client.close();
