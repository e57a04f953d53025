import { type Child, h, table } from './dom.js';
import { ago, duration, json } from './format.js';
import type { AgentCacheView, State } from './model.js';
import { type Actions, num, numCell } from './view-parts.js';

/**
 * Shared state and the result cache: the namespaces the principal may read (with their key counts),
 * the keys of the one selected and the value of a key; each agent's cache policy, entries, and how
 * many calls it answered without the agent.
 */
export function stateView(state: State, actions: Actions): Child[] {
  const s = state.shared;
  if (!s.loaded) return [h('h2', {}, 'State and cache'), h('p', { class: 'empty' }, 'Loading…')];
  return [
    h('h2', {}, 'State and cache'),
    s.error ? h('p', { class: 'bad', role: 'alert' }, s.error) : null,
    h('div', { class: 'box' }, namespaces(state, actions)),
    s.namespace === undefined ? null : h('div', { class: 'box' }, keys(state, actions)),
    h('div', { class: 'box' }, cache(state)),
  ];
}

function namespaces(state: State, actions: Actions): HTMLElement {
  const s = state.shared;
  return table(
    `Namespaces: ${s.namespaces.length}`,
    ['Namespace', num('Keys'), 'Holds keys since'],
    s.namespaces.map((n) =>
      h(
        'tr',
        { 'data-namespace': n.namespace, class: n.namespace === s.namespace ? 'selected' : '' },
        h(
          'th',
          { scope: 'row' },
          h(
            'button',
            {
              type: 'button',
              class: 'link mono',
              'data-key': `ns-${n.namespace}`,
              'aria-pressed': String(n.namespace === s.namespace),
              onclick: () => actions.openNamespace(n.namespace === s.namespace ? undefined : n.namespace),
            },
            n.namespace,
          ),
        ),
        numCell(n.keys),
        h('td', {}, ago(n.since)),
      ),
    ),
    'No namespace holds a key that this principal may read (state:read:<namespace>).',
  );
}

function keys(state: State, actions: Actions): Child[] {
  const s = state.shared;
  const title = `Keys of ${s.namespace}${s.keysMore ? ' (the first 100)' : ''}`;
  return [
    table(
      title,
      ['Key', num('Version'), 'Updated'],
      s.keys.map((k) =>
        h(
          'tr',
          { 'data-state-key': k.key, class: k.key === s.key ? 'selected' : '' },
          h(
            'th',
            { scope: 'row' },
            h(
              'button',
              {
                type: 'button',
                class: 'link mono',
                'data-key': `key-${k.key}`,
                'aria-pressed': String(k.key === s.key),
                onclick: () => actions.openKey(k.key === s.key ? undefined : k.key),
              },
              k.key,
            ),
          ),
          numCell(k.version),
          h('td', {}, ago(k.updatedAt)),
        ),
      ),
      'This namespace holds no key now.',
    ),
    s.key === undefined
      ? null
      : h(
          'section',
          { 'aria-label': `Value of ${s.key}`, class: 'value-of' },
          h('h3', {}, `${s.key}`),
          s.value === undefined
            ? h('p', { class: 'empty' }, 'Loading…')
            : s.value === null
              ? h('p', { class: 'empty' }, 'The key is gone.')
              : [
                  h(
                    'p',
                    {},
                    `version ${s.value.version}, updated ${ago(s.value.updatedAt)}`,
                    s.value.expiresAt === undefined ? '' : `, expires in ${duration(s.value.expiresAt - Date.now())}`,
                  ),
                  h('pre', { 'data-value': s.key }, json(s.value.value)),
                ],
        ),
  ];
}

function cache(state: State): HTMLElement {
  const s = state.shared;
  if (s.cacheForbidden) {
    return h(
      'div',
      {},
      h('h3', {}, 'Result cache'),
      h('p', { class: 'warn' }, 'This principal may not read the cache figures (cache:read).'),
    );
  }
  const saved = s.cache.reduce((n, a) => n + a.hits + a.shared, 0);
  const reached = s.cache.reduce((n, a) => n + a.misses, 0);
  return table(
    `Result cache: ${saved} agent calls saved of ${saved + reached} cacheable calls (${rate(saved, reached)})`,
    [
      'Agent',
      'Cacheable tasks',
      num('TTL'),
      num('Entries'),
      num('Hits'),
      num('Shared'),
      num('Misses'),
      num('Hit rate'),
    ],
    s.cache.map((a) =>
      h(
        'tr',
        { 'data-cache-agent': a.agent },
        h('th', { scope: 'row', class: 'mono' }, a.agent),
        h('td', {}, a.policy ? a.policy.tasks.join(', ') : 'none now'),
        numCell(a.policy ? `${a.policy.ttlMs / 1000} s` : '–'),
        numCell(a.entries),
        numCell(a.hits),
        numCell(a.shared),
        numCell(a.misses),
        h('td', { class: 'num', 'data-hit-rate': a.agent }, hitRate(a)),
      ),
    ),
    'No agent declares cacheable tasks.',
  );
}

/** Calls answered without the agent (stored outputs and shared flights), of all cacheable calls. */
export function hitRate(a: Pick<AgentCacheView, 'hits' | 'shared' | 'misses'>): string {
  return rate(a.hits + a.shared, a.misses);
}

function rate(saved: number, reached: number): string {
  const total = saved + reached;
  return total === 0 ? '–' : `${((100 * saved) / total).toFixed(1)}%`;
}
