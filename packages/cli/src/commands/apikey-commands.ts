import type { ApiKeyInfo } from '@openclaw/core';
import { parseTimeSpec } from '@openclaw/protocol';
import type { Command } from 'commander';
import { fetchJson, type RemoteDefaults, withRemoteOptions } from '../http-client';
import { renderTable } from '../table';

/**
 * `--expires`: a duration ahead (`90d`, `12h`, `30m`, `45s`), an ISO time or epoch ms, read by the
 * shared {@link parseTimeSpec}. @returns epoch ms.
 */
export function parseExpires(text: string, now = Date.now()): number {
  const at = parseTimeSpec(text, '--expires', { now, direction: 'future' });
  if (at <= now) throw new Error(`--expires: ${text} is in the past`);
  return at;
}

/** `openclaw apikey create | list | revoke`. */
export function addApiKeyCommands(program: Command, defaults: RemoteDefaults): void {
  const apikey = program
    .command('apikey')
    .description(
      "manage stored API keys: a tenant's admin manages its own tenant's keys; other tenants' keys need cluster:admin (admins of tenant 'default')",
    );

  withRemoteOptions(apikey.command('create'), defaults)
    .description('create an API key; it is printed once and never shown again')
    .requiredOption('--name <name>', 'what the key is for, e.g. billing-agent')
    .requiredOption('--role <role>', 'admin, agent, caller or operator')
    .option('--tenant <tenant>', "the key's tenant (default: your own; another needs cluster:admin)")
    .option('--expires <when>', 'a duration ahead (90d, 12h), an ISO time or epoch ms; default: never')
    .action(
      async (o: {
        name: string;
        role: string;
        tenant?: string;
        expires?: string;
        url: string;
        apiKey?: string;
        json?: boolean;
      }) => {
        const body: Record<string, unknown> = { name: o.name, role: o.role };
        if (o.tenant !== undefined) body.tenant = o.tenant;
        if (o.expires !== undefined) body.expiresAt = parseExpires(o.expires);
        const created = (await fetchJson(o, '/v1/apikeys', { method: 'POST', body })) as ApiKeyInfo & { key: string };
        if (o.json) return void process.stdout.write(`${JSON.stringify(created, null, 2)}\n`);
        process.stdout.write(`${created.key}\n`);
        process.stderr.write(
          `created API key ${created.id} (${created.name}, role ${created.role}, tenant ${created.tenant}` +
            `${created.expiresAt ? `, expires ${new Date(created.expiresAt).toISOString()}` : ''}); store it now: it is not shown again\n`,
        );
      },
    );

  withRemoteOptions(apikey.command('list'), defaults)
    .description("list API keys (never the keys themselves): your tenant's, or every tenant's for cluster admins")
    .option('--tenant <tenant>', "only this tenant's keys (another than your own needs cluster:admin)")
    .action(async (o: { url: string; apiKey?: string; json?: boolean; tenant?: string }) => {
      const query = o.tenant === undefined ? '' : `?tenant=${encodeURIComponent(o.tenant)}`;
      const keys = (await fetchJson(o, `/v1/apikeys${query}`)) as ApiKeyInfo[];
      if (o.json) return void process.stdout.write(`${JSON.stringify(keys, null, 2)}\n`);
      if (keys.length === 0) return void process.stdout.write('no API keys\n');
      const when = (ms?: number) => (ms === undefined ? '-' : new Date(ms).toISOString());
      process.stdout.write(
        `${renderTable(
          ['id', 'name', 'role', 'tenant', 'status', 'created', 'expires'],
          keys.map((k) => [k.id, k.name, k.role, k.tenant, k.status, when(k.createdAt), when(k.expiresAt)]),
        )}\n`,
      );
    });

  withRemoteOptions(apikey.command('revoke'), defaults, { json: false })
    .description('revoke an API key: it stops working at once, and its live connections are closed (1008)')
    .argument('<id>', 'the key id, from `apikey list`')
    .action(async (id: string, o: { url: string; apiKey?: string }) => {
      await fetchJson(o, `/v1/apikeys/${encodeURIComponent(id)}`, { method: 'DELETE' });
      process.stdout.write(`revoked API key ${id}\n`);
    });
}
