import type { AgentCacheSummary } from '@openclaw/protocol';
import type { Command } from 'commander';
import { fetchJson, type RemoteDefaults, type RemoteOptions, withRemoteOptions } from '../http-client';
import { renderTable } from '../table';

type Remote = RemoteOptions & { json?: boolean };

/**
 * `openclaw state get | set | list | delete | namespaces`, `openclaw memory read` and `openclaw cache
 * invalidate | stats`:
 * the tenant's shared state, memory threads and result cache, over the replica's HTTP API.
 */
export function addStateCommands(program: Command, defaults: RemoteDefaults): void {
  const state = program.command('state').description("the tenant's shared state: versioned keys in namespaces");
  const at = (namespace: string, key?: string) =>
    `/v1/state/${encodeURIComponent(namespace)}${key === undefined ? '' : `/${encodeURIComponent(key)}`}`;

  withRemoteOptions(state.command('get'), defaults)
    .description('print a key: its value (with --json: version, times too)')
    .argument('<namespace>')
    .argument('<key>')
    .action(async (namespace: string, key: string, o: Remote) => {
      const entry = (await fetchJson(o, at(namespace, key))) as { value: unknown; version: number };
      print(o.json ? JSON.stringify(entry, null, 2) : JSON.stringify(entry.value));
    });

  withRemoteOptions(state.command('set'), defaults)
    .description('write a key; prints its new version')
    .argument('<namespace>')
    .argument('<key>')
    .argument('<json>', 'the value, as JSON')
    .option('--ttl-ms <ms>', 'the key expires after this long')
    .option('--if-version <n>', 'write only if this is its version now (0: only if absent)')
    .action(
      async (namespace: string, key: string, json: string, o: Remote & { ttlMs?: string; ifVersion?: string }) => {
        const body: Record<string, unknown> = { value: parseJson(json, '<json>') };
        if (o.ttlMs !== undefined) body.ttlMs = wholeNumber(o.ttlMs, '--ttl-ms');
        if (o.ifVersion !== undefined) body.ifVersion = wholeNumber(o.ifVersion, '--if-version');
        const written = (await fetchJson(o, at(namespace, key), { method: 'PUT', body })) as { version: number };
        print(o.json ? JSON.stringify(written, null, 2) : `version ${written.version}`);
      },
    );

  withRemoteOptions(state.command('delete'), defaults)
    .description('delete a key')
    .argument('<namespace>')
    .argument('<key>')
    .option('--if-version <n>', 'delete only if this is its version now')
    .action(async (namespace: string, key: string, o: Remote & { ifVersion?: string }) => {
      const query = o.ifVersion === undefined ? '' : `?ifVersion=${wholeNumber(o.ifVersion, '--if-version')}`;
      const result = (await fetchJson(o, `${at(namespace, key)}${query}`, { method: 'DELETE' })) as {
        deleted: boolean;
      };
      print(o.json ? JSON.stringify(result, null, 2) : result.deleted ? 'deleted' : 'no such key');
    });

  withRemoteOptions(state.command('list'), defaults)
    .description('list the keys of a namespace (every page)')
    .argument('<namespace>')
    .option('--prefix <prefix>', 'only keys that start with it')
    .action(async (namespace: string, o: Remote & { prefix?: string }) => {
      const items: { key: string; version: number; updatedAt: number }[] = [];
      let cursor: string | undefined;
      do {
        const query = new URLSearchParams({ limit: '1000' });
        if (o.prefix !== undefined) query.set('prefix', o.prefix);
        if (cursor !== undefined) query.set('cursor', cursor);
        const page = (await fetchJson(o, `${at(namespace)}?${query}`)) as { items: typeof items; cursor?: string };
        items.push(...page.items);
        cursor = page.cursor ?? undefined;
      } while (cursor !== undefined);
      if (o.json) return print(JSON.stringify(items, null, 2));
      if (items.length === 0) return print(`no keys in ${namespace}`);
      print(
        renderTable(
          ['key', 'version', 'updated'],
          items.map((i) => [i.key, String(i.version), new Date(i.updatedAt).toISOString()]),
        ),
      );
    });

  withRemoteOptions(state.command('namespaces'), defaults)
    .description('list the namespaces you may read, with their key counts')
    .action(async (o: Remote) => {
      const { namespaces } = (await fetchJson(o, '/v1/state')) as {
        namespaces: { namespace: string; keys: number; since: number }[];
      };
      if (o.json) return print(JSON.stringify(namespaces, null, 2));
      if (namespaces.length === 0) return print('no namespaces');
      print(
        renderTable(
          ['namespace', 'keys'],
          namespaces.map((n) => [n.namespace, String(n.keys)]),
        ),
      );
    });

  const memory = program.command('memory').description("the tenant's memory: conversation threads");
  withRemoteOptions(memory.command('read'), defaults)
    .description('print a thread, oldest entry first')
    .argument('<thread>')
    .option('--after <seq>', 'only entries after this sequence number')
    .option('--last <n>', 'only the newest n')
    .action(async (thread: string, o: Remote & { after?: string; last?: string }) => {
      const query = new URLSearchParams();
      if (o.after !== undefined) query.set('after', String(wholeNumber(o.after, '--after')));
      if (o.last !== undefined) query.set('last', String(wholeNumber(o.last, '--last')));
      const result = (await fetchJson(o, `/v1/memory/${encodeURIComponent(thread)}?${query}`)) as {
        entries: { seq: number; role: string; content: unknown; at: number }[];
      };
      if (o.json) return print(JSON.stringify(result, null, 2));
      if (result.entries.length === 0) return print(`no entries in ${thread}`);
      for (const e of result.entries) {
        print(
          `${e.seq} ${new Date(e.at).toISOString()} ${e.role}: ${typeof e.content === 'string' ? e.content : JSON.stringify(e.content)}`,
        );
      }
    });

  const cache = program.command('cache').description('the result cache');
  withRemoteOptions(cache.command('invalidate'), defaults)
    .description("empty an agent's cached results (of one task, or all)")
    .requiredOption('--agent <name>', 'the agent')
    .option('--task <name>', 'only this task')
    .action(async (o: Remote & { agent: string; task?: string }) => {
      const body: Record<string, unknown> = { agent: o.agent };
      if (o.task !== undefined) body.task = o.task;
      const result = (await fetchJson(o, '/v1/cache/invalidate', { method: 'POST', body })) as { invalidated: number };
      print(o.json ? JSON.stringify(result, null, 2) : `${result.invalidated} cached results removed`);
    });

  withRemoteOptions(cache.command('stats'), defaults)
    .description("each agent's cache: policy, entries, hits, misses and agent calls saved")
    .action(async (o: Remote) => {
      const { agents } = (await fetchJson(o, '/v1/cache')) as { agents: AgentCacheSummary[] };
      if (o.json) return print(JSON.stringify(agents, null, 2));
      if (agents.length === 0) return print('no agent declares cacheable tasks');
      print(
        renderTable(
          ['agent', 'tasks', 'ttl ms', 'entries', 'hits', 'shared', 'misses', 'hit rate'],
          agents.map((a) => [
            a.agent,
            a.policy ? a.policy.tasks.join(',') : '-',
            a.policy ? String(a.policy.ttlMs) : '-',
            String(a.entries),
            String(a.hits),
            String(a.shared),
            String(a.misses),
            hitRate(a),
          ]),
        ),
      );
    });
}

/** Calls answered without the agent (hits and shared flights), of all cacheable calls. */
function hitRate(a: AgentCacheSummary): string {
  const saved = a.hits + a.shared;
  const total = saved + a.misses;
  return total === 0 ? '-' : `${((100 * saved) / total).toFixed(1)}%`;
}

function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new Error(`${what}: not valid JSON: ${text}`);
  }
}

function wholeNumber(text: string, flag: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${flag}: expected a whole number, got ${JSON.stringify(text)}`);
  return n;
}

function print(text: string): void {
  process.stdout.write(`${text}\n`);
}
