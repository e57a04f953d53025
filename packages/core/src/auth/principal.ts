import { outsideTenantReach } from './tenancy';

/** Who a session or HTTP request acts as. Every session has one from the moment it is accepted. */
export interface Principal {
  /** Stable id, e.g. `anonymous` or `apikey:3f2a9c1d0b7e`. Never a secret. */
  readonly id: string;
  readonly tenant: string;
  readonly roles: readonly string[];
  /**
   * Permissions its credential grants directly (`*` for static keys and `none`; permission-shaped
   * OAuth scopes). Its roles' permissions are resolved at each check, through the policy.
   */
  readonly permissions: ReadonlySet<string>;
  /** Groups from its token (for policy bindings). */
  readonly groups?: readonly string[];
  /** String claims of its token (for policy bindings). */
  readonly claims?: Readonly<Record<string, string>>;
  /** The stored API key it authenticated with, if any: revoking the key closes its connections. */
  readonly apiKeyId?: string;
  /** When its credential stops being valid (epoch ms): its connections are closed then. */
  readonly expiresAt?: number;
}

/**
 * What a principal's credential grants, beyond its roles: kept with a workflow that has plan steps,
 * whose planned steps are authorized later, by a worker, as the principal that started it.
 */
export interface PrincipalGrants {
  permissions: string[];
  groups?: string[];
  claims?: Record<string, string>;
}

export function grantsOf(principal: Principal): PrincipalGrants {
  return {
    permissions: [...principal.permissions],
    ...(principal.groups ? { groups: [...principal.groups] } : {}),
    ...(principal.claims ? { claims: { ...principal.claims } } : {}),
  };
}

/** The principal a workflow was started by, rebuilt from its record (for the policy's checks). */
export function principalOf(id: string, tenant: string, roles: readonly string[], grants: PrincipalGrants): Principal {
  return {
    id,
    tenant,
    roles,
    permissions: new Set(grants.permissions),
    ...(grants.groups ? { groups: grants.groups } : {}),
    ...(grants.claims ? { claims: grants.claims } : {}),
  };
}

/** The principal of every connection when authentication is off (loopback development). */
export const ANONYMOUS: Principal = Object.freeze({
  id: 'anonymous',
  tenant: 'default',
  roles: Object.freeze(['admin']) as readonly string[],
  permissions: new Set(['*']) as ReadonlySet<string>,
});

/**
 * Whether a principal holds a permission. `agent:invoke:my-agent` is granted by itself, by
 * `agent:invoke:*`, `agent:*` and `*`.
 */
export function hasPermission(principal: Principal, permission: string): boolean {
  if (outsideTenantReach(principal, permission)) return false;
  if (principal.permissions.has('*') || principal.permissions.has(permission)) return true;
  const parts = permission.split(':');
  for (let i = parts.length - 1; i > 0; i--) {
    if (principal.permissions.has(`${parts.slice(0, i).join(':')}:*`)) return true;
  }
  return false;
}
