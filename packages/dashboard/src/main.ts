import { Connection, RequestError } from './connection.js';
import { replaceContent } from './dom.js';
import {
  type AgentCacheView,
  type ApprovalView,
  type AuditView,
  initialState,
  type NamespaceView,
  type Snapshot,
  type State,
  TASK_STATES,
  type TaskEventView,
  type TaskState,
  type TaskView,
  VIEWS,
  type View,
} from './model.js';
import { ratePoint } from './rates.js';
import * as views from './views.js';

/** sessionStorage: the credential lives as long as the tab, never on disk. */
const STORAGE_KEY = 'openclaw.credential';
const HISTORY_POINTS = 300;
const MAX_TASKS = 2000;
const MAX_AUDIT = 300;
const LISTED_PER_STATE = 100;

const state: State = initialState();
let connection: Connection | undefined;
let credential = '';

const $ = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T;

// ------------------------------------------------------------------------------------------ render

let scheduled = false;
let focusDetails = false;

/** Renders at most once per frame, however many events arrive. */
function render(): void {
  if (scheduled) return;
  scheduled = true;
  requestAnimationFrame(() => {
    scheduled = false;
    draw();
  });
}

function draw(): void {
  const pending = [...state.approvals.values()].filter((a) => a.status === 'pending').length;
  $('tab-approvals').textContent = pending > 0 ? `Approvals (${pending})` : 'Approvals';
  for (const view of VIEWS) {
    const tab = $(`tab-${view}`);
    const selected = view === state.view;
    tab.setAttribute('aria-selected', String(selected));
    tab.tabIndex = selected ? 0 : -1;
    $(`panel-${view}`).hidden = !selected;
  }
  const panel = $(`panel-${state.view}`);
  const content = {
    overview: () => views.overview(state),
    agents: () => views.agents(state),
    tasks: () => views.tasks(state, actions),
    approvals: () => views.approvals(state, actions),
    state: () => views.stateView(state, actions),
    audit: () => views.audit(state),
  }[state.view]();
  replaceContent(panel, content);
  if (state.view === 'tasks' && focusDetails) {
    focusDetails = false;
    document.getElementById('task-details-title')?.focus();
  }
}

/** Says something to screen-reader users (and leaves it on screen for everyone else, briefly). */
function announce(text: string): void {
  const announcer = $('announcer');
  announcer.textContent = '';
  window.setTimeout(() => {
    announcer.textContent = text;
  }, 50);
}

function setConnection(text: string, mode: 'live' | 'down' | 'off'): void {
  const element = $('connection');
  element.textContent = text;
  element.dataset.state = mode;
}

// ------------------------------------------------------------------------------------------- views

function show(view: View, focus = false): void {
  state.view = view;
  if (location.hash !== `#${view}`) history.replaceState(null, '', `#${view}`);
  if (view === 'state') void loadShared();
  draw();
  if (focus) $(`tab-${view}`).focus();
}

function setUpTabs(): void {
  const tabs = $('tabs');
  tabs.addEventListener('click', (event) => {
    const view = (event.target as HTMLElement).closest<HTMLElement>('[role="tab"]')?.dataset.view as View | undefined;
    if (view) show(view);
  });
  // Arrow keys move between tabs (the WAI-ARIA tabs pattern); Tab moves into the panel.
  tabs.addEventListener('keydown', (event) => {
    const index = VIEWS.indexOf(state.view);
    const next =
      event.key === 'ArrowRight'
        ? (index + 1) % VIEWS.length
        : event.key === 'ArrowLeft'
          ? (index - 1 + VIEWS.length) % VIEWS.length
          : event.key === 'Home'
            ? 0
            : event.key === 'End'
              ? VIEWS.length - 1
              : undefined;
    if (next === undefined) return;
    event.preventDefault();
    show(VIEWS[next]!, true);
  });
  window.addEventListener('hashchange', () => {
    const view = location.hash.slice(1) as View;
    if (VIEWS.includes(view) && view !== state.view) show(view);
  });
  const initial = location.hash.slice(1) as View;
  if (VIEWS.includes(initial)) state.view = initial;
}

// ----------------------------------------------------------------------------------------- actions

const actions: views.Actions = {
  select(taskId) {
    state.selected = taskId;
    state.selectedEvents = undefined;
    state.selectedError = undefined;
    if (taskId === undefined) {
      render();
      return;
    }
    focusDetails = true;
    render();
    void loadDetails(taskId);
  },
  filter(change) {
    Object.assign(state.filters, change);
    render();
  },
  reason(approvalId, text) {
    state.reasons.set(approvalId, text);
  },
  decide(approvalId, decision) {
    if (!connection || state.busy.has(approvalId)) return;
    const reason = state.reasons.get(approvalId)?.trim();
    state.busy.add(approvalId);
    state.approvalNotes.delete(approvalId);
    render();
    connection
      .request<ApprovalView>('approval.decide', { approvalId, decision, ...(reason ? { reason } : {}) })
      .then(
        (record) => {
          upsertApproval(record);
          const text =
            record.status === 'pending'
              ? `Your ${decision === 'approve' ? 'approval' : 'rejection'} is recorded; ${record.approvals} of ${record.required.approvers} approvals so far.`
              : `${record.task} → ${record.agent}: ${record.status}.`;
          state.approvalNotes.set(approvalId, { text, bad: false });
          announce(text);
        },
        (error: unknown) => {
          const text = `Could not ${decision}: ${messageOf(error)}`;
          state.approvalNotes.set(approvalId, { text, bad: true });
          announce(text);
        },
      )
      .finally(() => {
        state.busy.delete(approvalId);
        render();
      });
  },
  cancel(taskId) {
    void taskCommand('task.cancel', taskId, 'canceled');
  },
  retry(taskId) {
    void taskCommand('task.retry', taskId, 'submitted again');
  },
  openNamespace(namespace) {
    Object.assign(state.shared, { namespace, keys: [], keysMore: false, key: undefined, value: undefined });
    render();
    void loadShared();
  },
  openKey(key) {
    Object.assign(state.shared, { key, value: undefined });
    render();
    void loadShared();
  },
};

// ------------------------------------------------------------------------------------ state, cache

/** How often the state and cache view is read again while it is shown. */
const SHARED_REFRESH_MS = 5000;
let sharedTimer: number | undefined;
let sharedLoading = false;
/** Something was opened while a read was under way: read again when it ends. */
let sharedAgain = false;

/**
 * Reads what the state and cache view shows (namespaces, the open namespace's first page of keys,
 * the open key, the cache figures), and again every few seconds while the view is shown.
 */
async function loadShared(): Promise<void> {
  window.clearTimeout(sharedTimer);
  sharedTimer = undefined;
  if (state.view !== 'state' || !connection) return;
  if (sharedLoading) {
    sharedAgain = true;
    return;
  }
  sharedLoading = true;
  sharedAgain = false;
  const s = state.shared;
  const { namespace, key } = s;
  const at = (ns: string, k?: string) =>
    `/v1/state/${encodeURIComponent(ns)}${k === undefined ? '' : `/${encodeURIComponent(k)}`}`;
  try {
    const [listed, cache, page, value] = await Promise.all([
      fetchJson<{ namespaces: NamespaceView[] }>('/v1/state'),
      fetchJson<{ agents: AgentCacheView[] }>('/v1/cache').catch((error: unknown) => {
        if (error instanceof RequestError && error.wire.code === 'FORBIDDEN') return undefined;
        throw error;
      }),
      namespace === undefined
        ? undefined
        : fetchJson<{ items: typeof s.keys; cursor?: string }>(`${at(namespace)}?limit=100`),
      namespace === undefined || key === undefined
        ? undefined
        : fetchJson<NonNullable<typeof s.value>>(at(namespace, key)).catch((error: unknown) => {
            if (error instanceof RequestError && error.wire.code === 'NOT_FOUND') return null;
            throw error;
          }),
    ]);
    s.loaded = true;
    s.error = undefined;
    s.namespaces = listed.namespaces;
    s.cacheForbidden = cache === undefined;
    s.cache = cache?.agents ?? [];
    // What was opened meanwhile is read on the next round.
    if (page && s.namespace === namespace) {
      s.keys = page.items.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
      s.keysMore = page.cursor !== undefined && page.cursor !== null;
    }
    if (value !== undefined && s.namespace === namespace && s.key === key) s.value = value;
  } catch (error) {
    s.loaded = true;
    s.error = `Could not read the state and cache: ${messageOf(error)}`;
  } finally {
    sharedLoading = false;
  }
  render();
  if (state.view === 'state')
    sharedTimer = window.setTimeout(() => void loadShared(), sharedAgain ? 0 : SHARED_REFRESH_MS);
}

async function taskCommand(action: string, taskId: string, done: string): Promise<void> {
  try {
    await connection?.request(action, { taskId });
    announce(`Task ${taskId.slice(0, 8)} ${done}.`);
  } catch (error) {
    announce(`${action} failed: ${messageOf(error)}`);
    state.selectedError = `${action} failed: ${messageOf(error)}`;
    render();
  }
}

function messageOf(error: unknown): string {
  if (error instanceof RequestError) return `${error.wire.message} (${error.wire.code})`;
  return error instanceof Error ? error.message : String(error);
}

// ------------------------------------------------------------------------------------------- tasks

function upsertTask(update: Partial<TaskView> & { taskId: string }): TaskView {
  const existing = state.tasks.get(update.taskId);
  const task: TaskView = existing ?? { taskId: update.taskId, status: 'submitted', updatedAt: Date.now() };
  for (const [name, value] of Object.entries(update)) {
    if (value !== undefined) (task as unknown as Record<string, unknown>)[name] = value;
  }
  state.tasks.set(task.taskId, task);
  if (state.tasks.size > MAX_TASKS) {
    // Forget the oldest tasks that have ended (a busy tenant would otherwise grow the page forever).
    const ended = [...state.tasks.values()]
      .filter((t) => t.status !== 'working' && t.status !== 'submitted' && t.status !== 'input-required')
      .sort((a, b) => a.updatedAt - b.updatedAt);
    for (const t of ended.slice(0, state.tasks.size - MAX_TASKS)) state.tasks.delete(t.taskId);
  }
  return task;
}

/** A `task.status` event (from `tasks.watch`). */
function onTaskStatus(frame: Record<string, unknown>): void {
  const taskId = frame.taskId as string;
  const cursor = typeof frame.cursor === 'string' ? frame.cursor : undefined;
  const at = cursor ? Number(cursor.split('-')[0]) : Date.now();
  const status = frame.status as TaskState;
  const task = upsertTask({
    taskId,
    status,
    updatedAt: at,
    agent: frame.agent as string | undefined,
    task: frame.task as string | undefined,
    kind: frame.kind as TaskView['kind'],
    submittedBy: frame.submittedBy as string | undefined,
    parentId: frame.parentId as string | undefined,
    attempts: typeof frame.attempt === 'number' ? frame.attempt : undefined,
    error: frame.error as TaskView['error'],
    lastError: frame.lastError as TaskView['lastError'],
    question: frame.question,
  });
  if (status === 'submitted' && task.createdAt === undefined) task.createdAt = at;
  if (status !== 'input-required') task.approvalId = undefined;
  else if (typeof frame.approvalId === 'string') task.approvalId = frame.approvalId;
  if (task.task === undefined) lookUp(taskId);
  if (state.selected === taskId) refreshDetails(taskId);
  render();
}

const lookups = new Set<string>();

/** A task first seen without its names (it began before this page): read its record once. */
function lookUp(taskId: string): void {
  if (lookups.has(taskId) || !connection) return;
  lookups.add(taskId);
  connection
    .request<TaskView>('task.get', { taskId })
    .then((record) => {
      upsertTask({ ...record, steps: undefined, output: undefined });
      render();
    })
    .catch(() => undefined);
}

let detailsTimer: number | undefined;

function refreshDetails(taskId: string): void {
  window.clearTimeout(detailsTimer);
  detailsTimer = window.setTimeout(() => void loadDetails(taskId), 250);
}

/** The selected task's record (`task.get`) and its kept events (`GET /v1/tasks/<id>/events`). */
async function loadDetails(taskId: string): Promise<void> {
  try {
    const [record, events] = await Promise.all([
      connection!.request<TaskView>('task.get', { taskId }),
      fetchJson<Record<string, unknown>[]>(`/v1/tasks/${encodeURIComponent(taskId)}/events`),
    ]);
    if (state.selected !== taskId) return;
    upsertTask(record);
    state.selectedEvents = events.map((e) => e as unknown as TaskEventView);
    state.selectedError = undefined;
  } catch (error) {
    if (state.selected !== taskId) return;
    state.selectedError = `Could not load the task: ${messageOf(error)}`;
  }
  render();
}

async function fetchJson<T>(path: string): Promise<T> {
  const response = await fetch(path, { headers: credential ? { authorization: `Bearer ${credential}` } : {} });
  const body = (await response.json().catch(() => ({}))) as { error?: { code: string; message: string } };
  if (!response.ok) {
    throw new RequestError({
      code: body.error?.code ?? `HTTP_${response.status}`,
      message: body.error?.message ?? `HTTP ${response.status}`,
      retryable: response.status >= 500,
    });
  }
  return body as T;
}

// --------------------------------------------------------------------------------------- approvals

function upsertApproval(record: ApprovalView): void {
  const { event: _event, ...fields } = record as ApprovalView & { event?: string };
  state.approvals.set(fields.approvalId, fields);
  if (fields.status !== 'pending') {
    state.reasons.delete(fields.approvalId);
  }
  // Keep the inbox and the last hundred decisions.
  const decided = [...state.approvals.values()]
    .filter((a) => a.status !== 'pending')
    .sort((a, b) => b.updatedAt - a.updatedAt);
  for (const a of decided.slice(100)) state.approvals.delete(a.approvalId);
}

// ---------------------------------------------------------------------------------------- snapshot

function onSnapshot(frame: Record<string, unknown>): void {
  const { event: _event, ...snapshot } = frame as unknown as Snapshot & { event: string };
  const previous = state.snapshot;
  if (previous) {
    state.history.push(ratePoint(previous, snapshot));
    if (state.history.length > HISTORY_POINTS) state.history.splice(0, state.history.length - HISTORY_POINTS);
  }
  for (const entry of snapshot.audit ?? []) state.audit.set(entry.id, entry as AuditView);
  if (state.audit.size > MAX_AUDIT) {
    const ids = [...state.audit.keys()].sort();
    for (const id of ids.slice(0, state.audit.size - MAX_AUDIT)) state.audit.delete(id);
  }
  state.snapshot = snapshot;
  render();
}

// ------------------------------------------------------------------------------------------ wiring

function onEvent(frame: Record<string, unknown>): void {
  switch (frame.event) {
    case 'cluster.snapshot':
      onSnapshot(frame);
      return;
    case 'task.status':
      if (typeof frame.taskId === 'string') onTaskStatus(frame);
      return;
    case 'approval.requested':
    case 'approval.updated':
      upsertApproval(frame as unknown as ApprovalView);
      if (frame.event === 'approval.requested') announce(`New approval request: ${frame.task} → ${frame.agent}.`);
      render();
      return;
  }
}

/** On every (re)connection: say who we are, then subscribe to everything the page shows. */
async function onOpen(): Promise<void> {
  const c = connection!;
  try {
    const hello = await c.request<{ replica: string; principal: State['principal'] }>('hello', { protocol: 1 });
    state.replicaId = hello.replica;
    state.principal = hello.principal;
    $('who').textContent = `${hello.principal?.id} · tenant ${hello.principal?.tenant}`;
    setConnection(`Live · replica ${hello.replica}`, 'live');
    await c.request('cluster.watch', { intervalMs: 2000 });
    if (state.view === 'state') void loadShared();
  } catch (error) {
    setConnection(`Connected, but: ${messageOf(error)}`, 'down');
  }
  c.request('tasks.watch').then(
    () => {
      state.tasksVisible = true;
      // What happened before the page (or while it was away) comes from the task lists.
      for (const status of TASK_STATES) {
        c.request<TaskView[]>('task.list', { status, limit: LISTED_PER_STATE }).then(
          (records) => {
            for (const record of records) {
              const known = state.tasks.get(record.taskId);
              if (!known || known.updatedAt <= record.updatedAt) upsertTask(record);
            }
            render();
          },
          () => undefined,
        );
      }
    },
    (error: unknown) => {
      if (error instanceof RequestError && error.wire.code === 'FORBIDDEN') state.tasksVisible = false;
      render();
    },
  );
  c.request<ApprovalView[]>('approval.list', { status: 'pending', limit: 1000 }).then(
    (records) => {
      state.approvalsVisible = true;
      for (const a of state.approvals.values()) if (a.status === 'pending') state.approvals.delete(a.approvalId);
      for (const record of records) upsertApproval(record);
      render();
    },
    (error: unknown) => {
      if (error instanceof RequestError && error.wire.code === 'FORBIDDEN') state.approvalsVisible = false;
      render();
    },
  );
}

/**
 * Checks the credential over HTTP first: a browser cannot read why a WebSocket upgrade was refused,
 * and the operator deserves to know whether the key was wrong or lacks a permission.
 */
async function signIn(given: string, quiet: boolean): Promise<boolean> {
  const error = $('login-error');
  error.textContent = '';
  let response: Response;
  try {
    response = await fetch('/v1/cluster', { headers: given ? { authorization: `Bearer ${given}` } : {} });
  } catch {
    if (!quiet) error.textContent = 'The gateway cannot be reached.';
    return false;
  }
  if (!response.ok) {
    const body = (await response.json().catch(() => ({}))) as { error?: { message?: string } };
    const retryAfter = response.headers.get('retry-after');
    if (!quiet) {
      error.textContent =
        response.status === 401
          ? 'That API key or token was not accepted.'
          : response.status === 403
            ? `Signed in, but not allowed to watch the cluster: ${body.error?.message ?? 'forbidden'}. Use an operator or admin key.`
            : response.status === 429
              ? `Too many failed sign-ins from this address. Try again in ${retryAfter ?? 'a few'} seconds.`
              : `The gateway answered ${response.status}: ${body.error?.message ?? ''}`;
    }
    return false;
  }
  credential = given;
  if (given) sessionStorage.setItem(STORAGE_KEY, given);
  $('login').hidden = true;
  $('console').hidden = false;
  $('sign-out').hidden = given === '';
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  // Browsers cannot set headers on a WebSocket: the credential goes in the query (see the protocol).
  const url = `${scheme}//${location.host}/ws${given ? `?access_token=${encodeURIComponent(given)}` : ''}`;
  setConnection('Connecting…', 'off');
  connection = new Connection(url, {
    open: () => void onOpen(),
    event: onEvent,
    down: (reason, retryInMs) => {
      setConnection(
        retryInMs === undefined
          ? `Disconnected: ${reason}.`
          : `Reconnecting in ${Math.ceil(retryInMs / 1000)} s: ${reason}.`,
        'down',
      );
      if (retryInMs === undefined) signOut(reason);
    },
  });
  connection.start();
  draw();
  $('main').focus();
  return true;
}

function signOut(reason?: string): void {
  connection?.close();
  connection = undefined;
  credential = '';
  sessionStorage.removeItem(STORAGE_KEY);
  Object.assign(state, initialState(), { view: state.view, jaegerUrl: state.jaegerUrl });
  $('console').hidden = true;
  $('login').hidden = false;
  $('sign-out').hidden = true;
  $('who').textContent = '';
  setConnection('Not signed in', 'off');
  $('login-error').textContent = reason ? `Signed out: ${reason}.` : '';
  $<HTMLInputElement>('credential').value = '';
  $('credential').focus();
}

async function boot(): Promise<void> {
  setUpTabs();
  $('login-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const given = $<HTMLInputElement>('credential').value.trim();
    if (given === '') {
      $('login-error').textContent = 'Enter an API key or an access token.';
      return;
    }
    void signIn(given, false);
  });
  $('sign-out').addEventListener('click', () => signOut());
  try {
    const config = (await (await fetch('config.json')).json()) as { jaegerUrl: string | null };
    state.jaegerUrl = config.jaegerUrl;
  } catch {
    state.jaegerUrl = null;
  }
  const stored = sessionStorage.getItem(STORAGE_KEY);
  // A stored credential from this tab, else no credential at all (a development cluster without
  // authentication lets the page straight in).
  if (stored && (await signIn(stored, true))) return;
  if (await signIn('', true)) return;
  $('credential').focus();
}

void boot();
