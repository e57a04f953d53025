import { h, table } from './dom.js';
import { clock } from './format.js';
import type { State } from './model.js';

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
