import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { type Browser, chromium, type Page } from 'playwright-core';
import { applyPolicy, createApiKey } from '../helpers/cli';
import { type Cluster, startAgent, startCluster } from '../helpers/cluster';
import { OtlpReceiver } from '../helpers/otlp-receiver';
import { submitAsync, taskEnd } from '../helpers/tasks';
import { waitFor } from '../helpers/wait';
import { TestSocket } from '../helpers/ws-client';

const ADMIN = 'admin-key-for-dashboard-tests-0001';
const SECRET = 'd'.repeat(40);
const JAEGER = 'http://jaeger.example.test:16686';
/** Debian's browser; never one downloaded by Playwright. */
const CHROMIUM = process.env.OPENCLAW_TEST_CHROMIUM ?? '/usr/bin/chromium';
/** Screenshots of every step, kept as test artifacts. */
const ARTIFACTS = join(__dirname, '..', '..', 'test-artifacts', 'dashboard');

/**
 * Mission Control in headless Chromium against two real replicas, a worker and real API keys:
 * signing in, an agent appearing and vanishing, a task moving through its states with its timeline
 * and trace, and an approval decided from the inbox, all pushed over the page's one WebSocket.
 */
describe('Mission Control dashboard', () => {
  let cluster: Cluster;
  let browser: Browser;
  let page: Page;
  const receiver = new OtlpReceiver();
  let keys: { operator: string; caller: string; agent: string };
  const sockets: string[] = [];
  const apiRequests: string[] = [];
  let shot = 0;

  const http = (i = 0) => cluster.gateways[i]!.httpUrl;
  const screenshot = (name: string) =>
    page.screenshot({ path: join(ARTIFACTS, `${String(++shot).padStart(2, '0')}-${name}.png`), fullPage: true });

  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    const otlp = await receiver.start();
    const otel = {
      OTEL_EXPORTER_OTLP_ENDPOINT: otlp,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_BSP_SCHEDULE_DELAY: '100',
    };
    cluster = await startCluster({
      replicas: 2,
      workers: 1,
      auth: 'apikey',
      apiKeys: [ADMIN],
      env: { ...otel, OPENCLAW_API_KEY_SECRET: SECRET, OPENCLAW_JAEGER_URL: JAEGER },
      workerEnv: otel,
    });
    keys = {
      operator: await createApiKey(http(), ADMIN, { name: 'ops-console', role: 'operator' }),
      caller: await createApiKey(http(), ADMIN, { name: 'shop', role: 'caller' }),
      agent: await createApiKey(http(), ADMIN, { name: 'agents', role: 'agent' }),
    };
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      // CI runs as root, where Chromium's sandbox cannot start.
      args: ['--no-sandbox', '--disable-dev-shm-usage'],
    });
    page = await browser.newPage({ viewport: { width: 1366, height: 768 } });
    page.on('websocket', (ws) => sockets.push(ws.url()));
    page.on('request', (request) => {
      const path = new URL(request.url()).pathname;
      if (path.startsWith('/v1/')) apiRequests.push(path);
    });
  });
  afterAll(async () => {
    await browser?.close();
    await cluster?.stop();
    await receiver.stop();
  });

  it('is served by the gateway with a strict content policy, at / and /dashboard/', async () => {
    const root = await fetch(`${http()}/`, { redirect: 'manual' });
    expect(root.status).toBe(302);
    expect(root.headers.get('location')).toBe('/dashboard/');
    const index = await fetch(`${http(1)}/dashboard/`);
    expect(index.status).toBe(200);
    expect(index.headers.get('content-type')).toMatch(/^text\/html/);
    expect(index.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(index.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
    expect(await index.text()).toContain('Mission Control');
    const config = await (await fetch(`${http()}/dashboard/config.json`)).json();
    expect(config).toMatchObject({ jaegerUrl: JAEGER });
    // Only the dashboard's own files: no way out of its folder.
    const outside = await fetch(`${http()}/dashboard/..%2fpackage.json`);
    expect(outside.status).toBe(404);
    expect(await outside.text()).toContain('no dashboard file');
    // A dot-segment is resolved before routing: it leaves the dashboard for the authenticated API.
    expect((await fetch(`${http()}/dashboard/%2e%2e/package.json`)).status).toBe(401);
  });

  it('signs in with an operator key after refusing a wrong key and a key without cluster:read', async () => {
    await page.goto(`${http()}/dashboard/`);
    const credential = page.getByLabel('API key or access token');
    await credential.fill('not-a-key-at-all-000000000000');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByText('That API key or token was not accepted.').waitFor();
    await credential.fill(keys.caller);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByText(/not allowed to watch the cluster/).waitFor();
    await screenshot('refused');

    await credential.fill(keys.operator);
    await page.keyboard.press('Enter');
    await page.getByText(/^Live · replica A$/).waitFor();
    // Both replicas, from the reports every replica writes to Redis.
    await page.locator('table:has(caption:text("Replicas")) tbody tr').nth(1).waitFor();
    expect(await page.locator('table:has(caption:text("Replicas")) tbody tr').count()).toBe(2);
    await page.getByRole('heading', { name: 'Validator verdicts (replicas and workers)' }).waitFor();
    await screenshot('overview');
    // The views are a tab list: arrow keys move between them, and focus follows.
    await page.getByRole('tab', { name: 'Overview' }).focus();
    await page.keyboard.press('ArrowRight');
    expect(await page.getByRole('tab', { name: 'Agents' }).getAttribute('aria-selected')).toBe('true');
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('tab-agents');
    await page.keyboard.press('End');
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('tab-audit');
    expect(await page.getByRole('tabpanel').getAttribute('id')).toBe('panel-audit');
    await page.keyboard.press('Home');
  });

  it('shows an agent when it connects (to the other replica) and drops it when it leaves', async () => {
    await page.getByRole('tab', { name: 'Agents' }).click();
    const row = page.locator('tr[data-agent="inventory"]');
    expect(await row.count()).toBe(0);
    const agent = await startAgent(cluster.gateways[1]!.url, {
      name: 'inventory',
      concurrency: 4,
      headers: { 'x-api-key': keys.agent },
    });
    await row.waitFor({ timeout: 10_000 });
    expect(await row.locator('td').nth(1).textContent()).toBe('1');
    expect(await row.getByRole('meter', { name: 'load of inventory' }).getAttribute('max')).toBe('4');
    await screenshot('agent-connected');
    await agent.close();
    await row.waitFor({ state: 'detached', timeout: 10_000 });
    await screenshot('agent-gone');
  });

  it('follows a task through its states, with its timeline and a link to its trace in Jaeger', async () => {
    const agent = await startAgent(cluster.gateways[1]!.url, {
      name: 'reporter',
      answer: 'manual',
      headers: { 'x-api-key': keys.agent },
    });
    const caller = await TestSocket.open(cluster.gateways[0]!.url, { headers: { 'x-api-key': keys.caller } });
    await page.getByRole('tab', { name: 'Tasks' }).click();
    const traceId = randomBytes(16).toString('hex');
    const taskId = await submitAsync(caller, {
      agent: 'reporter',
      task: 'quarterly-report',
      data: { quarter: 'Q3' },
      traceparent: `00-${traceId}-${randomBytes(8).toString('hex')}-01`,
    });
    const row = page.locator(`tr[data-task="${taskId}"]`);
    const task = await agent.socket.nextEvent('task', 20_000);
    await row.locator('.badge', { hasText: 'working' }).waitFor({ timeout: 10_000 });
    expect(await row.getByRole('rowheader').textContent()).toBe('quarterly-report');
    await screenshot('task-working');

    agent.socket.send({ action: 'task.result', taskId: task.taskId, output: { pages: 12 } });
    await row.locator('.badge', { hasText: 'completed' }).waitFor({ timeout: 10_000 });
    expect(await taskEnd(caller, taskId)).toMatchObject({ status: 'completed' });

    // The drill-down: opened from the keyboard, focus moves to it.
    await row.getByRole('button', { name: /^Details of task quarterly-report/ }).focus();
    await page.keyboard.press('Enter');
    const timeline = page.getByRole('list', { name: 'Timeline' });
    await timeline.locator('li', { hasText: 'completed' }).waitFor({ timeout: 10_000 });
    const steps = await timeline.locator('li .badge').allTextContents();
    expect(steps).toEqual(['submitted', 'working', 'completed']);
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('task-details-title');
    const link = page.getByRole('link', { name: new RegExp(traceId) });
    expect(await link.getAttribute('href')).toBe(`${JAEGER}/trace/${traceId}`);
    await page.getByText('"pages": 12').waitFor();
    await screenshot('task-details');
    // The trace the link names is real: the cluster exported its spans.
    await waitFor(() => receiver.inTrace(traceId).length > 0, { what: 'spans of the task trace' });

    // Filters: by status and by agent.
    await page.getByLabel('Status', { exact: true }).selectOption('failed');
    await row.waitFor({ state: 'detached' });
    await page.getByLabel('Status', { exact: true }).selectOption('completed');
    await page.getByLabel('Agent', { exact: true }).selectOption('reporter');
    await row.waitFor();
    await caller.close();
    await agent.close();
  });

  it('cancels a running task from its details, then runs it again with Retry', async () => {
    const agent = await startAgent(cluster.gateways[0]!.url, {
      name: 'archiver',
      answer: 'manual',
      headers: { 'x-api-key': keys.agent },
    });
    const caller = await TestSocket.open(cluster.gateways[1]!.url, { headers: { 'x-api-key': keys.caller } });
    await page.getByRole('tab', { name: 'Tasks' }).click();
    await page.getByLabel('Status', { exact: true }).selectOption('');
    await page.getByLabel('Agent', { exact: true }).selectOption('');
    const taskId = await submitAsync(caller, { agent: 'archiver', task: 'archive', data: { year: 2025 } });
    await agent.socket.nextEvent('task', 20_000);
    const row = page.locator(`tr[data-task="${taskId}"]`);
    await row.locator('.badge', { hasText: 'working' }).waitFor({ timeout: 10_000 });
    await row.getByRole('button', { name: /^Details of task archive/ }).click();
    await page.getByRole('button', { name: 'Cancel task' }).click();
    await row.locator('.badge', { hasText: 'canceled' }).waitFor({ timeout: 10_000 });
    // The agent was told; the operator's cancel is the task's end for its submitter too.
    expect(await agent.socket.nextEvent('task.cancel', 10_000)).toMatchObject({ taskId });
    await page.getByRole('button', { name: 'Retry task' }).click();
    const again = await agent.socket.nextEvent('task', 20_000);
    expect(again).toMatchObject({ taskId, attempt: 1, data: { year: 2025 } });
    agent.socket.send({ action: 'task.result', taskId, output: { archived: true } });
    await row.locator('.badge', { hasText: 'completed' }).waitFor({ timeout: 10_000 });
    await screenshot('task-retried');
    await Promise.all([caller.close(), agent.close()]);
  });

  it('lists a parked task in the approvals inbox; approving it there lets the task run', async () => {
    await applyPolicy(
      cluster,
      ADMIN,
      `
governance:
  rules:
    - name: large-refunds
      when: { agent: refunds, task: refund, data: { amount: { gt: 500 } } }
      verdict: require-approval
      reason: refunds over 500 need an operator
`,
    );
    const agent = await startAgent(cluster.gateways[1]!.url, { name: 'refunds', headers: { 'x-api-key': keys.agent } });
    const caller = await TestSocket.open(cluster.gateways[1]!.url, { headers: { 'x-api-key': keys.caller } });
    await page.getByRole('tab', { name: 'Approvals' }).click();
    const taskId = await submitAsync(caller, { agent: 'refunds', task: 'refund', data: { amount: 900 } });
    const card = page.getByRole('article', { name: 'refund → refunds' });
    await card.waitFor({ timeout: 15_000 });
    expect(await page.getByRole('tab', { name: 'Approvals (1)' }).count()).toBe(1);
    await card.getByText('refunds over 500 need an operator', { exact: false }).waitFor();
    await card.getByLabel('Reason (optional)').fill('customer verified by phone');
    await screenshot('approval-pending');

    await card.getByRole('button', { name: 'Approve' }).focus();
    await page.keyboard.press('Enter');
    await page.getByRole('cell', { name: /customer verified by phone/ }).waitFor({ timeout: 10_000 });
    expect(await taskEnd(caller, taskId)).toMatchObject({ status: 'completed', output: { echo: { amount: 900 } } });
    expect(agent.received).toHaveLength(1);
    await screenshot('approval-decided');
    await caller.close();
    await agent.close();

    // The verdict is counted in the overview: async attempts are judged on the worker, which reports
    // its counters with its heartbeat.
    await page.getByRole('tab', { name: 'Overview' }).click();
    const verdicts = page.locator('table:has(caption:text("Validator verdicts")) tr', {
      has: page.getByRole('rowheader', { name: 'rule:large-refunds' }),
    });
    await verdicts.waitFor({ timeout: 15_000 });
    const cells = await verdicts.locator('td').allTextContents();
    // Checks, allow, deny, redact, approval: every check of this rule asked for an approval.
    expect(Number(cells[0])).toBeGreaterThanOrEqual(1);
    expect(cells.slice(1, 4)).toEqual(['0', '0', '0']);
    expect(cells[4]).toBe(cells[0]);
    await screenshot('validators');
  });

  it('shows the audit tail live, and did all of it over one WebSocket without polling', async () => {
    await page.getByRole('tab', { name: 'Audit' }).click();
    await page.getByRole('rowheader', { name: 'approval.approved' }).first().waitFor({ timeout: 10_000 });
    await screenshot('audit');
    // One socket for the whole session. Over HTTP: a check at load for a cluster without
    // authentication, one per sign-in attempt (three), and the opened task's timeline, on demand.
    expect(sockets).toHaveLength(1);
    expect(apiRequests.filter((p) => p === '/v1/cluster')).toHaveLength(4);
    expect(apiRequests.filter((p) => p !== '/v1/cluster').every((p) => p.endsWith('/events'))).toBe(true);
  });

  it("shows the tenant's namespaces, a namespace's keys and a key's value, and the cache's hit rates", async () => {
    const caller = await TestSocket.open(cluster.gateways[1]!.url, { headers: { 'x-api-key': keys.caller } });
    await caller.request({ action: 'state.set', id: 's1', namespace: 'orders', key: 'order-17', value: { total: 42 } });
    await caller.request({ action: 'state.set', id: 's2', namespace: 'orders', key: 'order-18', value: { total: 7 } });
    const agent = await startAgent(cluster.gateways[0]!.url, {
      name: 'pricer',
      cache: { tasks: ['quote'], ttlMs: 60_000 },
      headers: { 'x-api-key': keys.agent },
    });
    for (let i = 0; i < 3; i++) {
      const reply = await caller.request({
        action: 'coordinator',
        id: `q${i}`,
        agent: 'pricer',
        task: 'quote',
        data: { sku: 'x' },
      });
      expect(reply).toMatchObject({ ok: true });
    }
    await page.getByRole('tab', { name: 'State' }).click();
    const orders = page.locator('tr[data-namespace="orders"]');
    await orders.waitFor({ timeout: 10_000 });
    expect(await orders.locator('td').first().textContent()).toBe('2');
    await orders.getByRole('button', { name: 'orders' }).click();
    const key = page.locator('tr[data-state-key="order-17"]');
    await key.waitFor({ timeout: 10_000 });
    await key.getByRole('button', { name: 'order-17' }).click();
    await page.locator('pre[data-value="order-17"]', { hasText: '"total": 42' }).waitFor({ timeout: 10_000 });
    // One call reached the agent, two were answered from the cache: 2 of 3 saved. The counters reach
    // Redis every couple of seconds, and the view reads them again every few.
    await page.locator('td[data-hit-rate="pricer"]', { hasText: '66.7%' }).waitFor({ timeout: 20_000 });
    expect(agent.received).toHaveLength(1);
    await screenshot('state-and-cache');
    await Promise.all([caller.close(), agent.close()]);
  });

  it('tasks.watch: operators get every task of the tenant, without outputs; callers may not', async () => {
    const operator = await TestSocket.open(cluster.gateways[1]!.url, { headers: { 'x-api-key': keys.operator } });
    const caller = await TestSocket.open(cluster.gateways[0]!.url, { headers: { 'x-api-key': keys.caller } });
    expect(await caller.request({ action: 'tasks.watch', id: 1 })).toMatchObject({
      ok: false,
      error: { code: 'FORBIDDEN' },
    });
    expect(await operator.request({ action: 'tasks.watch', id: 1 })).toMatchObject({
      ok: true,
      result: { watching: true },
    });
    const agent = await startAgent(cluster.gateways[0]!.url, { name: 'echoer', headers: { 'x-api-key': keys.agent } });
    const taskId = await submitAsync(caller, { agent: 'echoer', task: 'echo', data: { secret: 'x' } });
    const seen: string[] = [];
    for (;;) {
      const frame = await operator.nextFrame((f) => f.event === 'task.status' && f.taskId === taskId, 15_000, 'status');
      seen.push(frame.status as string);
      if (seen.length === 1) {
        expect(frame).toMatchObject({ status: 'submitted', agent: 'echoer', task: 'echo', kind: 'task' });
      }
      if (frame.status === 'completed') {
        expect(frame.output).toBeUndefined();
        break;
      }
    }
    expect(seen).toEqual(['submitted', 'working', 'completed']);
    expect(await operator.request({ action: 'tasks.unwatch', id: 2 })).toMatchObject({ result: { watching: false } });
    await Promise.all([operator.close(), caller.close(), agent.close()]);
  });
});
