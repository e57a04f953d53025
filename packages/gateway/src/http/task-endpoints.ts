import { GatewayError, traceparentOf } from '@openclaw/core';
import {
  CoordinatorParamsSchema,
  TASK_STATES,
  TaskRespondParamsSchema,
  type TaskState,
  WorkflowStartParamsSchema,
} from '@openclaw/protocol';
import type { TaskCaller } from '../task-operations';
import { type Endpoints, noEndpoint } from './endpoint';
import { parseBody, readJsonBody, send } from './http-io';

/** Body of `POST /v1/tasks`: submit an async task (the `coordinator` params without `mode`). */
const SubmitBodySchema = CoordinatorParamsSchema.omit({ mode: true, delegation: true });

/**
 * Async tasks and workflows: `GET /v1/tasks?status=&limit=`, `GET /v1/tasks/<id>`,
 * `GET /v1/tasks/<id>/events?after=`, `POST /v1/tasks` (submit),
 * `POST /v1/tasks/<id>/cancel | retry | respond`, `POST /v1/workflows`. Each is the same operation
 * as its WebSocket action (see `TaskOperations`); operators (`task:read:any`) see the whole tenant.
 */
export const taskEndpoints: Endpoints = async (replica, request) => {
  const { req, res, principal, path, method, query } = request;
  const tasks = replica.tasks;
  const maxDepth = replica.config.maxJsonDepth;
  const caller: TaskCaller = { principal };
  const traceparent = traceparentOf();
  if (traceparent !== undefined) caller.traceparent = traceparent;
  if (path === '/v1/tasks' && method === 'GET') {
    const status = query.get('status') ?? 'failed';
    if (!(TASK_STATES as readonly string[]).includes(status)) {
      tasks.require(principal, 'task:read');
      throw new GatewayError('BAD_REQUEST', `status must be one of ${TASK_STATES.join(', ')}`, {
        details: [{ field: 'status', message: `got ${JSON.stringify(status)}` }],
      });
    }
    const limit = Number(query.get('limit') ?? '100');
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) {
      tasks.require(principal, 'task:read');
      throw new GatewayError('BAD_REQUEST', 'limit must be an integer from 1 to 1000', {
        details: [{ field: 'limit', message: `got ${JSON.stringify(query.get('limit'))}` }],
      });
    }
    return send(res, 200, await tasks.list(caller, status as TaskState, limit));
  }
  if (path === '/v1/tasks' && method === 'POST') {
    const body = parseBody(SubmitBodySchema, await readJsonBody(req, maxDepth), 'task');
    const submitted = await tasks.submit(caller, { ...body, data: body.data ?? null });
    return send(res, 202, { taskId: submitted.taskId, status: submitted.status });
  }
  if (path === '/v1/workflows' && method === 'POST') {
    const body = parseBody(WorkflowStartParamsSchema, await readJsonBody(req, maxDepth), 'workflow');
    const submitted = await tasks.startWorkflow(caller, body.workflow, body.input ?? null, body.idempotencyKey);
    return send(res, 202, { taskId: submitted.taskId, status: submitted.status });
  }
  const match = /^\/v1\/tasks\/([^/]+)(?:\/(cancel|retry|respond|events))?$/.exec(path);
  if (!match) throw noEndpoint(request);
  const taskId = decodeURIComponent(match[1]!);
  const verb = match[2];
  if (verb === undefined && method === 'GET') return send(res, 200, await tasks.get(caller, taskId));
  if (verb === 'events' && method === 'GET') {
    return send(res, 200, await tasks.events(caller, taskId, query.get('after') ?? undefined));
  }
  if (method !== 'POST' || verb === undefined || verb === 'events') throw noEndpoint(request);
  if (verb === 'cancel') return send(res, 200, await tasks.cancel(caller, taskId));
  if (verb === 'retry') return send(res, 200, await tasks.retry(caller, taskId));
  tasks.require(principal, 'task:respond');
  const body = parseBody(TaskRespondParamsSchema.omit({ taskId: true }), await readJsonBody(req, maxDepth), 'answer');
  return send(res, 200, await tasks.respond(caller, taskId, body.output));
};
