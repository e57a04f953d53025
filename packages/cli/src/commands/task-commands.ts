import { readFileSync } from 'node:fs';
import type { TaskRecord, TaskWait } from '@openclaw/protocol';
import type { Command } from 'commander';
import { parse as parseYaml } from 'yaml';
import { fetchJson, type RemoteDefaults, type RemoteOptions, withRemoteOptions } from '../http-client';
import { renderTable } from '../table';

type Remote = RemoteOptions & { json?: boolean };

/** `openclaw task list | show | submit | cancel | retry | respond` and `openclaw workflow start`. */
export function addTaskCommands(program: Command, defaults: RemoteDefaults): void {
  const task = program.command('task').description('inspect and act on async tasks and workflows');

  withRemoteOptions(task.command('list'), defaults)
    .description('list async tasks in one status (failed tasks are the dead letters)')
    .option('--status <status>', 'submitted | working | input-required | completed | failed | canceled', 'failed')
    .option('--limit <n>', 'at most this many, newest change first', '50')
    .action(async (o: Remote & { status: string; limit: string }) => {
      const query = new URLSearchParams({ status: o.status, limit: o.limit });
      const tasks = (await fetchJson(o, `/v1/tasks?${query}`)) as TaskRecord[];
      if (o.json) return print(JSON.stringify(tasks, null, 2));
      if (tasks.length === 0) return print(`no ${o.status} tasks`);
      print(
        renderTable(
          ['task', 'kind', 'agent', 'task name', 'attempts', 'updated', 'detail'],
          tasks.map((t) => [
            t.taskId,
            t.kind ?? 'task',
            t.agent || '-',
            t.task,
            // A workflow makes no attempts of its own: its steps do.
            t.kind === 'workflow' ? '-' : `${t.attempts ?? 0}/${t.maxAttempts ?? 1}`,
            new Date(t.updatedAt).toISOString(),
            detail(t),
          ]),
        ),
      );
    });

  withRemoteOptions(task.command('show'), defaults)
    .description('show one task: status, attempts, output or error, and a workflow’s steps')
    .argument('<taskId>')
    .option('--events', 'also show its history: every status change and progress report, with times')
    .action(async (taskId: string, o: Remote & { events?: boolean }) => {
      const record = (await fetchJson(o, `/v1/tasks/${encodeURIComponent(taskId)}`)) as TaskRecord & {
        steps?: {
          id: string;
          status: string;
          reason?: string;
          case?: string;
          planned?: string[];
          tasks: { taskId: string; agent: string; status: string }[];
        }[];
      };
      const events = o.events
        ? ((await fetchJson(o, `/v1/tasks/${encodeURIComponent(taskId)}/events`)) as Record<string, unknown>[])
        : undefined;
      if (o.json) return print(JSON.stringify(events ? { ...record, events } : record, null, 2));
      const lines = [
        `task      ${record.taskId} (${record.kind ?? 'task'})`,
        `status    ${record.status}`,
        record.agent ? `agent     ${record.agent} / ${record.task}` : `workflow  ${record.task}`,
        // A workflow makes no attempts of its own (its steps do): a count there would only mislead.
        ...(record.kind === 'workflow' ? [] : [`attempts  ${record.attempts ?? 0} of ${record.maxAttempts ?? 1}`]),
        `submitter ${record.submittedBy ?? '-'}`,
        `created   ${new Date(record.createdAt).toISOString()}`,
        `updated   ${new Date(record.updatedAt).toISOString()}`,
      ];
      if (record.parentId) lines.push(`workflow  ${record.parentId} (step ${record.stepId})`);
      if (record.waiting) for (const w of record.waiting) lines.push(`waiting   ${describeWait(w, true)}`);
      else if (record.question !== undefined) lines.push(`question  ${JSON.stringify(record.question)}`);
      if (record.output !== undefined) lines.push(`output    ${JSON.stringify(record.output)}`);
      if (record.error) lines.push(`error     ${record.error.code}: ${record.error.message}`);
      if (record.lastError) lines.push(`last error ${record.lastError.code}: ${record.lastError.message}`);
      for (const step of record.steps ?? []) {
        const why =
          step.reason === 'condition'
            ? ' (its condition did not hold)'
            : step.case !== undefined
              ? ` (case ${step.case})`
              : step.planned !== undefined
                ? ` (planned: ${step.planned.join(', ') || 'nothing'})`
                : '';
        lines.push(`step ${step.id}: ${step.status}${why}`);
        for (const t of step.tasks) lines.push(`  ${t.taskId} ${t.agent} ${t.status}`);
      }
      for (const event of events ?? []) lines.push(describeEvent(event));
      print(lines.join('\n'));
    });

  withRemoteOptions(task.command('submit'), defaults)
    .description('submit an async task and print its id')
    .requiredOption('--agent <name>', 'the agent')
    .requiredOption('--task <name>', 'the task name')
    .option('--data <json>', 'the task data, as JSON', 'null')
    .option('--timeout-ms <ms>', 'deadline of one attempt')
    .option('--idempotency-key <key>', 'a repeat with the same key returns the first task')
    .action(
      async (
        o: Remote & { agent: string; task: string; data: string; timeoutMs?: string; idempotencyKey?: string },
      ) => {
        const body: Record<string, unknown> = { agent: o.agent, task: o.task, data: parseJson(o.data, '--data') };
        if (o.timeoutMs !== undefined) body.timeoutMs = positiveInt(o.timeoutMs, '--timeout-ms');
        if (o.idempotencyKey !== undefined) body.idempotencyKey = o.idempotencyKey;
        const result = (await fetchJson(o, '/v1/tasks', { method: 'POST', body })) as {
          taskId: string;
          status: string;
        };
        print(o.json ? JSON.stringify(result, null, 2) : `${result.taskId} ${result.status}`);
      },
    );

  for (const [verb, description] of [
    ['cancel', 'cancel a task (a workflow’s running steps too)'],
    ['retry', 'run a failed or canceled task again from its first attempt'],
  ] as const) {
    withRemoteOptions(task.command(verb), defaults)
      .description(description)
      .argument('<taskId>')
      .action(async (taskId: string, o: Remote) => {
        const result = (await fetchJson(o, `/v1/tasks/${encodeURIComponent(taskId)}/${verb}`, {
          method: 'POST',
        })) as { taskId: string; status: string };
        print(o.json ? JSON.stringify(result, null, 2) : `${result.taskId} ${result.status}`);
      });
  }

  withRemoteOptions(task.command('respond'), defaults)
    .description('answer a task waiting for a human (input-required); the answer becomes its output')
    .argument('<taskId>')
    .option('--output <json>', 'the answer, as JSON')
    .option('--text <text>', 'the answer, as a string')
    .action(async (taskId: string, o: Remote & { output?: string; text?: string }) => {
      if ((o.output === undefined) === (o.text === undefined))
        throw new Error('give exactly one of --output and --text');
      const output = o.text ?? parseJson(o.output!, '--output');
      const result = (await fetchJson(o, `/v1/tasks/${encodeURIComponent(taskId)}/respond`, {
        method: 'POST',
        body: { output },
      })) as { taskId: string; status: string };
      print(o.json ? JSON.stringify(result, null, 2) : `${result.taskId} answered; it carries on`);
    });

  const workflow = program.command('workflow').description('run workflows');
  withRemoteOptions(workflow.command('start'), defaults)
    .description('start a workflow from a YAML or JSON definition file and print its task id')
    .requiredOption('--file <path>', 'the workflow definition (see docs/coordination.md)')
    .option('--input <json>', 'the input of the first step, as JSON', 'null')
    .option('--idempotency-key <key>', 'a repeat with the same key returns the first workflow')
    .action(async (o: Remote & { file: string; input: string; idempotencyKey?: string }) => {
      let text: string;
      try {
        text = readFileSync(o.file, 'utf8');
      } catch (error) {
        throw new Error(`--file: cannot read ${o.file} (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
      }
      let definition: unknown;
      try {
        definition = parseYaml(text);
      } catch (error) {
        throw new Error(`--file: ${o.file} is not valid YAML or JSON: ${(error as Error).message}`);
      }
      const body: Record<string, unknown> = { workflow: definition, input: parseJson(o.input, '--input') };
      if (o.idempotencyKey !== undefined) body.idempotencyKey = o.idempotencyKey;
      const result = (await fetchJson(o, '/v1/workflows', { method: 'POST', body })) as {
        taskId: string;
        status: string;
      };
      print(o.json ? JSON.stringify(result, null, 2) : `${result.taskId} ${result.status}`);
    });
}

/** One line of a task's history: when, what, and the detail that matters. */
function describeEvent(event: Record<string, unknown>): string {
  const at = new Date(Number(String(event.cursor).split('-')[0])).toISOString();
  if (event.event === 'task.progress') return `${at}  progress  ${truncate(JSON.stringify(event.progress ?? null))}`;
  const parts = [`${at}  ${String(event.status)}`];
  if (event.attempt !== undefined) parts.push(`attempt ${String(event.attempt)}`);
  const error = (event.error ?? event.lastError) as { code?: string; message?: string } | undefined;
  if (error) parts.push(truncate(`${error.code}: ${error.message}`));
  if (event.question !== undefined) parts.push(truncate(JSON.stringify(event.question)));
  return parts.join('  ');
}

/**
 * What a workflow waits for, in a line: the step, who may act (the permission, or the approval's
 * approvers) and since when; `full` adds the task to act on, the message and the time limit.
 */
function describeWait(w: TaskWait, full: boolean): string {
  const where = `step ${w.step ?? '-'}${w.branch ? `/${w.branch}` : ''}`;
  const what =
    w.needs === 'approval'
      ? `needs approval ${w.approvalId ?? '?'} from ${approvers(w.required)}`
      : `needs an answer (${w.permission}: openclaw task respond)`;
  const parts = [`${where} ${what} since ${new Date(w.since).toISOString()}`];
  if (full) {
    parts.push(`task ${w.taskId}${w.agent ? ` (${w.agent})` : ''}`);
    if (w.until !== undefined) parts.push(`until ${new Date(w.until).toISOString()}`);
    if (w.message !== undefined) parts.push(JSON.stringify(w.message));
  }
  return parts.join(', ');
}

function approvers(required: TaskWait['required']): string {
  if (!required) return 'an approver (approval:decide)';
  const who = required.principals?.length ? ` among ${required.principals.join(', ')}` : '';
  const role = required.role ? ` with role ${required.role}` : '';
  return `${required.approvers} approver${required.approvers === 1 ? '' : 's'}${role}${who}`;
}

function detail(t: TaskRecord): string {
  if (t.status === 'input-required' && t.waiting?.length)
    return t.waiting.map((w) => describeWait(w, false)).join('; ');
  if (t.status === 'input-required') return truncate(JSON.stringify(t.question ?? null));
  if (t.error) return truncate(`${t.error.code}: ${t.error.message}`);
  if (t.lastError) return truncate(`last: ${t.lastError.code}: ${t.lastError.message}`);
  return '';
}

function truncate(text: string): string {
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

function parseJson(text: string, flag: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new Error(`${flag}: not valid JSON: ${text}`);
  }
}

function positiveInt(text: string, flag: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1)
    throw new Error(`${flag}: expected a positive integer, got ${JSON.stringify(text)}`);
  return n;
}

function print(text: string): void {
  process.stdout.write(`${text}\n`);
}
