import { LineCounter, parseDocument } from 'yaml';
import { z } from 'zod';
import { GovernancePolicySchema } from '../config/governance-policy';
import { glob } from '../matching/glob';
import type { Principal } from './principal';
import { BUILT_IN_ROLES } from './roles';
import { outsideTenantReach } from './tenancy';

const NAME = /^[a-z0-9][a-z0-9._-]{0,62}$/;
const RoleNameSchema = z.string().regex(NAME, 'role names match ^[a-z0-9][a-z0-9._-]{0,62}$');
const PermissionSchema = z
  .string()
  .regex(
    /^(\*|[a-z][a-z0-9-]*(:[A-Za-z0-9*._-]+)*)$/,
    "permissions look like 'agent:invoke:billing-*', 'task:read', 'admin' or '*'",
  );

/** The policy file: roles (with inheritance) and bindings of principals, groups or claims to roles. */
export const PolicySchema = z.strictObject({
  version: z.literal(1).optional(),
  roles: z
    .record(
      RoleNameSchema,
      z.strictObject({
        description: z.string().optional(),
        inherits: z.array(RoleNameSchema).optional(),
        permissions: z.array(PermissionSchema).optional(),
      }),
    )
    .optional(),
  bindings: z
    .array(
      z
        .strictObject({
          role: RoleNameSchema,
          principals: z.array(z.string().min(1)).optional(),
          groups: z.array(z.string().min(1)).optional(),
          claims: z.record(z.string(), z.string()).optional(),
        })
        .refine((b) => b.principals || b.groups || b.claims, 'a binding needs principals, groups or claims'),
    )
    .optional(),
  /** Governance: the validators every routed message passes (see docs/governance.md). */
  governance: GovernancePolicySchema.optional(),
});
export type PolicyDocument = z.infer<typeof PolicySchema>;

/** One problem in a policy file: where, and what. */
export interface PolicyProblem {
  line: number;
  field: string;
  message: string;
}

/** A policy file that cannot be used; `problems` name the line and field of each mistake. */
export class PolicyError extends Error {
  override readonly name = 'PolicyError';
  constructor(readonly problems: PolicyProblem[]) {
    super(
      `invalid policy:\n${problems.map((p) => `  line ${p.line}: ${p.field || '(document)'}: ${p.message}`).join('\n')}`,
    );
  }
}

/** Why a principal holds a permission, or not. */
export interface Explanation {
  allowed: boolean;
  /** Each way it is granted: how the principal got the role, and the chain of roles to the grant. */
  grants: { via: string; roles: string[]; permission: string }[];
  /** Roles the principal holds, and how. */
  roles: { role: string; via: string }[];
}

/** Whether a set of granted permissions covers one (`agent:invoke:billing-*` covers `agent:invoke:billing-eu`). */
export function grantOf(granted: Iterable<string>, permission: string): string | undefined {
  for (const g of granted) if (glob(g, permission)) return g;
  return undefined;
}

/**
 * A parsed, checked policy. Roles the file does not define keep their built-in meaning (admin, agent,
 * caller); the file may redefine them.
 */
export class Policy {
  private readonly closure = new Map<string, Map<string, string[]>>();

  constructor(
    readonly document: PolicyDocument,
    readonly version: number,
  ) {}

  /** The empty policy: built-in roles only, no bindings. */
  static readonly EMPTY = new Policy({}, 0);

  /**
   * Parses and checks a policy file.
   * @throws {PolicyError} naming the line and field of every problem (including inheritance cycles).
   */
  static parse(text: string, version = 0): Policy {
    const lines = new LineCounter();
    const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
    const lineOf = (path: (string | number)[]): number => {
      for (let i = path.length; i >= 0; i--) {
        const node = doc.getIn(path.slice(0, i), true) as { range?: [number, number, number] } | undefined;
        if (node?.range) return lines.linePos(node.range[0]).line;
      }
      return 1;
    };
    if (doc.errors.length > 0) {
      throw new PolicyError(
        doc.errors.map((e) => ({
          line: lines.linePos(e.pos[0]).line,
          field: '',
          message: e.message.split('\n')[0] ?? 'not YAML',
        })),
      );
    }
    const parsed = PolicySchema.safeParse(doc.toJS() ?? {});
    if (!parsed.success) {
      throw new PolicyError(
        parsed.error.issues.map((issue) => {
          const path = issue.path.map((p) => (typeof p === 'symbol' ? String(p) : p));
          const extra = issue.code === 'unrecognized_keys' ? issue.keys : [];
          return {
            line: lineOf(extra.length > 0 ? [...path, extra[0]!] : path),
            field: [...path, ...extra.slice(0, 1)].join('.'),
            message: issue.message,
          };
        }),
      );
    }
    const problems: PolicyProblem[] = [];
    const roles = parsed.data.roles ?? {};
    const known = (role: string) => Object.hasOwn(roles, role) || Object.hasOwn(BUILT_IN_ROLES, role);
    for (const [name, role] of Object.entries(roles)) {
      (role.inherits ?? []).forEach((parent, i) => {
        if (!known(parent))
          problems.push({
            line: lineOf(['roles', name, 'inherits', i]),
            field: `roles.${name}.inherits.${i}`,
            message: `unknown role '${parent}'`,
          });
      });
    }
    for (const cycle of findCycles(roles)) {
      problems.push({
        line: lineOf(['roles', cycle[0]!, 'inherits']),
        field: `roles.${cycle[0]}.inherits`,
        message: `inheritance cycle: ${cycle.join(' → ')}`,
      });
    }
    (parsed.data.bindings ?? []).forEach((binding, i) => {
      if (!known(binding.role))
        problems.push({
          line: lineOf(['bindings', i, 'role']),
          field: `bindings.${i}.role`,
          message: `unknown role '${binding.role}'`,
        });
    });
    if (problems.length > 0) throw new PolicyError(problems);
    return new Policy(parsed.data, version);
  }

  /** The roles a principal holds: from its credential, and from bindings that match it. */
  rolesOf(principal: Pick<Principal, 'id' | 'roles' | 'groups' | 'claims'>): { role: string; via: string }[] {
    const out = principal.roles.map((role) => ({ role, via: 'credential' }));
    (this.document.bindings ?? []).forEach((b, i) => {
      const byPrincipal = b.principals?.includes(principal.id);
      const byGroup = b.groups?.some((g) => principal.groups?.includes(g));
      const byClaims =
        b.claims !== undefined &&
        Object.entries(b.claims).every(
          ([k, v]) => Object.hasOwn(principal.claims ?? {}, k) && principal.claims?.[k] === v,
        );
      if (byPrincipal || byGroup || byClaims) {
        const how = byPrincipal ? 'principal' : byGroup ? 'group' : 'claims';
        out.push({ role: b.role, via: `binding ${i + 1} (${how})` });
      }
    });
    return out;
  }

  /** Every permission a role grants, with the chain of roles each comes through. */
  grantsOf(role: string): Map<string, string[]> {
    const cached = this.closure.get(role);
    if (cached) return cached;
    const out = new Map<string, string[]>();
    const visit = (name: string, chain: string[], seen: Set<string>): void => {
      if (seen.has(name)) return;
      seen.add(name);
      const defined = this.definedRole(name);
      const own = defined ? (defined.permissions ?? []) : (BUILT_IN_ROLES[name] ?? []);
      for (const p of own) if (!out.has(p)) out.set(p, [...chain, name]);
      for (const parent of defined?.inherits ?? []) visit(parent, [...chain, name], seen);
    };
    visit(role, [], new Set());
    this.closure.set(role, out);
    return out;
  }

  /** Whether a principal holds a role: one of its roles is that role, or inherits it. */
  holdsRole(principal: Pick<Principal, 'id' | 'roles' | 'groups' | 'claims'>, role: string): boolean {
    return this.rolesOf(principal).some(({ role: held }) => this.ancestorsOf(held).has(role));
  }

  /** A role and every role it inherits, directly or not. */
  private ancestorsOf(role: string): Set<string> {
    const out = new Set<string>();
    const visit = (name: string): void => {
      if (out.has(name)) return;
      out.add(name);
      for (const parent of this.definedRole(name)?.inherits ?? []) visit(parent);
    };
    visit(role);
    return out;
  }

  /** The policy file's definition of a role; names come from credentials, so only its own entries count. */
  private definedRole(name: string): NonNullable<PolicyDocument['roles']>[string] | undefined {
    const roles = this.document.roles;
    return roles !== undefined && Object.hasOwn(roles, name) ? roles[name] : undefined;
  }

  /** Whether a principal holds a permission: granted directly by its credential, or by one of its roles. */
  can(principal: Principal, permission: string): boolean {
    if (outsideTenantReach(principal, permission)) return false;
    if (grantOf(principal.permissions, permission)) return true;
    for (const { role } of this.rolesOf(principal)) {
      if (grantOf(this.grantsOf(role).keys(), permission)) return true;
    }
    return false;
  }

  /** Why a principal holds a permission, or not. */
  explain(principal: Principal, permission: string): Explanation {
    const roles = this.rolesOf(principal);
    if (outsideTenantReach(principal, permission)) return { allowed: false, grants: [], roles };
    const grants: Explanation['grants'] = [];
    const direct = grantOf(principal.permissions, permission);
    if (direct) grants.push({ via: 'credential', roles: [], permission: direct });
    for (const { role, via } of roles) {
      for (const [granted, chain] of this.grantsOf(role)) {
        if (glob(granted, permission)) grants.push({ via, roles: chain, permission: granted });
      }
    }
    return { allowed: grants.length > 0, grants, roles };
  }
}

function findCycles(roles: Record<string, { inherits?: string[] }>): string[][] {
  const cycles: string[][] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const walk = (name: string, path: string[]): void => {
    if (state.get(name) === 'done') return;
    if (state.get(name) === 'visiting') {
      cycles.push([...path.slice(path.indexOf(name)), name]);
      return;
    }
    state.set(name, 'visiting');
    for (const parent of roles[name]?.inherits ?? []) if (Object.hasOwn(roles, parent)) walk(parent, [...path, name]);
    state.set(name, 'done');
  };
  for (const name of Object.keys(roles)) walk(name, []);
  return cycles;
}
