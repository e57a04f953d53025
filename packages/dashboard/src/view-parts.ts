import { h } from './dom.js';
import type { State } from './model.js';

/** What the views ask the page to do. */
export interface Actions {
  select(taskId: string | undefined): void;
  filter(change: Partial<State['filters']>): void;
  decide(approvalId: string, decision: 'approve' | 'reject'): void;
  reason(approvalId: string, text: string): void;
  cancel(taskId: string): void;
  retry(taskId: string): void;
  /** Shows a namespace's keys (undefined: none). */
  openNamespace(namespace: string | undefined): void;
  /** Shows a key's value (undefined: none). */
  openKey(key: string | undefined): void;
}

export function badge(status: string): HTMLElement {
  return h('span', { class: `badge s-${status}` }, status);
}

export function yesNo(ok: boolean, yes: string, no: string): HTMLElement {
  return h('span', { class: ok ? 'ok' : 'bad' }, ok ? yes : no);
}

export function card(label: string, value: string | number, note?: string): HTMLElement {
  return h(
    'li',
    { class: 'card' },
    h('div', { class: 'label' }, label),
    h('div', { class: 'value' }, String(value)),
    note ? h('div', { class: 'label' }, note) : null,
  );
}

export function numCell(value: string | number | undefined): HTMLTableCellElement {
  return h('td', { class: 'num' }, value === undefined ? '–' : String(value));
}

export const num = (text: string) => ({ text, num: true as const });

// ---------------------------------------------------------------------------------------- overview
