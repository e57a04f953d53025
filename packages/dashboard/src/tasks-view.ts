import { h, table } from './dom.js';
import { ago, clock, dateTime, json, shortId } from './format.js';
import type { State, TaskState } from './model.js';
import { TASK_STATES } from './model.js';
import { type Actions, badge, num, numCell } from './view-parts.js';

const MAX_TASK_ROWS = 200;

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
