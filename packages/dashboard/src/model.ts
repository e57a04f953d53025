import type {
  AgentCacheSummary,
  ApprovalRecord,
  NamespaceSummary,
  StateEntry,
  StateListItem,
  TaskState,
  ValidatorSummary,
} from '@openclaw/protocol';
import type { RatePoint, ReplicaRequests } from './rates.js';

export type { TaskState };

/** A replica as every tenant sees it: whether it serves. */
export interface ReplicaHealth {
  replicaId: string;
  version: string;
  startedAt: number;
  ready: boolean;
  draining: boolean;
  at: number;
}

/** A replica as the operators' tenant sees it. */
export interface Replica extends ReplicaHealth {
  host: string;
  pid: number;
  port: number;
  connections: { agent: number; client: number };
  inFlight: number;
}

export interface AgentView {
  name: string;
  kind: 'ws' | 'http';
  instances: number;
  tasks: string[];
  capacity?: number;
  inFlight?: number;
  url?: string;
}

export type ValidatorView = ValidatorSummary;

export interface AuditView {
  id: string;
  ts: number;
  type: string;
  principal?: string;
  outcome: string;
  replica?: string;
  details?: Record<string, unknown>;
}

export interface Snapshot {
  at: number;
  /**
   * `tenant`: the view of a tenant other than the operators': replicas' health only, and none of the
   * figures that span tenants (traffic, workers, queue, validators, Redis details).
   */
  scope?: 'cluster' | 'tenant';
  replicas: Replica[];
  requests: ReplicaRequests[];
  workers: Record<string, string | number | boolean>[];
  agents: AgentView[];
  queue: Record<string, number> | null;
  approvalsPending: number;
  redis: {
    reachable: boolean;
    version?: string;
    role?: string;
    uptimeSeconds?: number;
    usedMemoryBytes?: number;
    maxmemoryPolicy?: string;
    aofEnabled?: boolean;
    connectedClients?: number;
  };
  validators?: ValidatorView[];
  audit?: AuditView[];
}

/** Every task state, once: a state added to the protocol and not here fails to compile. */
const STATES: Record<TaskState, true> = {
  submitted: true,
  working: true,
  'input-required': true,
  completed: true,
  failed: true,
  canceled: true,
  rejected: true,
};
export const TASK_STATES = Object.keys(STATES) as TaskState[];

export interface WireErrorView {
  code: string;
  message: string;
}

export interface TaskView {
  taskId: string;
  status: TaskState;
  agent?: string;
  task?: string;
  kind?: 'task' | 'workflow';
  submittedBy?: string;
  createdAt?: number;
  updatedAt: number;
  attempts?: number;
  maxAttempts?: number;
  parentId?: string;
  stepId?: string;
  error?: WireErrorView;
  lastError?: WireErrorView;
  approvalId?: string;
  traceId?: string;
  output?: unknown;
  question?: unknown;
  steps?: unknown;
}

export interface TaskEventView {
  cursor: string;
  event: string;
  status?: TaskState;
  attempt?: number;
  error?: WireErrorView;
  lastError?: WireErrorView;
  progress?: unknown;
  question?: unknown;
}

export type ApprovalView = ApprovalRecord;

/** A namespace of shared state (`GET /v1/state`). */
export type NamespaceView = NamespaceSummary;

/** An agent's result cache (`GET /v1/cache`). */
export type AgentCacheView = AgentCacheSummary;

/** The state and cache view: read over HTTP while it is shown. */
export interface SharedView {
  loaded: boolean;
  error: string | undefined;
  namespaces: NamespaceView[];
  /** The namespace whose keys are shown, and its first page of keys. */
  namespace: string | undefined;
  keys: StateListItem[];
  keysMore: boolean;
  /** The key whose value is shown; its entry (null: gone; undefined: loading). */
  key: string | undefined;
  value: StateEntry | null | undefined;
  cache: AgentCacheView[];
  cacheForbidden: boolean;
}

export type View = 'overview' | 'agents' | 'tasks' | 'approvals' | 'state' | 'audit';
export const VIEWS: readonly View[] = ['overview', 'agents', 'tasks', 'approvals', 'state', 'audit'];

/** Everything the page shows, fed by the WebSocket. */
export interface State {
  view: View;
  principal: { id: string; tenant: string; roles: string[] } | undefined;
  replicaId: string | undefined;
  jaegerUrl: string | null;
  snapshot: Snapshot | undefined;
  /** The charts: one point per snapshot, the last ten minutes at most. */
  history: RatePoint[];
  tasks: Map<string, TaskView>;
  /** Whether this principal may see every task of the tenant (`tasks.watch` accepted). */
  tasksVisible: boolean | undefined;
  filters: { status: TaskState | ''; agent: string; text: string; steps: boolean };
  selected: string | undefined;
  selectedEvents: TaskEventView[] | undefined;
  selectedError: string | undefined;
  approvals: Map<string, ApprovalView>;
  approvalsVisible: boolean | undefined;
  /** Reasons typed in the approvals inbox, kept across live updates. */
  reasons: Map<string, string>;
  /** What the last decision on an approval said (an error, or what happened). */
  approvalNotes: Map<string, { text: string; bad: boolean }>;
  busy: Set<string>;
  audit: Map<string, AuditView>;
  shared: SharedView;
}

export function initialState(): State {
  return {
    view: 'overview',
    principal: undefined,
    replicaId: undefined,
    jaegerUrl: null,
    snapshot: undefined,
    history: [],
    tasks: new Map(),
    tasksVisible: undefined,
    filters: { status: '', agent: '', text: '', steps: true },
    selected: undefined,
    selectedEvents: undefined,
    selectedError: undefined,
    approvals: new Map(),
    approvalsVisible: undefined,
    reasons: new Map(),
    approvalNotes: new Map(),
    busy: new Set(),
    audit: new Map(),
    shared: {
      loaded: false,
      error: undefined,
      namespaces: [],
      namespace: undefined,
      keys: [],
      keysMore: false,
      key: undefined,
      value: undefined,
      cache: [],
      cacheForbidden: false,
    },
  };
}
