import { h, table } from './dom.js';
import type { State } from './model.js';
import { num, numCell } from './view-parts.js';

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
