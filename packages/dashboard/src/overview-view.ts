import { lineChart } from './charts.js';
import { h, table } from './dom.js';
import { bytes, duration, number } from './format.js';
import type { State } from './model.js';
import { card, num, numCell, yesNo } from './view-parts.js';

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
