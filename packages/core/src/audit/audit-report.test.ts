import type { AuditEntry } from './audit-log';
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
