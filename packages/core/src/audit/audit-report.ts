import type { AuditEntry } from './audit-entry';

/** A compliance summary of a span of a tenant's audit trail. */
export interface AuditReport {
  tenant: string;
  since: string;
  until: string;
  entries: number;
  /** Who called what: principal, agent, calls, and outcomes other than ok. */
  calls: { principal: string; agent: string; calls: number; failures: Record<string, number> }[];
  /** Permissions refused (RBAC): the action or permission, and why. */
  denials: { at: string; principal: string; what: string; reason: string }[];
  /** Calls a governance validator refused (`governance.denied`). */
  governanceDenials: GovernanceEvent[];
  /** Calls or outputs a governance validator masked (`governance.redacted`). */
  redactions: GovernanceEvent[];
  /** Approvals by what happened to them. */
  approvals: { requested: number; approved: number; rejected: number; expired: number };
  /** Calls refused by a cluster-wide rate limit, by principal. */
  rateLimited: { principal: string; count: number }[];
  /** Key, agent and policy changes, in order. */
  adminChanges: { at: string; principal: string; type: string; subject: string }[];
  /** Failed authentications by address (from the `_unauthenticated` trail, when included). */
  failedAuthentications: { address: string; count: number }[];
  connections: { principal: string; opened: number }[];
}

/** One governance verdict of the report. */
export interface GovernanceEvent {
  at: string;
  principal: string;
  validator: string;
  agent: string;
  task: string;
  reason: string;
}

const ADMIN_TYPES = new Set([
  'apikey.created',
  'apikey.revoked',
  'http-agent.registered',
  'http-agent.removed',
  'policy.applied',
]);

/** Summarises entries (oldest first) of one tenant, plus optional failed authentications. */
export function summarizeAudit(
  tenant: string,
  span: { since: number; until: number },
  entries: readonly AuditEntry[],
  unauthenticated: readonly AuditEntry[] = [],
): AuditReport {
  const calls = new Map<
    string,
    { principal: string; agent: string; calls: number; failures: Record<string, number> }
  >();
  const connections = new Map<string, number>();
  const denials: AuditReport['denials'] = [];
  const adminChanges: AuditReport['adminChanges'] = [];
  const governanceDenials: GovernanceEvent[] = [];
  const redactions: GovernanceEvent[] = [];
  const approvals: AuditReport['approvals'] = { requested: 0, approved: 0, rejected: 0, expired: 0 };
  const rateLimited = new Map<string, number>();
  const at = (e: AuditEntry) => new Date(e.ts).toISOString();
  const verdict = (e: AuditEntry): GovernanceEvent => ({
    at: at(e),
    principal: e.principal ?? '-',
    validator: String(e.details?.validator ?? '-'),
    agent: String(e.details?.agent ?? '-'),
    task: String(e.details?.task ?? '-'),
    reason: String(e.details?.reason ?? '-'),
  });
  for (const e of entries) {
    const principal = e.principal ?? '-';
    if ((e.type === 'task.routed' || e.type === 'task.submitted') && e.outcome === 'RATE_LIMITED') {
      rateLimited.set(principal, (rateLimited.get(principal) ?? 0) + 1);
    }
    if (e.type === 'governance.denied') governanceDenials.push(verdict(e));
    else if (e.type === 'governance.redacted') redactions.push(verdict(e));
    else if (e.type === 'approval.requested') approvals.requested += 1;
    else if (e.type === 'approval.approved') approvals.approved += 1;
    else if (e.type === 'approval.rejected') approvals.rejected += 1;
    else if (e.type === 'approval.expired') approvals.expired += 1;
    else if (e.type === 'task.routed') {
      const agent = String(e.details?.agent ?? '-');
      const key = `${principal}\n${agent}`;
      // Outcomes include agents' own error codes: counted in an object without a prototype.
      const row = calls.get(key) ?? { principal, agent, calls: 0, failures: Object.create(null) };
      row.calls += 1;
      if (e.outcome !== 'ok') row.failures[e.outcome] = (row.failures[e.outcome] ?? 0) + 1;
      calls.set(key, row);
    } else if (e.type === 'authz.denied') {
      const what = String(e.details?.permission ?? e.details?.action ?? '-');
      denials.push({ at: at(e), principal, what, reason: String(e.details?.reason ?? 'missing permission') });
    } else if (ADMIN_TYPES.has(e.type)) {
      const subject = String(e.details?.apiKey ?? e.details?.agent ?? e.details?.version ?? '-');
      adminChanges.push({ at: at(e), principal, type: e.type, subject });
    } else if (e.type === 'connection.opened') {
      connections.set(principal, (connections.get(principal) ?? 0) + 1);
    }
  }
  const failed = new Map<string, number>();
  for (const e of unauthenticated) {
    if (e.type !== 'auth.failed') continue;
    const address = String(e.details?.address ?? '-');
    failed.set(address, (failed.get(address) ?? 0) + 1);
  }
  return {
    tenant,
    since: new Date(span.since).toISOString(),
    until: new Date(span.until).toISOString(),
    entries: entries.length,
    calls: [...calls.values()].sort((a, b) => b.calls - a.calls || a.principal.localeCompare(b.principal)),
    denials,
    governanceDenials,
    redactions,
    approvals,
    rateLimited: [...rateLimited]
      .map(([principal, count]) => ({ principal, count }))
      .sort((a, b) => b.count - a.count || a.principal.localeCompare(b.principal)),
    adminChanges,
    failedAuthentications: [...failed]
      .map(([address, count]) => ({ address, count }))
      .sort((a, b) => b.count - a.count),
    connections: [...connections]
      .map(([principal, opened]) => ({ principal, opened }))
      .sort((a, b) => b.opened - a.opened),
  };
}

/** A Markdown table, or `_none_`. */
function table(header: string[], rows: (string | number)[][]): string {
  return rows.length === 0
    ? '_none_\n'
    : `| ${header.join(' | ')} |\n|${header.map(() => '---').join('|')}|\n${rows.map((row) => `| ${row.map((c) => String(c).replaceAll('|', '\\|')).join(' | ')} |`).join('\n')}\n`;
}

function governanceTable(events: readonly GovernanceEvent[]): string {
  return table(
    ['when', 'principal', 'validator', 'agent', 'task', 'reason'],
    events.map((g) => [g.at, g.principal, g.validator, g.agent, g.task, g.reason]),
  );
}

/** The report as Markdown. */
export function renderAuditReport(r: AuditReport): string {
  return [
    `# Audit report: tenant ${r.tenant}`,
    '',
    `From ${r.since} to ${r.until}: ${r.entries} entries.`,
    '',
    '## Who called what',
    '',
    table(
      ['principal', 'agent', 'calls', 'failed'],
      r.calls.map((c) => [
        c.principal,
        c.agent,
        c.calls,
        Object.entries(c.failures)
          .map(([k, v]) => `${k} ${v}`)
          .join(', ') || '0',
      ]),
    ),
    '## Permission denials (RBAC)',
    '',
    table(
      ['when', 'principal', 'what', 'reason'],
      r.denials.map((d) => [d.at, d.principal, d.what, d.reason]),
    ),
    '## Governance denials',
    '',
    governanceTable(r.governanceDenials),
    '## Redactions',
    '',
    governanceTable(r.redactions),
    '## Approvals',
    '',
    table(
      ['requested', 'approved', 'rejected', 'expired'],
      [[r.approvals.requested, r.approvals.approved, r.approvals.rejected, r.approvals.expired]],
    ),
    '## Rate-limit refusals',
    '',
    table(
      ['principal', 'calls refused'],
      r.rateLimited.map((x) => [x.principal, x.count]),
    ),
    '## Administrative changes',
    '',
    table(
      ['when', 'principal', 'change', 'subject'],
      r.adminChanges.map((c) => [c.at, c.principal, c.type, c.subject]),
    ),
    '## Failed authentications',
    '',
    table(
      ['address', 'count'],
      r.failedAuthentications.map((f) => [f.address, f.count]),
    ),
    '## Connections opened',
    '',
    table(
      ['principal', 'connections'],
      r.connections.map((c) => [c.principal, c.opened]),
    ),
  ].join('\n');
}
