import type { AuditEntry } from './audit-entry';
import { renderAuditReport, summarizeAudit } from './audit-report';

const entry = (n: number, e: Partial<AuditEntry>): AuditEntry => ({
  id: `${n}-0`,
  ts: Date.UTC(2026, 0, 1, 0, 0, n),
  tenant: 'acme',
  prev: '',
  hash: '',
  type: 'x',
  outcome: 'ok',
  ...e,
});

describe('summarizeAudit', () => {
  it('counts calls by principal and agent, and lists denials, admin changes and failed logins', () => {
    const report = summarizeAudit(
      'acme',
      { since: Date.UTC(2026, 0, 1), until: Date.UTC(2026, 0, 2) },
      [
        entry(1, { type: 'connection.opened', principal: 'apikey:a' }),
        entry(2, { type: 'task.routed', principal: 'apikey:a', details: { agent: 'billing' } }),
        entry(3, { type: 'task.routed', principal: 'apikey:a', outcome: 'TIMEOUT', details: { agent: 'billing' } }),
        entry(4, {
          type: 'authz.denied',
          principal: 'apikey:b',
          outcome: 'FORBIDDEN',
          details: { action: 'register', reason: "missing permission 'agent:register:x'" },
        }),
        entry(5, { type: 'apikey.revoked', principal: 'apikey:root', details: { apiKey: 'b' } }),
      ],
      [entry(6, { type: 'auth.failed', outcome: 'UNAUTHENTICATED', details: { address: '10.0.0.9' } })],
    );
    expect(report.calls).toEqual([{ principal: 'apikey:a', agent: 'billing', calls: 2, failures: { TIMEOUT: 1 } }]);
    expect(report.denials).toEqual([
      {
        at: '2026-01-01T00:00:04.000Z',
        principal: 'apikey:b',
        what: 'register',
        reason: "missing permission 'agent:register:x'",
      },
    ]);
    expect(report.adminChanges).toEqual([
      { at: '2026-01-01T00:00:05.000Z', principal: 'apikey:root', type: 'apikey.revoked', subject: 'b' },
    ]);
    expect(report.failedAuthentications).toEqual([{ address: '10.0.0.9', count: 1 }]);
    const md = renderAuditReport(report);
    expect(md).toContain('| apikey:a | billing | 2 | TIMEOUT 1 |');
    expect(md).toContain('| 2026-01-01T00:00:05.000Z | apikey:root | apikey.revoked | b |');
  });
});

describe('summarizeAudit: governance, approvals and rate limits', () => {
  it('counts governance denials, redactions, approvals and rate-limit refusals, each in its own section', () => {
    const governance = (n: number, type: string, validator: string) =>
      entry(n, {
        type,
        principal: 'apikey:c',
        outcome: type === 'governance.denied' ? 'deny' : 'redact',
        details: { validator, agent: 'billing', task: 'charge', reason: `${validator} said so` },
      });
    const report = summarizeAudit('acme', { since: Date.UTC(2026, 0, 1), until: Date.UTC(2026, 0, 2) }, [
      governance(1, 'governance.denied', 'rule:no-refunds'),
      governance(2, 'governance.redacted', 'pii'),
      entry(3, { type: 'approval.requested', outcome: 'pending' }),
      entry(4, { type: 'approval.requested', outcome: 'pending' }),
      entry(5, { type: 'approval.requested', outcome: 'pending' }),
      entry(6, { type: 'approval.approved', outcome: 'approved' }),
      entry(7, { type: 'approval.rejected', outcome: 'rejected' }),
      entry(8, { type: 'approval.expired', outcome: 'expired' }),
      entry(9, { type: 'task.routed', principal: 'apikey:c', outcome: 'RATE_LIMITED', details: { agent: 'billing' } }),
      entry(10, { type: 'task.routed', principal: 'apikey:c', outcome: 'RATE_LIMITED', details: { agent: 'billing' } }),
      entry(11, { type: 'task.submitted', principal: 'apikey:d', outcome: 'RATE_LIMITED', details: {} }),
    ]);
    expect(report.governanceDenials).toEqual([
      {
        at: '2026-01-01T00:00:01.000Z',
        principal: 'apikey:c',
        validator: 'rule:no-refunds',
        agent: 'billing',
        task: 'charge',
        reason: 'rule:no-refunds said so',
      },
    ]);
    expect(report.redactions).toHaveLength(1);
    expect(report.redactions[0]).toMatchObject({ validator: 'pii' });
    expect(report.approvals).toEqual({ requested: 3, approved: 1, rejected: 1, expired: 1 });
    expect(report.rateLimited).toEqual([
      { principal: 'apikey:c', count: 2 },
      { principal: 'apikey:d', count: 1 },
    ]);
    expect(report.denials).toEqual([]);
    const md = renderAuditReport(report);
    expect(md).toContain(
      '## Governance denials\n\n| when | principal | validator | agent | task | reason |\n|---|---|---|---|---|---|\n| 2026-01-01T00:00:01.000Z | apikey:c | rule:no-refunds | billing | charge | rule:no-refunds said so |',
    );
    expect(md).toContain('## Redactions\n\n| when |');
    expect(md).toContain(
      '## Approvals\n\n| requested | approved | rejected | expired |\n|---|---|---|---|\n| 3 | 1 | 1 | 1 |',
    );
    expect(md).toContain(
      '## Rate-limit refusals\n\n| principal | calls refused |\n|---|---|\n| apikey:c | 2 |\n| apikey:d | 1 |',
    );
    expect(md).toContain('## Permission denials (RBAC)\n\n_none_');
  });
});
