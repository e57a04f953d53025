import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { GatewayProcess } from './gateway-process';

const CLI = path.resolve(__dirname, '..', '..', 'packages', 'cli', 'dist', 'bin.js');

/** What a finished CLI run printed. */
export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `openclaw <args>` to completion (killed after `timeoutMs`). The environment has no OPENCLAW_* or REDIS_URL of the caller's. */
export function runCli(
  args: readonly string[],
  env: Record<string, string> = {},
  timeoutMs = 20_000,
): Promise<CliResult> {
  const clean = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith('OPENCLAW_') && k !== 'REDIS_URL'),
  );
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      env: { ...clean, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Creates a stored API key with `openclaw apikey create` and returns it; fails the test if the CLI does. */
export async function createApiKey(
  gatewayHttpUrl: string,
  adminKey: string,
  key: { name: string; role: string; tenant?: string; expires?: string },
): Promise<string> {
  const args = [
    'apikey',
    'create',
    '--name',
    key.name,
    '--role',
    key.role,
    '--url',
    gatewayHttpUrl,
    '--api-key',
    adminKey,
  ];
  if (key.tenant !== undefined) args.push('--tenant', key.tenant);
  if (key.expires !== undefined) args.push('--expires', key.expires);
  const result = await runCli(args);
  if (result.code !== 0) throw new Error(`openclaw apikey create failed (${result.code}): ${result.stderr}`);
  return result.stdout.trim();
}

/** One audit entry, as `openclaw audit tail --json` prints it. */
export interface AuditRecord {
  type: string;
  outcome: string;
  principal?: string;
  details?: Record<string, unknown>;
}

/** The latest audit entries of a tenant, read with `openclaw audit tail` (as an admin of tenant default). */
export async function auditTail(gatewayHttpUrl: string, adminKey: string, tenant: string): Promise<AuditRecord[]> {
  const result = await runCli([
    'audit',
    'tail',
    '--json',
    '--limit',
    '1000',
    '--tenant',
    tenant,
    '--url',
    gatewayHttpUrl,
    '--api-key',
    adminKey,
  ]);
  if (result.code !== 0) throw new Error(`openclaw audit tail failed (${result.code}): ${result.stderr}`);
  return JSON.parse(result.stdout) as AuditRecord[];
}

/** The processes of a cluster that take a policy in use: its replicas and its workers. */
export interface PolicyHolders {
  readonly gateways: readonly GatewayProcess[];
  readonly workers: readonly GatewayProcess[];
}

/**
 * Applies a policy (YAML text) with `openclaw policy apply` through the cluster's first replica, then
 * waits until every replica and worker still running uses it: each polls the policy version every
 * second, and logs `policy loaded` with the version it took (at log level info, the cluster's default).
 */
export async function applyPolicy(cluster: PolicyHolders, adminKey: string, yaml: string): Promise<void> {
  const [gateway] = cluster.gateways;
  if (!gateway) throw new Error('applyPolicy needs a replica to apply the policy through');
  const dir = mkdtempSync(path.join(tmpdir(), 'openclaw-policy-'));
  const file = path.join(dir, 'policy.yaml');
  writeFileSync(file, yaml);
  let result: CliResult;
  try {
    result = await runCli(['policy', 'apply', file, '--url', gateway.httpUrl, '--api-key', adminKey]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  if (result.code !== 0) throw new Error(`policy apply failed: ${result.stderr}`);
  const version = Number(/ as policy version (\d+)$/m.exec(result.stdout)?.[1]);
  if (!Number.isInteger(version)) throw new Error(`policy apply printed no version: ${result.stdout}`);
  const holders = [...cluster.gateways, ...cluster.workers].filter((p) => p.isRunning);
  await Promise.all(
    holders.map((p) =>
      p.waitForLog((r) => r.msg === 'policy loaded' && Number(r.version) >= version, {
        what: `${p.replicaId} to use policy version ${version}`,
        timeoutMs: 10_000,
      }),
    ),
  );
}
