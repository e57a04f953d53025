import { h, table } from './dom.js';
import { ago, clock, duration, json } from './format.js';
import type { ApprovalView, State } from './model.js';
import { type Actions, badge } from './view-parts.js';

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
