import { grantOf, Policy } from './policy';
import type { Principal } from './principal';
import { BUILT_IN_ROLES, permissionsOf } from './roles';

const principal = (p: Partial<Principal>): Principal => ({
  id: 'jwt:mallory',
  tenant: 'acme',
  roles: [],
  permissions: new Set(),
  ...p,
});

/** Names a credential may carry that are members of every plain object. */
const OBJECT_MEMBERS = ['constructor', '__proto__', 'toString', 'hasOwnProperty', 'valueOf'];

describe('role names from credentials', () => {
  it('grants nothing for roles named like Object members', () => {
    expect([...permissionsOf(OBJECT_MEMBERS)]).toEqual([]);
    expect([...permissionsOf([...OBJECT_MEMBERS, 'approver'])]).toEqual([...BUILT_IN_ROLES.approver!]);
    for (const role of OBJECT_MEMBERS) expect(BUILT_IN_ROLES[role]).toBeUndefined();
  });

  it('answers "not allowed" for a principal whose roles are such names, with the empty policy and a file', () => {
    const policy = Policy.parse('roles:\n  reader:\n    permissions: ["task:read"]\n');
    for (const p of [Policy.EMPTY, policy]) {
      const mallory = principal({ roles: OBJECT_MEMBERS });
      expect(p.can(mallory, 'agent:invoke:billing')).toBe(false);
      expect(p.explain(mallory, 'agent:invoke:billing')).toEqual({
        allowed: false,
        grants: [],
        roles: OBJECT_MEMBERS.map((role) => ({ role, via: 'credential' })),
      });
      expect(p.holdsRole(mallory, 'reader')).toBe(false);
    }
  });

  it('treats a role the policy file names `constructor` as any other role', () => {
    const policy = Policy.parse('roles:\n  constructor:\n    inherits: [caller]\n    permissions: ["task:read:any"]\n');
    const builder = principal({ roles: ['constructor'] });
    expect(policy.can(builder, 'agent:invoke:billing')).toBe(true);
    expect(policy.can(builder, 'task:read:any')).toBe(true);
    expect(policy.holdsRole(builder, 'caller')).toBe(true);
    expect(policy.can(principal({ roles: ['tostring'] }), 'task:read:any')).toBe(false);
  });

  it('binds by claims the token has, not by members of Object', () => {
    const policy = Policy.parse(
      'bindings:\n  - role: caller\n    claims: { constructor: "function Object() { [native code] }" }\n',
    );
    expect(policy.can(principal({ claims: {} }), 'agent:invoke:billing')).toBe(false);
    const claimed = principal({ claims: { constructor: 'function Object() { [native code] }' } });
    expect(policy.can(claimed, 'agent:invoke:billing')).toBe(true);
  });

  it("matches a granted glob with many stars (a delegated permission is the client's) at once", () => {
    const started = performance.now();
    const granted = [`agent:invoke:${'a*'.repeat(7)}b`];
    expect(grantOf(granted, `agent:invoke:${'a'.repeat(63)}`)).toBeUndefined();
    expect(grantOf(granted, `agent:invoke:${'a'.repeat(62)}b`)).toBe(granted[0]);
    // As a RegExp, the first takes seconds (ten times longer for every further star): the bound only
    // tells that from "answered".
    expect(performance.now() - started).toBeLessThan(1000);
  });
});
