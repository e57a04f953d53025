import { z } from 'zod';
import { ACTION_PARAMS } from '../actions';
import { EventSchema, RequestEnvelopeSchema, ResponseSchema } from '../frames';
import {
  AgentsListResultSchema,
  ApprovalListResultSchema,
  ApprovalRecordSchema,
  CoordinatorResultSchema,
  DelegateResultSchema,
  HelloResultSchema,
  PingResultSchema,
  RegisterResultSchema,
  TaskCancelResultSchema,
  TaskRecordSchema,
} from '../results';

/**
 * Renders every wire schema as JSON Schema (draft 2020-12), keyed by the file it is written to.
 * Deterministic: the same schemas always give the same text.
 * @internal
 */
export function renderJsonSchemas(): Map<string, string> {
  const files = new Map<string, string>();
  const put = (name: string, schema: z.ZodType): void => {
    const json = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' });
    files.set(`${name}.json`, `${JSON.stringify({ title: name, ...json }, null, 2)}\n`);
  };
  put('request', RequestEnvelopeSchema);
  put('response', ResponseSchema);
  put('event', EventSchema);
  for (const [action, schema] of Object.entries(ACTION_PARAMS)) put(`actions/${action}`, schema);
  put('results/hello', HelloResultSchema);
  put('results/register', RegisterResultSchema);
  put('results/coordinator', CoordinatorResultSchema);
  put('results/task.get', TaskRecordSchema);
  put('results/task.cancel', TaskCancelResultSchema);
  put('results/agents.list', AgentsListResultSchema);
  put('results/ping', PingResultSchema);
  put('results/delegate', DelegateResultSchema);
  put('results/approval.list', ApprovalListResultSchema);
  put('results/approval.get', ApprovalRecordSchema);
  put('results/approval.decide', ApprovalRecordSchema);
  return files;
}
