import { readFileSync } from 'node:fs';
import { GovernancePipeline, type GovernedMessage, Policy, PolicyError, validatorsOf } from '@openclaw/core';
import type { Command } from 'commander';
import { type RemoteDefaults, RemoteError, withRemoteOptions } from '../http-client';

interface Explanation {
  allowed: boolean;
  policyVersion: number;
  grants: { via: string; roles: string[]; permission: string }[];
  roles: { role: string; via: string }[];
}

/** `openclaw policy apply | show | explain`. */
export function addPolicyCommands(program: Command, defaults: RemoteDefaults): void {
  const policy = program
    .command('policy')
    .description(
      "the policy of the cluster: RBAC roles and bindings, and governance validators (cluster:admin: admins of tenant 'default')",
    );

  withRemoteOptions(policy.command('apply'), defaults, { json: false })
    .description('check a policy file and apply it to every replica (within a second, no restart)')
    .argument('<file>', 'YAML policy file')
    .action(async (file: string, o: { url: string; apiKey?: string }) => {
      let text: string;
      try {
        text = readFileSync(file, 'utf8');
      } catch (error) {
        throw new Error(`cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
      }
      const result = (await send(o, '/v1/policy', 'PUT', text)) as { version: number };
      process.stdout.write(`applied ${file} as policy version ${result.version}\n`);
    });

  policy
    .command('test')
    .description(
      "run a policy file's governance validators on a message and print each verdict and its time; sends nothing",
    )
    .argument('<file>', 'YAML policy file')
    .argument('<message>', 'JSON file: {agent, task, data, direction?, tenant?, principal?, roles?, agents?}')
    .option('--json', 'print JSON')
    .action(async (file: string, messageFile: string, o: { json?: boolean }) => {
      const outcome = await testPolicy(readText(file), readText(messageFile), messageFile);
      if (o.json) return void process.stdout.write(`${JSON.stringify(outcome, null, 2)}\n`);
      const lines = outcome.verdicts.map(
        (v) =>
          `  tier ${v.tier}  ${v.validator.padEnd(24)} ${(v.dryRun ? `would ${v.decision}` : v.decision).padEnd(18)} ${v.ms.toFixed(2).padStart(8)} ms${v.reason ? `  ${v.reason}` : ''}`,
      );
      lines.unshift(`${outcome.decision.toUpperCase()}`);
      if (outcome.decision === 'allow' && JSON.stringify(outcome.data) !== JSON.stringify(outcome.input)) {
        lines.push(`  passes as: ${JSON.stringify(outcome.data)}`);
      }
      process.stdout.write(`${lines.join('\n')}\n`);
      if (outcome.decision !== 'allow') process.exitCode = 1;
    });

  withRemoteOptions(policy.command('show'), defaults, { json: false })
    .description('print the policy in force')
    .action(async (o: { url: string; apiKey?: string }) => {
      const stored = (await send(o, '/v1/policy', 'GET')) as { text: string; version: number };
      process.stdout.write(stored.version === 0 ? '# no policy applied: built-in roles only\n' : stored.text);
    });

  withRemoteOptions(policy.command('explain'), defaults)
    .description('say which binding and role allow a permission to a principal, or that none does')
    .argument('<principal>', 'e.g. apikey:0a1b2c3d4e5f or jwt:alice')
    .argument('<permission>', 'e.g. agent:invoke:billing-eu')
    .action(async (principal: string, permission: string, o: { url: string; apiKey?: string; json?: boolean }) => {
      const query = new URLSearchParams({ principal, permission });
      const e = (await send(o, `/v1/policy/explain?${query}`, 'GET')) as Explanation;
      if (o.json) return void process.stdout.write(`${JSON.stringify(e, null, 2)}\n`);
      const lines = [
        `${e.allowed ? 'ALLOWED' : 'DENIED'}: ${principal} ${permission} (policy version ${e.policyVersion})`,
      ];
      for (const g of e.grants)
        lines.push(`  via ${g.via}: role ${g.roles.join(' → inherits ')} grants '${g.permission}'`);
      if (!e.allowed) {
        lines.push(
          e.roles.length === 0
            ? '  no binding gives this principal a role (roles carried by its token are not known here)'
            : `  its roles (${e.roles.map((r) => `${r.role} via ${r.via}`).join(', ')}) do not grant it`,
        );
      }
      process.stdout.write(`${lines.join('\n')}\n`);
    });
}

/** A request with a non-JSON body (YAML) or none; errors as the gateway said them, with their details. */
async function send(
  o: { url: string; apiKey?: string },
  path: string,
  method: string,
  yaml?: string,
): Promise<unknown> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (o.apiKey) headers['x-api-key'] = o.apiKey;
  if (yaml !== undefined) headers['content-type'] = 'application/yaml';
  const url = new URL(path, o.url.replace(/^ws/, 'http'));
  let response: Response;
  try {
    response = await fetch(url, { method, headers, body: yaml, signal: AbortSignal.timeout(10_000) });
  } catch (error) {
    throw new RemoteError(
      `cannot reach the gateway at ${url.origin} (${(error as { cause?: { code?: string } }).cause?.code ?? 'error'})`,
      'UNAVAILABLE',
      0,
    );
  }
  const body = (await response.json().catch(() => null)) as { error?: { code?: string; message?: string } } | null;
  if (!response.ok)
    throw new RemoteError(
      body?.error?.message ?? `HTTP ${response.status}`,
      body?.error?.code ?? 'INTERNAL',
      response.status,
    );
  return body;
}

function readText(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    throw new Error(`cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
}

/**
 * Runs a policy's governance pipeline on one message, here, as a replica would (budgets and agents'
 * input schemas, which live in Redis, and validator agents, which need the cluster, are not run).
 */
async function testPolicy(policyText: string, messageText: string, messageFile: string) {
  let policy: Policy;
  try {
    policy = Policy.parse(policyText);
  } catch (error) {
    if (error instanceof PolicyError) throw new Error(error.message);
    throw error;
  }
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(messageText) as Record<string, unknown>;
  } catch {
    throw new Error(`${messageFile} is not JSON`);
  }
  if (typeof raw.agent !== 'string' || typeof raw.task !== 'string') {
    throw new Error(`${messageFile}: a message needs "agent" and "task" (strings), and usually "data"`);
  }
  const message: GovernedMessage = {
    direction: raw.direction === 'response' ? 'response' : 'request',
    tenant: typeof raw.tenant === 'string' ? raw.tenant : 'default',
    principal: typeof raw.principal === 'string' ? raw.principal : 'anonymous',
    roles: Array.isArray(raw.roles) ? raw.roles.map(String) : [],
    agent: raw.agent,
    task: raw.task,
    data: raw.data ?? null,
    agents: Array.isArray(raw.agents) ? raw.agents.map(String) : [],
  };
  const validators = validatorsOf(policy.document.governance).filter((v) => !v.name.startsWith('budget:'));
  const outcome = await new GovernancePipeline(validators).run(message);
  return { ...outcome, input: message.data };
}
