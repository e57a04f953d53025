import {
  type AsyncTaskRequest,
  type AsyncTasks,
  type AuditLog,
  type Authorizer,
  type FoundTask,
  GatewayError,
  grantsOf,
  type LedgerTask,
  type Principal,
  publicLedgerRecord,
  publicRecord,
  type Submitted,
  type TaskDirectory,
  type TaskViewer,
} from '@openclaw/core';
import { type TaskState, type WorkflowDefinition, workflowCalls } from '@openclaw/protocol';

/** Who asks for a task operation, over whichever transport. */
export interface TaskCaller {
  principal: Principal;
  /** The agent the caller acts as: its connection's first registered agent (WebSocket only). */
  agent?: string;
  /** The agents the call came through, oldest first (an agent calling while it works on a task). */
  agents?: string[];
  /** A delegated call: on whose behalf, the principals it passed through, and how deep it is. */
  delegation?: { onBehalfOf: string; chain: string[]; depth: number };
  /** The trace of the request, carried to the task's agent. */
  traceparent?: string;
  /** The protocol the request came by when it is not the gateway's own (`a2a`), for the audit. */
  via?: string;
}

/** What the task operations need of the replica. */
export interface TaskOperationsDeps {
  asyncTasks: AsyncTasks;
  /** Finds a task by id, sync or async. */
  directory: TaskDirectory;
  authorizer: Authorizer;
  audit: AuditLog;
}

/**
 * The task operations of both transports, written once: the WebSocket actions (`task.get`,
 * `task.list`, `task.cancel`, `task.retry`, `task.respond`, async `coordinator`, `workflow.start`)
 * and their HTTP endpoints (`/v1/tasks...`, `/v1/workflows`) call these, so a permission, the
 * submitter's identity as governance sees it (principal, roles, agents, delegation) and the audit
 * entry are the same whichever way a request comes.
 */
export class TaskOperations {
  constructor(private readonly deps: TaskOperationsDeps) {}

  /** Who may see what: operators (`task:read:any`) see every task of their tenant. */
  viewer(principal: Principal): TaskViewer {
    return {
      principal: principal.id,
      tenant: principal.tenant,
      any: this.deps.authorizer.can(principal, 'task:read:any'),
    };
  }

  /** @throws {GatewayError} `FORBIDDEN` naming the permission the principal lacks. */
  require(principal: Principal, permission: string): void {
    this.deps.authorizer.require(principal, permission);
  }

  /**
   * The async task of that id, if the caller may see it; undefined when there is no async task of
   * that id (it may be a sync call's record). @throws {GatewayError} `NOT_FOUND` for another's task.
   */
  async findAsync(principal: Principal, taskId: string): Promise<LedgerTask | undefined> {
    const task = await this.deps.asyncTasks.ledger.get(taskId);
    if (!task) return undefined;
    const viewer = this.viewer(principal);
    if (task.tenant !== viewer.tenant || (!viewer.any && task.principal !== viewer.principal)) {
      throw new GatewayError('NOT_FOUND', `no task '${taskId}'`);
    }
    return task;
  }

  /**
   * The task of that id, sync or async, if the caller may see it (`task:read`).
   * @throws {GatewayError} `NOT_FOUND` when there is none the caller may see.
   */
  async find(principal: Principal, taskId: string): Promise<FoundTask> {
    this.require(principal, 'task:read');
    return this.deps.directory.visible(taskId, this.viewer(principal));
  }

  /** A task record (`task:read`): an async task or workflow as {@link taskView} shows it, or the caller's own sync call. */
  async get(caller: TaskCaller, taskId: string): Promise<unknown> {
    const found = await this.find(caller.principal, taskId);
    return found.mode === 'async' ? taskView(this.deps.asyncTasks, found.task) : publicRecord(found);
  }

  /** The visible async tasks in a status, newest change first (`task:read`). */
  async list(caller: TaskCaller, status: TaskState, limit: number): Promise<unknown[]> {
    this.require(caller.principal, 'task:read');
    const tasks = await this.deps.asyncTasks.list(this.viewer(caller.principal), status, limit);
    return tasks.map((t) => publicLedgerRecord(t));
  }

  /** An async task's event history, after a cursor (`task:read`). */
  async events(caller: TaskCaller, taskId: string, after: string | undefined): Promise<Record<string, unknown>[]> {
    this.require(caller.principal, 'task:read');
    await this.deps.asyncTasks.get(taskId, this.viewer(caller.principal));
    if (after !== undefined && !/^\d+-\d+$/.test(after)) {
      throw new GatewayError('BAD_REQUEST', 'after must be an event cursor such as 1795546421946-0', {
        details: [{ field: 'after', message: `got ${JSON.stringify(after)}` }],
      });
    }
    return (await this.deps.asyncTasks.ledger.events(taskId, after)).map((e) => e.frame);
  }

  /** Cancels an async task or workflow (`task:cancel`). */
  async cancel(caller: TaskCaller, taskId: string): Promise<{ taskId: string; status: TaskState }> {
    this.require(caller.principal, 'task:cancel');
    const status = await this.deps.asyncTasks.cancel(taskId, this.viewer(caller.principal));
    this.audit(caller, 'task.canceled', { taskId });
    return { taskId, status };
  }

  /** Runs a failed or canceled async task again (`task:retry`). */
  async retry(caller: TaskCaller, taskId: string): Promise<{ taskId: string; status: 'submitted' }> {
    this.require(caller.principal, 'task:retry');
    await this.deps.asyncTasks.retry(taskId, this.viewer(caller.principal));
    this.audit(caller, 'task.retried', { taskId });
    return { taskId, status: 'submitted' };
  }

  /** Answers a task waiting for a human (`task:respond`). */
  async respond(caller: TaskCaller, taskId: string, output: unknown): Promise<{ taskId: string; status: 'working' }> {
    this.require(caller.principal, 'task:respond');
    await this.deps.asyncTasks.respond(taskId, output, this.viewer(caller.principal));
    this.audit(caller, 'task.responded', { taskId });
    return { taskId, status: 'working' };
  }

  /** Submits an async task (`agent:invoke:<agent>`); governance judges each attempt as the caller. */
  async submit(caller: TaskCaller, request: AsyncTaskRequest): Promise<Submitted> {
    this.require(caller.principal, `agent:invoke:${request.agent}`);
    const submitted = await this.deps.asyncTasks.submit(this.submitter(caller), {
      ...request,
      ...(caller.traceparent === undefined ? {} : { traceparent: caller.traceparent }),
    });
    this.audit(
      caller,
      'task.submitted',
      { agent: request.agent, task: request.task, taskId: submitted.taskId },
      submitted.duplicate ? 'duplicate' : 'ok',
    );
    return submitted;
  }

  /**
   * Starts a workflow. It calls each of its agents (every case of every switch, every planner): the
   * caller must be allowed to call every one. The steps a planner returns are checked as the caller
   * when they arrive, with the grants kept for that.
   */
  async startWorkflow(
    caller: TaskCaller,
    workflow: WorkflowDefinition,
    input: unknown,
    idempotencyKey?: string,
    thread?: string,
  ): Promise<Submitted> {
    for (const call of workflowCalls(workflow.steps)) {
      this.require(caller.principal, `agent:invoke:${call.agent}`);
    }
    const submitted = await this.deps.asyncTasks.startWorkflow(
      { ...this.submitter(caller), grants: grantsOf(caller.principal) },
      workflow,
      input ?? null,
      {
        ...(idempotencyKey === undefined ? {} : { idempotencyKey }),
        ...(caller.traceparent === undefined ? {} : { traceparent: caller.traceparent }),
        ...(thread === undefined ? {} : { thread }),
      },
    );
    this.audit(
      caller,
      'workflow.started',
      { workflow: workflow.name ?? 'workflow', taskId: submitted.taskId, steps: workflow.steps.length },
      submitted.duplicate ? 'duplicate' : 'ok',
    );
    return submitted;
  }

  /** The submitter of a task as the ledger and governance know it. */
  private submitter(caller: TaskCaller) {
    const { principal, delegation } = caller;
    return {
      principal: principal.id,
      tenant: principal.tenant,
      roles: [...principal.roles],
      ...(caller.agent === undefined ? {} : { agent: caller.agent }),
      ...(caller.agents === undefined ? {} : { agents: caller.agents }),
      ...(delegation === undefined
        ? {}
        : { onBehalfOf: delegation.onBehalfOf, chain: delegation.chain, delegationDepth: delegation.depth }),
    };
  }

  private audit(
    caller: TaskCaller,
    type: string,
    details: Record<string, string | number | boolean | null>,
    outcome = 'ok',
  ): void {
    this.deps.audit.record(caller.principal.tenant, {
      type,
      principal: caller.principal.id,
      outcome,
      details: caller.via === undefined ? details : { ...details, via: caller.via },
    });
  }
}

/**
 * An async task as `task.get` (and `GET /v1/tasks/<id>`) shows it; a workflow with its steps, a
 * step whose task waits for a human shown `input-required`.
 */
export async function taskView(asyncTasks: AsyncTasks, task: LedgerTask): Promise<unknown> {
  const record = publicLedgerRecord(task);
  if (task.kind !== 'workflow') return record;
  const run = task.state as
    | {
        steps?: Record<
          string,
          {
            status: string;
            taskIds: string[];
            branches: string[];
            output?: unknown;
            error?: unknown;
            reason?: string;
            case?: string;
            planned?: string[];
          }
        >;
      }
    | undefined;
  const steps = [];
  for (const [id, step] of Object.entries(run?.steps ?? {})) {
    const children = await asyncTasks.ledger.getMany(step.taskIds);
    // A running step whose task waits for a human waits too (the run state only says it runs).
    const waits = step.status === 'working' && children.some((c) => c.status === 'input-required');
    steps.push({
      id,
      status: waits ? 'input-required' : step.status,
      ...(step.output === undefined ? {} : { output: step.output }),
      ...(step.error === undefined ? {} : { error: step.error }),
      ...(step.reason === undefined ? {} : { reason: step.reason }),
      ...(step.case === undefined ? {} : { case: step.case }),
      ...(step.planned === undefined ? {} : { planned: step.planned }),
      tasks: children.map((c) => ({
        taskId: c.taskId,
        stepId: c.stepId,
        agent: c.agent,
        status: c.status,
        attempts: c.attempts,
      })),
    });
  }
  return { ...record, steps };
}
