import type { Command } from 'commander';
import { fetchJson, type RemoteDefaults, type RemoteOptions, withRemoteOptions } from '../http-client';
import { renderTable } from '../table';
import { TIME_FORMS, timeSpan } from '../time-options';

interface AuditEntry {
  type: string;
  outcome?: string;
  details?: { validator?: string; tier?: number; ms?: number; reason?: string | null };
}

interface Row {
  validator: string;
  tier: number;
  denied: number;
  redacted: number;
  approvals: number;
  wouldDeny: number;
  failed: number;
  totalMs: number;
  maxMs: number;
  entries: number;
  reasons: Map<string, number>;
}

/** `openclaw governance report`: what the validators decided over a window, from the audit trail. */
export function addGovernanceCommands(program: Command, defaults: RemoteDefaults): void {
  const governance = program.command('governance').description('what the governance validators decide');
  withRemoteOptions(governance.command('report'), defaults)
    .description(
      'verdicts per validator over a window (denied, redacted, would have denied, failed), from the audit trail',
    )
    .option('--since <time>', `from: ${TIME_FORMS} (default: 1h)`)
    .option('--until <time>', `to: ${TIME_FORMS} (default: now)`)
    .option('--tenant <tenant>', 'the tenant (default: your own)')
    .action(async (o: RemoteOptions & { since?: string; until?: string; tenant?: string; json?: boolean }) => {
      const now = Date.now();
      const span = timeSpan({ since: o.since ?? '1h', until: o.until }, now);
      const query = new URLSearchParams({ since: span.since!, until: span.until ?? String(now) });
      if (o.tenant) query.set('tenant', o.tenant);
      const entries = (await fetchJson(o, `/v1/audit?${query}`)) as AuditEntry[];
      const rows = new Map<string, Row>();
      for (const e of entries) {
        if (!e.type.startsWith('governance.') || !e.details?.validator) continue;
        const name = e.details.validator;
        const row = rows.get(name) ?? {
          validator: name,
          tier: e.details.tier ?? 0,
          denied: 0,
          redacted: 0,
          approvals: 0,
          wouldDeny: 0,
          failed: 0,
          totalMs: 0,
          maxMs: 0,
          entries: 0,
          reasons: new Map<string, number>(),
        };
        row.entries += 1;
        row.totalMs += e.details.ms ?? 0;
        row.maxMs = Math.max(row.maxMs, e.details.ms ?? 0);
        if (e.type === 'governance.denied') row.denied += 1;
        else if (e.type === 'governance.redacted') row.redacted += 1;
        else if (e.type === 'governance.approval-required') row.approvals += 1;
        else if (e.type === 'governance.would-deny') row.wouldDeny += 1;
        else if (e.type === 'governance.validator-failed') row.failed += 1;
        const reason = e.details.reason ?? '';
        if (reason) row.reasons.set(reason, (row.reasons.get(reason) ?? 0) + 1);
        rows.set(name, row);
      }
      const sorted = [...rows.values()].sort((a, b) => a.tier - b.tier || a.validator.localeCompare(b.validator));
      if (o.json) {
        const out = sorted.map(({ reasons, ...row }) => ({
          ...row,
          meanMs: row.entries === 0 ? 0 : row.totalMs / row.entries,
          topReasons: [...reasons]
            .sort((a, b) => b[1] - a[1])
            .slice(0, 3)
            .map(([reason, count]) => ({ reason, count })),
        }));
        return void process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
      }
      if (sorted.length === 0) return void process.stdout.write('no governance verdicts in this window\n');
      process.stdout.write(
        `${renderTable(
          [
            'tier',
            'validator',
            'denied',
            'redacted',
            'approval',
            'would deny',
            'failed',
            'mean ms',
            'max ms',
            'top reason',
          ],
          sorted.map((r) => [
            r.tier,
            r.validator,
            r.denied,
            r.redacted,
            r.approvals,
            r.wouldDeny,
            r.failed,
            (r.totalMs / Math.max(1, r.entries)).toFixed(2),
            r.maxMs.toFixed(2),
            [...r.reasons].sort((a, b) => b[1] - a[1])[0]?.[0] ?? '',
          ]),
        )}\n`,
      );
    });
}
