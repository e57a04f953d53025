import { writeFileSync } from 'node:fs';
import { type AuditEntry, type AuditReport, type AuditVerification, renderAuditReport } from '@openclaw/core';
import type { Command } from 'commander';
import { fetchJson, type RemoteDefaults, withRemoteOptions } from '../http-client';
import { TIME_FORMS, timeSpan } from '../time-options';

/** Entries per request of `openclaw audit export`. */
const EXPORT_PAGE = 10_000;

/** `openclaw audit tail | export | verify`. */
export function addAuditCommands(program: Command, defaults: RemoteDefaults): void {
  const audit = program
    .command('audit')
    .description(
      "read and verify the tamper-evident audit trail (a tenant's admin: its own; cluster:admin: every tenant)",
    );

  withRemoteOptions(audit.command('tail'), defaults)
    .description('the latest audit entries of a tenant')
    .option('--tenant <tenant>', 'tenant (default: your own; another needs cluster:admin)')
    .option('--limit <n>', 'how many entries', '50')
    .action(async (o: { tenant?: string; limit: string; url: string; apiKey?: string; json?: boolean }) => {
      const entries = (await fetchJson(o, `/v1/audit?${query({ tenant: o.tenant, limit: o.limit })}`)) as AuditEntry[];
      if (o.json) return void process.stdout.write(`${JSON.stringify(entries, null, 2)}\n`);
      for (const e of entries) {
        const details = e.details
          ? ` ${Object.entries(e.details)
              .map(([k, v]) => `${k}=${v}`)
              .join(' ')}`
          : '';
        process.stdout.write(
          `${new Date(e.ts).toISOString()} ${e.type} ${e.outcome} ${e.principal ?? '-'}${details}\n`,
        );
      }
    });

  withRemoteOptions(audit.command('export'), defaults, { json: false })
    .description('audit entries between two times, as JSON lines')
    .option('--tenant <tenant>', 'tenant (default: your own; another needs cluster:admin)')
    .requiredOption('--since <time>', `from: ${TIME_FORMS}`)
    .option('--until <time>', `to: ${TIME_FORMS} (default: now)`)
    .action(async (o: { tenant?: string; since: string; until?: string; url: string; apiKey?: string }) => {
      const span = timeSpan(o);
      const until = span.until ?? String(Date.now());
      // Page by page (10,000 entries each), each after the last entry of the one before.
      for (let after: string | undefined; ; ) {
        const entries = (await fetchJson(
          o,
          `/v1/audit?${query({ tenant: o.tenant, since: span.since, until, after, limit: String(EXPORT_PAGE) })}`,
        )) as AuditEntry[];
        // A gateway that does not know `after` answers the first page again: stop rather than loop.
        if (after !== undefined && entries.some((e) => e.id === after)) {
          throw new Error('the gateway does not page audit exports (it ignored `after`): upgrade it');
        }
        for (const e of entries) process.stdout.write(`${JSON.stringify(e)}\n`);
        if (entries.length < EXPORT_PAGE) break;
        after = entries.at(-1)!.id;
      }
    });

  addAuditReportCommand(audit, defaults);

  withRemoteOptions(audit.command('verify'), defaults)
    .description("check the hash chain of a tenant's trail (operators: of every tenant); exit 1 if broken")
    .option('--tenant <tenant>', 'tenant (default: yours; cluster admins: every tenant)')
    .action(async (o: { tenant?: string; url: string; apiKey?: string; json?: boolean }) => {
      const result = (await fetchJson(o, `/v1/audit/verify?${query({ tenant: o.tenant })}`)) as {
        ok: boolean;
        tenants: AuditVerification[];
      };
      if (o.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
      else {
        for (const t of result.tenants) {
          process.stdout.write(
            t.ok
              ? `${t.tenant}: ok, ${t.entries} entries${describeVerified(t)}\n`
              : `${t.tenant}: BROKEN at entry ${t.broken?.id}: ${t.broken?.reason} (${t.entries} entries read)\n`,
          );
        }
      }
      if (!result.ok) process.exitCode = 1;
    });
}

/** What a sound trail's verification adds to `<tenant>: ok, <n> entries`. */
function describeVerified(t: AuditVerification): string {
  let text = t.lastSeq === undefined ? '' : `, sequence ${t.firstSeq} to ${t.lastSeq}`;
  if (t.unsequenced) text += `, ${t.unsequenced} of them without sequence numbers (written by an earlier version)`;
  // A gateway of an earlier version does not say; only an explicit `false` means unkeyed.
  if (t.keyed === false) text += ' (no OPENCLAW_AUDIT_SECRET: this shows accidental damage only)';
  return text;
}

/** `openclaw audit report`, added to the `audit` command. */
export function addAuditReportCommand(audit: Command, defaults: RemoteDefaults): void {
  withRemoteOptions(audit.command('report'), defaults, { json: false })
    .description(
      'a compliance summary of a span: who called what, RBAC and governance denials, redactions, approvals, rate-limit refusals, admin changes, failed logins',
    )
    .option('--tenant <tenant>', 'tenant (default: your own; another needs cluster:admin)')
    .option('--since <time>', `from: ${TIME_FORMS} (default: 24 hours before --until)`)
    .option('--until <time>', `to: ${TIME_FORMS} (default: now)`)
    .option('--format <format>', 'md or json', 'md')
    .option('--output <file>', 'write to this file instead of standard output')
    .action(
      async (o: {
        tenant?: string;
        since?: string;
        until?: string;
        format: string;
        output?: string;
        url: string;
        apiKey?: string;
      }) => {
        if (o.format !== 'md' && o.format !== 'json')
          throw new Error(`--format: expected md or json, got ${JSON.stringify(o.format)}`);
        // Without --since the gateway reports the 24 hours before --until.
        const report = (await fetchJson(
          o,
          `/v1/audit/report?${query({ tenant: o.tenant, ...timeSpan(o) })}`,
        )) as AuditReport;
        const text = o.format === 'json' ? `${JSON.stringify(report, null, 2)}\n` : renderAuditReport(report);
        if (o.output) {
          writeFileSync(o.output, text);
          process.stderr.write(`wrote ${o.output}\n`);
        } else {
          process.stdout.write(text);
        }
      },
    );
}

function query(params: Record<string, string | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined) q.set(k, v);
  return q.toString();
}
