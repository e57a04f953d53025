import type { ApprovalRecord } from '@openclaw/protocol';
import type { Command } from 'commander';
import { fetchJson, type RemoteDefaults, type RemoteOptions, withRemoteOptions } from '../http-client';
import { renderTable } from '../table';

type Remote = RemoteOptions & { json?: boolean };

/** `openclaw approvals list | show | approve | reject`: messages waiting for a human's approval. */
export function addApprovalCommands(program: Command, defaults: RemoteDefaults): void {
  const approvals = program
    .command('approvals')
    .description('messages that governance parked for a human: list, show, approve, reject');

  withRemoteOptions(approvals.command('list'), defaults)
    .description('list approvals of your tenant (pending ones, soonest to expire first, unless --status)')
    .option('--status <status>', 'pending | approved | rejected | expired | consumed | all', 'pending')
    .option('--limit <n>', 'at most this many', '50')
    .action(async (o: Remote & { status: string; limit: string }) => {
      const query = new URLSearchParams({ status: o.status, limit: o.limit });
      const list = (await fetchJson(o, `/v1/approvals?${query}`)) as ApprovalRecord[];
      if (o.json) return print(JSON.stringify(list, null, 2));
      if (list.length === 0) return print(o.status === 'all' ? 'no approvals' : `no ${o.status} approvals`);
      print(
        renderTable(
          ['approval', 'status', 'agent / task', 'caller', 'validator', 'approvals', 'expires', 'reason'],
          list.map((a) => [
            a.approvalId,
            a.status,
            `${a.agent} / ${a.task}${a.direction === 'response' ? ' (output)' : ''}`,
            a.requestedBy,
            a.validator,
            `${a.approvals}/${a.required.approvers}${a.required.role ? ` ${a.required.role}` : ''}`,
            new Date(a.expiresAt).toISOString(),
            truncate(a.reason ?? '-'),
          ]),
        ),
      );
    });

  withRemoteOptions(approvals.command('show'), defaults)
    .description('show one approval: the message it holds, who must decide, and the decisions so far')
    .argument('<approvalId>')
    .action(async (approvalId: string, o: Remote) => {
      const a = (await fetchJson(o, `/v1/approvals/${encodeURIComponent(approvalId)}`)) as ApprovalRecord;
      if (o.json) return print(JSON.stringify(a, null, 2));
      print(describe(a));
    });

  for (const decision of ['approve', 'reject'] as const) {
    withRemoteOptions(approvals.command(decision), defaults)
      .description(
        decision === 'approve'
          ? 'approve a pending approval (it goes through once enough approvers approved)'
          : 'reject a pending approval (the message is refused)',
      )
      .argument('<approvalId>')
      .option('--reason <text>', 'why (recorded in the audit trail and shown to the caller)')
      .action(async (approvalId: string, o: Remote & { reason?: string }) => {
        const body: Record<string, unknown> = {};
        if (o.reason !== undefined) body.reason = o.reason;
        const a = (await fetchJson(o, `/v1/approvals/${encodeURIComponent(approvalId)}/${decision}`, {
          method: 'POST',
          body,
        })) as ApprovalRecord;
        if (o.json) return print(JSON.stringify(a, null, 2));
        const progress =
          a.status === 'pending' ? `; ${a.approvals} of ${a.required.approvers} approvals, waiting for more` : '';
        print(`${a.approvalId} ${a.status}${progress}`);
      });
  }
}

function describe(a: ApprovalRecord): string {
  const lines = [
    `approval  ${a.approvalId}`,
    `status    ${a.status}`,
    `message   ${a.direction} ${a.agent} / ${a.task} (task ${a.taskId}, ${a.mode})`,
    `caller    ${a.requestedBy}`,
    `validator ${a.validator}${a.reason ? `: ${a.reason}` : ''}`,
    `needs     ${a.required.approvers} approver(s)${a.required.role ? ` with role ${a.required.role}` : ''}${
      a.required.principals ? ` among ${a.required.principals.join(', ')}` : ''
    }`,
    `created   ${new Date(a.createdAt).toISOString()}`,
    `expires   ${new Date(a.expiresAt).toISOString()}`,
    `hash      ${a.hash}`,
  ];
  for (const d of a.decisions) {
    lines.push(
      `decision  ${d.decision} by ${d.principal} at ${new Date(d.at).toISOString()}${d.reason ? `: ${d.reason}` : ''}`,
    );
  }
  lines.push(`data      ${JSON.stringify(a.data, null, 2).replace(/\n/g, '\n          ')}`);
  return lines.join('\n');
}

function truncate(text: string): string {
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

function print(text: string): void {
  process.stdout.write(`${text}\n`);
}
