import type { AgentInfo } from '@openclaw/protocol';
import type { Command } from 'commander';
import { fetchJson, type RemoteDefaults, withRemoteOptions } from '../http-client';
import { renderTable } from '../table';

/** `openclaw agent register | list | remove`. */
export function addAgentCommands(program: Command, defaults: RemoteDefaults): void {
  const agent = program.command('agent').description('register and list agents');

  withRemoteOptions(agent.command('register'), defaults, { urlFlag: '--gateway' })
    .description(
      'register an HTTP agent (the gateway POSTs each task to its URL) or an outside MCP server (its tools become the tasks)',
    )
    .requiredOption('--name <name>', 'agent name (^[a-z0-9][a-z0-9._-]{0,62}$)')
    .option('--url <url>', "the agent's HTTP endpoint, e.g. http://localhost:8000")
    .option('--mcp <url>', "an MCP server's Streamable HTTP endpoint, e.g. http://localhost:9000/mcp")
    .option('--a2a <url>', "an A2A agent's Agent Card, e.g. http://localhost:9100/.well-known/agent-card.json")
    .option('--tasks <tasks>', 'comma-separated tasks it handles (default: any)')
    .option('--timeout-ms <ms>', 'its own deadline per task, if shorter than the caller’s')
    .option('--cache-tasks <tasks>', "comma-separated tasks whose outputs the gateway may cache ('*': all)")
    .option('--cache-ttl-ms <ms>', 'how long a cached output is used (with --cache-tasks)')
    .action(
      async (
        o: {
          name: string;
          url?: string;
          mcp?: string;
          a2a?: string;
          tasks?: string;
          timeoutMs?: string;
          cacheTasks?: string;
          cacheTtlMs?: string;
          gateway: string;
          apiKey?: string;
          json?: boolean;
        },
        command: Command,
      ) => {
        const given = [o.url, o.mcp, o.a2a].filter((u) => u !== undefined);
        if (given.length !== 1) {
          // A usage error, as commander's own: exit 2, with the help hint.
          command.error(
            'error: give the agent one of --url <url> (an HTTP endpoint), --mcp <url> (an MCP server) or --a2a <url> (an A2A Agent Card)',
          );
        }
        const url = o.url ?? (o.mcp !== undefined ? `mcp+${o.mcp}` : `a2a+${o.a2a}`);
        const body: Record<string, unknown> = { name: o.name, url };
        if (o.tasks) body.tasks = splitList(o.tasks);
        if (o.timeoutMs !== undefined) {
          const ms = Number(o.timeoutMs);
          if (!Number.isInteger(ms) || ms < 1)
            throw new Error(`--timeout-ms: expected a positive integer, got ${JSON.stringify(o.timeoutMs)}`);
          body.timeoutMs = ms;
        }
        if ((o.cacheTasks === undefined) !== (o.cacheTtlMs === undefined)) {
          throw new Error('--cache-tasks and --cache-ttl-ms go together: which tasks, and for how long');
        }
        if (o.cacheTasks !== undefined && o.cacheTtlMs !== undefined) {
          const ttlMs = Number(o.cacheTtlMs);
          if (!Number.isInteger(ttlMs) || ttlMs < 1)
            throw new Error(`--cache-ttl-ms: expected a positive integer, got ${JSON.stringify(o.cacheTtlMs)}`);
          body.cache = { tasks: splitList(o.cacheTasks), ttlMs };
        }
        const result = (await fetchJson({ url: o.gateway, apiKey: o.apiKey }, '/v1/agents', {
          method: 'POST',
          body,
        })) as {
          name: string;
          url: string;
          tasks: string[];
          protocol?: string;
        };
        const what =
          result.protocol === 'mcp'
            ? `MCP server as agent '${result.name}' -> ${o.mcp} (tools: ${result.tasks.join(', ')})`
            : result.protocol === 'a2a'
              ? `A2A agent '${result.name}' -> ${result.url.slice('a2a+'.length)} (skills: ${result.tasks.join(', ')})`
              : `HTTP agent '${result.name}' -> ${result.url}`;
        process.stdout.write(o.json ? `${JSON.stringify(result, null, 2)}\n` : `registered ${what}\n`);
      },
    );

  withRemoteOptions(agent.command('remove'), defaults, { urlFlag: '--gateway', json: false })
    .description('remove an HTTP agent')
    .requiredOption('--name <name>', 'agent name')
    .action(async (o: { name: string; gateway: string; apiKey?: string }) => {
      await fetchJson({ url: o.gateway, apiKey: o.apiKey }, `/v1/agents/${encodeURIComponent(o.name)}`, {
        method: 'DELETE',
      });
      process.stdout.write(`removed HTTP agent '${o.name}'\n`);
    });

  withRemoteOptions(agent.command('list'), defaults, { urlFlag: '--gateway' })
    .description('list the agents of the cluster')
    .action(async (o: { gateway: string; apiKey?: string; json?: boolean }) => {
      const agents = (await fetchJson({ url: o.gateway, apiKey: o.apiKey }, '/v1/agents')) as AgentInfo[];
      if (o.json) return void process.stdout.write(`${JSON.stringify(agents, null, 2)}\n`);
      if (agents.length === 0) return void process.stdout.write('no agents registered\n');
      process.stdout.write(
        `${renderTable(
          ['agent', 'kind', 'instances', 'capacity', 'in flight', 'tasks', 'url'],
          agents.map((a) => [
            a.name,
            a.kind,
            a.instances,
            a.capacity ?? '-',
            a.inFlight ?? '-',
            a.tasks.join(','),
            a.url ?? '',
          ]),
        )}\n`,
      );
    });
}

function splitList(text: string): string[] {
  return text
    .split(',')
    .map((t) => t.trim())
    .filter(Boolean);
}
