import { lineChart } from './charts.js';
import { h, table } from './dom.js';
import { ago, bytes, clock, dateTime, duration, json, number, shortId } from './format.js';
import type { ApprovalView, State, TaskState } from './model.js';
import { TASK_STATES } from './model.js';

/** What the views ask the page to do. */
export interface Actions {
  select(taskId: string | undefined): void;
  filter(change: Partial<State['filters']>): void;
  decide(approvalId: string, decision: 'approve' | 'reject'): void;
  reason(approvalId: string, text: string): void;
  cancel(taskId: string): void;
  retry(taskId: string): void;
}

const MAX_TASK_ROWS = 200;

function badge(status: string): HTMLElement {
  return h('span', { class: `badge s-${status}` }, status);
}

function yesNo(ok: boolean, yes: string, no: string): HTMLElement {
  return h('span', { class: ok ? 'ok' : 'bad' }, ok ? yes : no);
}

function card(label: string, value: string | number, note?: string): HTMLElement {
  return h(
    'li',
    { class: 'card' },
    h('div', { class: 'label' }, label),
    h('div', { class: 'value' }, String(value)),
    note ? h('div', { class: 'label' }, note) : null,
  );
}

function numCell(value: string | number | undefined): HTMLTableCellElement {
  return h('td', { class: 'num' }, value === undefined ? '–' : String(value));
}

const num = (text: string) => ({ text, num: true as const });

// ---------------------------------------------------------------------------------------- overview

export function overview(state: State): HTMLElement[] {
  const s = state.snapshot;
  if (!s) return [h('p', { class: 'empty' }, 'Waiting for the first snapshot of the cluster…')];
  if (s.scope === 'tenant') return tenantOverview(state);
  const queue = s.queue;
  const last = state.history[state.history.length - 1];
  return [
    h('h2', { class: 'visually-hidden' }, 'Overview'),
    h(
      'ul',
      { class: 'cards', 'aria-label': 'Cluster at a glance' },
      ...replicaAndAgentCards(s),
      card('Workers', s.workers.length),
      card(
        'Requests/s',
        last ? number(last.requestsPerSec, 1) : '–',
        last ? `${number(last.errorsPerSec, 1)} errors/s` : '',
      ),
      card(
        'Queue waiting',
        queue ? (queue.waiting ?? 0) + (queue.prioritized ?? 0) : '–',
        queue ? `${queue.active ?? 0} active` : 'unreadable',
      ),
      card('Dead letters', queue ? (queue.failed ?? 0) : '–'),
      card('Approvals pending', s.approvalsPending),
      card(
        'Redis',
        s.redis.reachable ? 'up' : 'DOWN',
        s.redis.reachable ? `${s.redis.role ?? ''} ${s.redis.version ?? ''}` : '',
      ),
    ),
    h(
      'div',
      { class: 'grid' },
      lineChart(
        'Throughput',
        'requests/s',
        { label: 'requests', values: state.history.map((p) => p.requestsPerSec) },
        { label: 'errors', values: state.history.map((p) => p.errorsPerSec) },
      ),
      lineChart(
        'Call latency',
        'ms',
        { label: 'p50', values: state.history.map((p) => p.p50Ms) },
        { label: 'p99', values: state.history.map((p) => p.p99Ms) },
      ),
    ),
    h(
      'div',
      { class: 'grid' },
      h('div', { class: 'box wide' }, replicasTable(state)),
      h('div', { class: 'box wide' }, validatorsTable(state)),
      h('div', { class: 'box' }, queueTable(state), workersTable(state)),
      h('div', { class: 'box' }, redisList(state)),
    ),
  ];
}

/** The overview of a tenant other than the operators': its agents and approvals, the replicas' health. */
function tenantOverview(state: State): HTMLElement[] {
  const s = state.snapshot!;
  return [
    h('h2', { class: 'visually-hidden' }, 'Overview'),
    h(
      'ul',
      { class: 'cards', 'aria-label': 'Cluster at a glance' },
      ...replicaAndAgentCards(s),
      card('Approvals pending', s.approvalsPending),
      card('Redis', s.redis.reachable ? 'up' : 'DOWN'),
    ),
    h(
      'p',
      { class: 'empty' },
      "Traffic, workers, the queue and validator figures span every tenant: only the operators' tenant sees them.",
    ),
    h('div', { class: 'grid' }, h('div', { class: 'box wide' }, replicasTable(state))),
  ];
}

/** The first two cards of either overview. */
function replicaAndAgentCards(s: NonNullable<State['snapshot']>): HTMLElement[] {
  const ready = s.replicas.filter((r) => r.ready).length;
  const instances = s.agents.reduce((sum, a) => sum + a.instances, 0);
  return [
    card('Replicas ready', `${ready} / ${s.replicas.length}`),
    card('Agents', s.agents.length, `${instances} instances`),
  ];
}

/** The replicas; a tenant other than the operators' sees only whether each serves. */
function replicasTable(state: State): HTMLElement {
  const s = state.snapshot!;
  const full = s.scope !== 'tenant';
  const rows = s.replicas.map((r) =>
    h(
      'tr',
      {},
      h('th', { scope: 'row', class: 'mono' }, r.replicaId, r.replicaId === state.replicaId ? ' (this page)' : ''),
      ...(full ? [h('td', {}, `${r.host}:${r.port}`)] : []),
      h('td', {}, duration(s.at - r.startedAt)),
      h('td', {}, r.draining ? h('span', { class: 'warn' }, 'draining') : yesNo(r.ready, 'ready', 'not ready')),
      ...(full ? [numCell(r.connections.agent), numCell(r.connections.client), numCell(r.inFlight)] : []),
      h('td', {}, r.version),
    ),
  );
  return table(
    'Replicas',
    full
      ? ['Replica', 'Address', 'Age', 'State', num('Agent conns'), num('Client conns'), num('In flight'), 'Version']
      : ['Replica', 'Age', 'State', 'Version'],
    rows,
    'No replica has reported in the last 6 s.',
  );
}

function queueTable(state: State): HTMLElement {
  const queue = state.snapshot!.queue;
  if (!queue) return h('p', { class: 'bad' }, 'Queue depths cannot be read (Redis unreachable).');
  const order = ['waiting', 'prioritized', 'active', 'delayed', 'waiting-children', 'paused', 'completed', 'failed'];
  const names = [...order.filter((n) => n in queue), ...Object.keys(queue).filter((n) => !order.includes(n))];
  return table(
    'Task queue',
    ['State', num('Jobs')],
    names.map((name) => h('tr', {}, h('th', { scope: 'row' }, name), numCell(queue[name]))),
    'The queue is empty.',
  );
}

function workersTable(state: State): HTMLElement {
  const s = state.snapshot!;
  const rows = s.workers.map((w) =>
    h(
      'tr',
      {},
      h('th', { scope: 'row', class: 'mono' }, String(w.workerId)),
      h('td', {}, String(w.host ?? '')),
      numCell(String(w.active ?? 0)),
      numCell(String(w.concurrency ?? '')),
      h('td', {}, w.draining === '1' || w.draining === true || w.draining === 'true' ? 'draining' : 'running'),
    ),
  );
  return table(
    'Workers',
    ['Worker', 'Host', num('Active'), num('Concurrency'), 'State'],
    rows,
    'No worker is running.',
  );
}

function validatorsTable(state: State): HTMLElement {
  const validators = state.snapshot!.validators ?? [];
  const rows = validators.map((v) =>
    h(
      'tr',
      {},
      h('th', { scope: 'row', class: 'mono' }, v.validator),
      numCell(v.checks),
      numCell(v.allows),
      h('td', { class: `num${v.denies > 0 ? ' bad' : ''}` }, String(v.denies)),
      numCell(v.redactions),
      numCell(v.approvals),
      numCell(v.wouldDeny),
      h('td', { class: `num${v.failures > 0 ? ' bad' : ''}` }, String(v.failures)),
      numCell(v.overBudget),
      numCell(number(v.meanMs, 2)),
      numCell(number(v.maxMs, 2)),
    ),
  );
  return table(
    'Validator verdicts (replicas and workers)',
    [
      'Validator',
      num('Checks'),
      num('Allow'),
      num('Deny'),
      num('Redact'),
      num('Approval'),
      num('Would deny'),
      num('Failed'),
      num('Over budget'),
      num('Mean ms'),
      num('Max ms'),
    ],
    rows,
    'No validator has judged a message yet (or no governance policy is applied).',
  );
}

function redisList(state: State): HTMLElement {
  const r = state.snapshot!.redis;
  if (!r.reachable)
    return h('div', {}, h('h3', {}, 'Redis'), h('p', { class: 'bad' }, 'Unreachable from this replica.'));
  const field = (name: string, value: string) => [h('dt', {}, name), h('dd', {}, value)];
  return h(
    'div',
    {},
    h('h3', {}, 'Redis'),
    h(
      'dl',
      { class: 'fields' },
      field('Version', r.version ?? '–'),
      field('Role', r.role ?? '–'),
      field('Up', r.uptimeSeconds === undefined ? '–' : duration(r.uptimeSeconds * 1000)),
      field('Memory', bytes(r.usedMemoryBytes)),
      field('Eviction', r.maxmemoryPolicy ?? '–'),
      field('AOF', r.aofEnabled ? 'on' : 'off'),
      field('Clients', number(r.connectedClients)),
    ),
  );
}

// ------------------------------------------------------------------------------------------ agents

export function agents(state: State): HTMLElement[] {
  const s = state.snapshot;
  if (!s) return [h('p', { class: 'empty' }, 'Waiting for the first snapshot of the cluster…')];
  const rows = s.agents.map((a) => {
    const load =
      a.kind === 'ws' && a.capacity
        ? h(
            'td',
            {},
            h('meter', {
              min: 0,
              max: a.capacity,
              value: a.inFlight ?? 0,
              'aria-label': `load of ${a.name}`,
            }),
            ` ${a.inFlight ?? 0} / ${a.capacity}`,
          )
        : h('td', {}, a.kind === 'http' ? 'HTTP' : '–');
    return h(
      'tr',
      { 'data-agent': a.name },
      h('th', { scope: 'row', class: 'mono' }, a.name),
      h('td', {}, a.kind === 'ws' ? 'WebSocket' : 'HTTP'),
      numCell(a.kind === 'ws' ? a.instances : '–'),
      load,
      h('td', {}, a.tasks.join(', ')),
      h('td', { class: 'mono' }, a.url ?? ''),
    );
  });
  return [
    h('h2', {}, 'Agents'),
    h(
      'div',
      { class: 'box' },
      table(
        `${s.agents.length} agents, ${s.agents.reduce((n, a) => n + a.instances, 0)} instances`,
        ['Agent', 'Kind', num('Instances'), 'Load (in flight / capacity)', 'Tasks', 'URL'],
        rows,
        'No agent is connected or registered.',
      ),
    ),
  ];
}

// ------------------------------------------------------------------------------------------- tasks

export function tasks(state: State, actions: Actions): HTMLElement[] {
  if (state.tasksVisible === false) {
    return [
      h('h2', {}, 'Tasks'),
      h('p', { class: 'warn' }, 'This principal may not see every task of the tenant (it lacks task:read:any).'),
    ];
  }
  const f = state.filters;
  const text = f.text.trim().toLowerCase();
  const all = [...state.tasks.values()];
  const shown = all
    .filter((t) => (f.status === '' || t.status === f.status) && (f.agent === '' || t.agent === f.agent))
    .filter((t) => f.steps || t.parentId === undefined)
    .filter(
      (t) =>
        text === '' ||
        t.taskId.includes(text) ||
        (t.task ?? '').toLowerCase().includes(text) ||
        (t.submittedBy ?? '').toLowerCase().includes(text),
    )
    .sort((a, b) => b.updatedAt - a.updatedAt);
  const agentNames = [...new Set(all.map((t) => t.agent).filter((a): a is string => !!a))].sort();
  const control = (id: string, label: string, element: HTMLElement) =>
    h('div', {}, h('label', { for: id }, label), element);
  const filters = h(
    'div',
    { class: 'filters', role: 'group', 'aria-label': 'Filter tasks' },
    control(
      'filter-status',
      'Status',
      h(
        'select',
        {
          id: 'filter-status',
          'data-key': 'filter-status',
          onchange: (e) => actions.filter({ status: value(e) as TaskState | '' }),
        },
        h('option', { value: '', selected: f.status === '' }, 'any'),
        TASK_STATES.map((s) =>
          h('option', { value: s, selected: f.status === s }, `${s} (${all.filter((t) => t.status === s).length})`),
        ),
      ),
    ),
    control(
      'filter-agent',
      'Agent',
      h(
        'select',
        { id: 'filter-agent', 'data-key': 'filter-agent', onchange: (e) => actions.filter({ agent: value(e) }) },
        h('option', { value: '', selected: f.agent === '' }, 'any'),
        agentNames.map((a) => h('option', { value: a, selected: f.agent === a }, a)),
      ),
    ),
    control(
      'filter-text',
      'Search (id, task, submitter)',
      h('input', {
        id: 'filter-text',
        type: 'search',
        value: f.text,
        'data-key': 'filter-text',
        oninput: (e) => actions.filter({ text: value(e) }),
      }),
    ),
    control(
      'filter-steps',
      'Workflow steps',
      h('input', {
        id: 'filter-steps',
        type: 'checkbox',
        checked: f.steps,
        'data-key': 'filter-steps',
        onchange: (e) => actions.filter({ steps: (e.target as HTMLInputElement).checked }),
      }),
    ),
  );
  const rows = shown.slice(0, MAX_TASK_ROWS).map((t) =>
    h(
      'tr',
      { 'data-task': t.taskId, 'aria-selected': state.selected === t.taskId ? 'true' : null },
      h('td', {}, badge(t.status)),
      h('th', { scope: 'row' }, t.task ?? '…', t.kind === 'workflow' ? ' (workflow)' : ''),
      h('td', { class: 'mono' }, t.agent || (t.kind === 'workflow' ? '–' : '…')),
      numCell(t.attempts === undefined ? undefined : `${t.attempts}/${t.maxAttempts ?? '?'}`),
      h('td', {}, h('time', { datetime: new Date(t.updatedAt).toISOString() }, ago(t.updatedAt))),
      h(
        'td',
        {},
        h(
          'button',
          {
            type: 'button',
            'data-key': `open-${t.taskId}`,
            'aria-label': `Details of task ${t.task ?? ''} ${shortId(t.taskId)}`,
            onclick: () => actions.select(t.taskId),
          },
          shortId(t.taskId),
        ),
      ),
    ),
  );
  const list = h(
    'div',
    { class: 'box' },
    table(
      shown.length > MAX_TASK_ROWS
        ? `Tasks: the newest ${MAX_TASK_ROWS} of ${shown.length}`
        : `Tasks: ${shown.length} shown of ${all.length}`,
      ['Status', 'Task', 'Agent', num('Attempts'), 'Updated', 'Id'],
      rows,
      all.length === 0 ? 'No async task or workflow yet.' : 'No task matches these filters.',
    ),
  );
  return [
    h('h2', {}, 'Tasks'),
    filters,
    h('div', { class: 'split' }, list, state.selected ? taskDetails(state, actions) : h('div', {})),
  ];
}

function value(event: Event): string {
  return (event.target as HTMLInputElement | HTMLSelectElement).value;
}

function taskDetails(state: State, actions: Actions): HTMLElement {
  const t = state.tasks.get(state.selected!);
  if (!t) return h('div', { class: 'box' }, h('p', {}, 'Loading…'));
  const field = (name: string, ...value: (Node | string)[]) => [h('dt', {}, name), h('dd', {}, ...value)];
  const trace = t.traceId
    ? state.jaegerUrl
      ? h(
          'a',
          { href: `${state.jaegerUrl}/trace/${t.traceId}`, target: '_blank', rel: 'noopener noreferrer' },
          h('span', { class: 'mono' }, t.traceId),
          h('span', { class: 'visually-hidden' }, ' (open the trace in Jaeger, new tab)'),
        )
      : h('span', { class: 'mono' }, t.traceId)
    : 'not traced';
  const ended = ['completed', 'failed', 'canceled', 'rejected'].includes(t.status);
  const events = state.selectedEvents;
  return h(
    'section',
    { class: 'box', 'aria-labelledby': 'task-details-title' },
    h(
      'h3',
      { id: 'task-details-title', tabindex: '-1', 'data-key': 'task-details-title' },
      `Task ${t.task ?? ''} `,
      h('span', { class: 'mono' }, shortId(t.taskId)),
      ' ',
      badge(t.status),
    ),
    h(
      'dl',
      { class: 'fields' },
      field('Id', h('span', { class: 'mono' }, t.taskId)),
      field('Kind', t.kind ?? 'task'),
      field('Agent', t.agent || '–'),
      field('Submitted by', t.submittedBy ?? '–'),
      t.createdAt ? field('Created', dateTime(t.createdAt)) : [],
      field('Updated', dateTime(t.updatedAt)),
      t.attempts === undefined ? [] : field('Attempts', `${t.attempts} of ${t.maxAttempts ?? '?'}`),
      t.parentId
        ? field('Workflow', h('span', { class: 'mono' }, t.parentId), t.stepId ? ` step ${t.stepId}` : '')
        : [],
      t.approvalId ? field('Waits for approval', h('span', { class: 'mono' }, t.approvalId)) : [],
      field('Trace', trace),
      t.error ? field('Error', h('span', { class: 'bad' }, `${t.error.code}: ${t.error.message}`)) : [],
      t.lastError ? field('Last error', `${t.lastError.code}: ${t.lastError.message}`) : [],
    ),
    h(
      'div',
      { class: 'actions' },
      ended
        ? null
        : h('button', { type: 'button', class: 'danger', onclick: () => actions.cancel(t.taskId) }, 'Cancel task'),
      t.status === 'failed' || t.status === 'canceled'
        ? h('button', { type: 'button', onclick: () => actions.retry(t.taskId) }, 'Retry task')
        : null,
      h('button', { type: 'button', 'data-key': 'close-details', onclick: () => actions.select(undefined) }, 'Close'),
    ),
    h('h3', {}, 'Timeline'),
    state.selectedError
      ? h('p', { class: 'bad', role: 'alert' }, state.selectedError)
      : !events
        ? h('p', {}, 'Loading…')
        : events.length === 0
          ? h('p', { class: 'empty' }, 'No events kept for this task.')
          : h(
              'ol',
              { class: 'timeline', 'aria-label': 'Timeline' },
              events.map((e) =>
                h(
                  'li',
                  {},
                  h('time', {}, clock(cursorTime(e.cursor))),
                  e.event === 'task.progress'
                    ? ['progress ', h('code', {}, json(e.progress, 200))]
                    : [
                        badge(e.status ?? '?'),
                        e.attempt ? ` attempt ${e.attempt}` : '',
                        e.error ? ` ${e.error.code}: ${e.error.message}` : '',
                        e.lastError ? ` (retrying after ${e.lastError.code}: ${e.lastError.message})` : '',
                      ],
                ),
              ),
            ),
    t.output === undefined ? null : [h('h3', {}, 'Output'), h('pre', {}, json(t.output))],
    t.question === undefined ? null : [h('h3', {}, 'Question'), h('pre', {}, json(t.question))],
  );
}

/** A stream cursor is `<ms>-<seq>`. */
function cursorTime(cursor: string): number {
  return Number(cursor.split('-')[0]);
}

// --------------------------------------------------------------------------------------- approvals

export function approvals(state: State, actions: Actions): HTMLElement[] {
  if (state.approvalsVisible === false) {
    return [
      h('h2', {}, 'Approvals'),
      h('p', { class: 'warn' }, 'This principal may not see approvals (approval:read).'),
    ];
  }
  const all = [...state.approvals.values()];
  const pending = all.filter((a) => a.status === 'pending').sort((a, b) => a.expiresAt - b.expiresAt);
  const decided = all
    .filter((a) => a.status !== 'pending')
    .sort((a, b) => b.updatedAt - a.updatedAt)
    .slice(0, 20);
  return [
    h('h2', {}, `Approvals inbox: ${pending.length} pending`),
    pending.length === 0
      ? h('p', { class: 'empty' }, 'Nothing waits for a decision.')
      : h(
          'div',
          { class: 'approvals' },
          pending.map((a) => approvalCard(state, actions, a)),
        ),
    h(
      'div',
      { class: 'box' },
      table(
        'Recently decided',
        ['Status', 'Agent', 'Task', 'Requested by', 'Decisions', 'Updated'],
        decided.map((a) =>
          h(
            'tr',
            {},
            h('td', {}, badge(a.status)),
            h('td', { class: 'mono' }, a.agent),
            h('th', { scope: 'row' }, a.task),
            h('td', {}, a.requestedBy),
            h(
              'td',
              {},
              a.decisions.map((d) => `${d.principal}: ${d.decision}${d.reason ? ` (${d.reason})` : ''}`).join('; '),
            ),
            h('td', {}, ago(a.updatedAt)),
          ),
        ),
        'No approval decided yet.',
      ),
    ),
  ];
}

function approvalCard(state: State, actions: Actions, a: ApprovalView): HTMLElement {
  const id = a.approvalId;
  const titleId = `approval-${id}`;
  const busy = state.busy.has(id);
  const note = state.approvalNotes.get(id);
  const field = (name: string, value: string) => [h('dt', {}, name), h('dd', {}, value)];
  return h(
    'article',
    { class: 'box approval', 'aria-labelledby': titleId, 'data-approval': id },
    h('h3', { id: titleId }, `${a.task} → ${a.agent}`),
    h(
      'dl',
      { class: 'fields' },
      field('Message', a.direction === 'request' ? 'request to the agent' : "the agent's output"),
      field('Requested by', a.requestedBy),
      field('Why', `${a.validator}${a.reason ? `: ${a.reason}` : ''}`),
      field(
        'Needs',
        `${a.required.approvers} approver${a.required.approvers > 1 ? 's' : ''}${a.required.role ? ` with role ${a.required.role}` : ''}; ${a.approvals} so far`,
      ),
      field('Expires', `${clock(a.expiresAt)} (in ${duration(a.expiresAt - Date.now())})`),
      field('Mode', a.mode === 'sync' ? 'a caller is waiting' : 'the task is parked'),
    ),
    a.data === undefined ? null : h('details', {}, h('summary', {}, 'Payload'), h('pre', {}, json(a.data))),
    h('label', { for: `reason-${id}` }, 'Reason (optional)'),
    h('textarea', {
      id: `reason-${id}`,
      'data-key': `reason-${id}`,
      maxlength: 1024,
      oninput: (e) => actions.reason(id, (e.target as HTMLTextAreaElement).value),
    }),
    h(
      'div',
      { class: 'actions' },
      h(
        'button',
        {
          type: 'button',
          class: 'primary',
          'data-key': `approve-${id}`,
          'aria-describedby': titleId,
          disabled: busy,
          onclick: () => actions.decide(id, 'approve'),
        },
        'Approve',
      ),
      h(
        'button',
        {
          type: 'button',
          class: 'danger',
          'data-key': `reject-${id}`,
          'aria-describedby': titleId,
          disabled: busy,
          onclick: () => actions.decide(id, 'reject'),
        },
        'Reject',
      ),
    ),
    note ? h('p', { class: note.bad ? 'bad' : 'ok', role: note.bad ? 'alert' : 'status' }, note.text) : null,
  );
}

// ------------------------------------------------------------------------------------------- audit

export function audit(state: State): HTMLElement[] {
  if (state.snapshot && state.snapshot.audit === undefined) {
    return [
      h('h2', {}, 'Audit'),
      h('p', { class: 'warn' }, 'This principal may not read the audit trail (audit:read).'),
    ];
  }
  const entries = [...state.audit.values()].sort((a, b) => (a.id < b.id ? 1 : -1));
  const rows = entries.map((e) =>
    h(
      'tr',
      {},
      h('td', {}, h('time', { datetime: new Date(e.ts).toISOString() }, clock(e.ts))),
      h('th', { scope: 'row', class: 'mono' }, e.type),
      h('td', {}, e.principal ?? '–'),
      h('td', { class: outcomeClass(e.outcome) }, e.outcome),
      h('td', { class: 'mono' }, e.replica ?? ''),
      h(
        'td',
        { class: 'mono' },
        Object.entries(e.details ?? {})
          .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
          .join(' '),
      ),
    ),
  );
  return [
    h('h2', {}, 'Audit tail'),
    h(
      'div',
      { class: 'box' },
      table(
        `The newest ${entries.length} entries of this tenant`,
        ['Time', 'Type', 'Principal', 'Outcome', 'Replica', 'Details'],
        rows,
        'No audit entry yet.',
      ),
    ),
  ];
}

/** Error codes (`FORBIDDEN`), denials and rejections stand out; steps of a normal flow do not. */
function outcomeClass(outcome: string): string {
  if (outcome === 'ok' || outcome === 'approved' || outcome === 'approve' || outcome === 'consumed') return 'ok';
  if (/^[A-Z_]+$/.test(outcome) || ['deny', 'reject', 'rejected', 'expired'].includes(outcome)) return 'bad';
  return '';
}
