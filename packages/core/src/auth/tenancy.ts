/**
 * The operators' tenant. Its principals may hold the cluster-wide scopes below; every other tenant's
 * principals administer at most their own tenant, whatever their roles or the policy grant them.
 */
export const OPERATORS_TENANT = 'default';

/** The audit stream of events that have no authenticated tenant (failed authentications, refused origins). */
export const UNAUTHENTICATED_TENANT = '_unauthenticated';

/**
 * Permission of cluster-wide administration: API keys of every tenant, the cluster's RBAC and
 * governance policy, every tenant's audit trail and failed logins. It counts only for principals of
 * the {@link OPERATORS_TENANT}: the built-in `admin` role (`*`) grants it there, and nowhere else.
 */
export const CLUSTER_ADMIN = 'cluster:admin';

/**
 * Permissions that only principals of the operators' tenant can hold, however they are granted
 * (a role, a policy binding, a token's scopes, `*`).
 */
const OPERATORS_ONLY: ReadonlySet<string> = new Set([CLUSTER_ADMIN]);

/** Whether a permission is out of reach of this principal's tenant, whatever grants it. */
export function outsideTenantReach(principal: { readonly tenant: string }, permission: string): boolean {
  return principal.tenant !== OPERATORS_TENANT && OPERATORS_ONLY.has(permission);
}

/** Whether a principal belongs to the operators' tenant, whose views span the whole cluster. */
export function isOperator(principal: { readonly tenant: string }): boolean {
  return principal.tenant === OPERATORS_TENANT;
}
