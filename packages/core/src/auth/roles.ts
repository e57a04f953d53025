/**
 * Built-in roles and their permissions. They serve stored API keys until the RBAC policy file
 * (roles, inheritance, bindings) replaces this table. Role names come from credentials, so the table
 * has no prototype: `constructor` or `__proto__` is an unknown role, not a member of Object.
 */
export const BUILT_IN_ROLES: Readonly<Record<string, readonly string[]>> = Object.freeze(
  Object.assign(Object.create(null) as Record<string, readonly string[]>, {
    /** Everything, including managing API keys. */
    admin: ['*'],
    /** Registers as any agent and answers tasks; reads its tasks; lists agents; reads and writes shared state and memory. */
    agent: [
      'agent:register:*',
      'task:read',
      'agent:list',
      'state:read:*',
      'state:write:*',
      'memory:read:*',
      'memory:write:*',
    ],
    /** Calls any agent; reads and cancels its own tasks; lists agents; reads and writes shared state and memory. */
    caller: [
      'agent:invoke:*',
      'task:read',
      'task:cancel',
      'agent:list',
      'state:read:*',
      'state:write:*',
      'memory:read:*',
      'memory:write:*',
    ],
    /**
     * Watches and acts on every async task of the tenant: answers escalations, retries dead letters,
     * decides approvals; watches the cluster and the tenant's audit tail (Mission Control); reads
     * shared state, memory and the result cache's figures.
     */
    operator: [
      'task:read',
      'task:read:any',
      'task:cancel',
      'task:retry',
      'task:respond',
      'approval:read',
      'approval:decide',
      'agent:list',
      'cluster:read',
      'audit:read',
      'state:read:*',
      'memory:read:*',
      'cache:read',
    ],
    /** Sees and decides the tenant's approvals. */
    approver: ['approval:read', 'approval:decide', 'agent:list'],
  }),
);

/** Names of the built-in roles. */
export const ROLE_NAMES: readonly string[] = Object.freeze(Object.keys(BUILT_IN_ROLES));

/** The permissions of a set of roles (unknown roles grant nothing). */
export function permissionsOf(roles: readonly string[]): Set<string> {
  const out = new Set<string>();
  for (const role of roles) for (const p of BUILT_IN_ROLES[role] ?? []) out.add(p);
  return out;
}
