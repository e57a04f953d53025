import { GatewayError } from '@openclaw/core';
import type { Handler, HandlerContext } from './handler-context';
import type { Session } from './session';
import { MAX_STATE_WATCHES_PER_SESSION } from './state-watches';

type StateAction =
  | 'state.get'
  | 'state.set'
  | 'state.delete'
  | 'state.list'
  | 'state.watch'
  | 'state.unwatch'
  | 'memory.append'
  | 'memory.read'
  | 'memory.clear';

/** Refuses a principal without `state:<access>:<namespace>` (wildcards as everywhere in the policy). */
function requireState(ctx: HandlerContext, session: Session, access: 'read' | 'write', namespace: string): void {
  ctx.authorizer.require(session.principal, `state:${access}:${namespace}`);
}

/** Refuses a principal without `memory:<access>:<thread>`. */
function requireMemory(ctx: HandlerContext, session: Session, access: 'read' | 'write', thread: string): void {
  ctx.authorizer.require(session.principal, `memory:${access}:${thread}`);
}

/** Audits a change of a key (reads are not audited; their permission refusals are). */
function auditChange(
  ctx: HandlerContext,
  session: Session,
  details: Record<string, string | number | boolean | null>,
): void {
  ctx.audit.record(session.principal.tenant, {
    type: 'state.changed',
    principal: session.principal.id,
    outcome: 'ok',
    details,
  });
}

/**
 * Shared state, per tenant (the connection's), in namespaces: keys with JSON values, versioned for
 * compare-and-set, with optional expiry, listed a page at a time, and watched on any replica. And
 * memory: conversation threads, ordered logs of entries.
 */
export const STATE_ACTIONS: { [A in StateAction]: Handler<A> } = {
  async 'state.get'(ctx, { session }, { namespace, key }) {
    requireState(ctx, session, 'read', namespace);
    const entry = await ctx.state.get(session.principal.tenant, namespace, key);
    if (!entry) throw new GatewayError('NOT_FOUND', `no key '${key}' in namespace '${namespace}'`);
    return entry;
  },

  async 'state.set'(ctx, { session }, { namespace, key, value, ttlMs, ifVersion }) {
    requireState(ctx, session, 'write', namespace);
    const written = await ctx.state.set(session.principal.tenant, namespace, key, value, { ttlMs, ifVersion });
    auditChange(ctx, session, { namespace, key, op: 'set', version: written.version, ttlMs: ttlMs ?? null });
    return written;
  },

  async 'state.delete'(ctx, { session }, { namespace, key, ifVersion }) {
    requireState(ctx, session, 'write', namespace);
    const deleted = await ctx.state.delete(session.principal.tenant, namespace, key, ifVersion);
    if (deleted) auditChange(ctx, session, { namespace, key, op: 'delete' });
    return { deleted };
  },

  async 'state.list'(ctx, { session }, { namespace, prefix, limit, cursor }) {
    requireState(ctx, session, 'read', namespace);
    return ctx.state.list(session.principal.tenant, namespace, { prefix, limit, cursor });
  },

  async 'state.watch'(ctx, { session }, { namespace, prefix }) {
    requireState(ctx, session, 'read', namespace);
    const channel = ctx.state.channel(session.principal.tenant, namespace);
    if (!(await ctx.stateWatches.watch(session, channel, prefix ?? ''))) {
      throw new GatewayError('RATE_LIMITED', `at most ${MAX_STATE_WATCHES_PER_SESSION} state watches per connection`);
    }
    return { watching: true };
  },

  'state.unwatch'(ctx, { session }, { namespace, prefix }) {
    const channel = ctx.state.channel(session.principal.tenant, namespace);
    return { watching: false, ended: ctx.stateWatches.unwatch(session, channel, prefix ?? '') };
  },

  async 'memory.append'(ctx, { session }, { thread, entries }) {
    requireMemory(ctx, session, 'write', thread);
    const seq = await ctx.memory.append(session.principal.tenant, thread, entries);
    ctx.audit.record(session.principal.tenant, {
      type: 'memory.appended',
      principal: session.principal.id,
      outcome: 'ok',
      details: { thread, seq, entries: entries.length },
    });
    return { thread, seq };
  },

  async 'memory.read'(ctx, { session }, { thread, after, last }) {
    requireMemory(ctx, session, 'read', thread);
    return { thread, entries: await ctx.memory.read(session.principal.tenant, thread, { after, last }) };
  },

  async 'memory.clear'(ctx, { session }, { thread }) {
    requireMemory(ctx, session, 'write', thread);
    const cleared = await ctx.memory.clear(session.principal.tenant, thread);
    ctx.audit.record(session.principal.tenant, {
      type: 'memory.cleared',
      principal: session.principal.id,
      outcome: 'ok',
      details: { thread, cleared },
    });
    return { cleared };
  },
};
