import { Policy, PolicyError } from './policy';
import type { Principal } from './principal';

const principal = (p: Partial<Principal>): Principal => ({
  id: 'apikey:aaaaaaaaaaaa',
  tenant: 't',
  roles: [],
  permissions: new Set(),
  ...p,
});

function problems(text: string) {
  try {
    Policy.parse(text);
  } catch (error) {
    if (error instanceof PolicyError) return error.problems;
    throw error;
  }
  throw new Error('expected the policy to be refused');
}

describe('Policy.parse', () => {
  it('rejects an inheritance cycle, naming the line and the cycle', () => {
    const text = [
      'roles:',
      '  a:',
      '    inherits: [b]',
      '  b:',
      '    inherits: [c]',
      '  c:',
      '    inherits: [a]',
      '',
    ].join('\n');
    expect(problems(text)).toEqual([
      { line: 3, field: 'roles.a.inherits', message: 'inheritance cycle: a → b → c → a' },
    ]);
  });

  it('names the line and field of unknown fields, bad permissions and unknown roles', () => {
    const text = [
      'roles:',
      '  ops:',
      '    permissions: ["agent:invoke:*", "Not A Permission"]',
      '    inherit: [caller]',
      'bindings:',
      '  - role: nobody',
      '    principals: [jwt:alice]',
      '',
    ].join('\n');
    const found = problems(text);
    expect(found).toContainEqual({
      line: 3,
      field: 'roles.ops.permissions.1',
      message: expect.stringMatching(/permissions look like/),
    });
    expect(found).toContainEqual({
      line: 4,
      field: 'roles.ops.inherit',
      message: expect.stringMatching(/Unrecognized key/i),
    });
  });

  it('reports YAML syntax errors with their line', () => {
    expect(problems('roles:\n  a: [unclosed\n')[0]).toMatchObject({ line: 3 });
  });

  it('refuses a binding to an unknown role', () => {
    expect(problems('bindings:\n  - role: ghost\n    principals: [x]\n')).toEqual([
      { line: 2, field: 'bindings.0.role', message: "unknown role 'ghost'" },
    ]);
  });
});

describe('Policy decisions', () => {
  const policy = Policy.parse(
    [
      'roles:',
      '  reader:',
      '    permissions: [task:read]',
      '  billing:',
      '    inherits: [reader]',
      '    permissions: ["agent:invoke:billing-*"]',
      '  caller:',
      '    permissions: ["agent:invoke:public-*"]',
      'bindings:',
      '  - role: billing',
      '    principals: [apikey:bbbbbbbbbbbb]',
      '  - role: reader',
      '    groups: [auditors]',
      '  - role: billing',
      '    claims: { department: finance }',
      '',
    ].join('\n'),
    3,
  );

  it('grants through bindings and inheritance, with wildcards', () => {
    const bound = principal({ id: 'apikey:bbbbbbbbbbbb' });
    expect(policy.can(bound, 'agent:invoke:billing-eu')).toBe(true);
    expect(policy.can(bound, 'task:read')).toBe(true);
    expect(policy.can(bound, 'agent:invoke:hr')).toBe(false);
    expect(policy.can(principal({ groups: ['auditors'] }), 'task:read')).toBe(true);
    expect(policy.can(principal({ claims: { department: 'finance' } }), 'agent:invoke:billing-x')).toBe(true);
    expect(policy.can(principal({ claims: { department: 'sales' } }), 'agent:invoke:billing-x')).toBe(false);
  });

  it('lets the file redefine a built-in role, and keeps the others', () => {
    expect(policy.can(principal({ roles: ['caller'] }), 'agent:invoke:public-api')).toBe(true);
    expect(policy.can(principal({ roles: ['caller'] }), 'agent:invoke:billing-eu')).toBe(false);
    expect(policy.can(principal({ roles: ['agent'] }), 'agent:register:anything')).toBe(true);
  });

  it('explains which binding and role chain grants a permission', () => {
    const e = policy.explain(principal({ id: 'apikey:bbbbbbbbbbbb' }), 'task:read');
    expect(e.allowed).toBe(true);
    expect(e.grants).toEqual([{ via: 'binding 1 (principal)', roles: ['billing', 'reader'], permission: 'task:read' }]);
    expect(policy.explain(principal({}), 'task:read')).toEqual({ allowed: false, grants: [], roles: [] });
  });
});

describe('cluster administration', () => {
  const policy = Policy.parse(
    [
      'roles:',
      '  root:',
      "    permissions: ['cluster:admin']",
      'bindings:',
      '  - role: root',
      "    principals: ['apikey:aaaaaaaaaaaa']",
    ].join('\n'),
  );

  it("counts only for principals of the operators' tenant, however it is granted", () => {
    for (const granted of [{ roles: ['admin'] }, { roles: ['root'] }, { permissions: new Set(['*']) }]) {
      expect(policy.can(principal({ tenant: 'acme', ...granted }), 'cluster:admin')).toBe(false);
      expect(policy.can(principal({ tenant: 'default', ...granted }), 'cluster:admin')).toBe(true);
    }
    // By the binding alone.
    expect(policy.can(principal({ tenant: 'acme' }), 'cluster:admin')).toBe(false);
    expect(policy.can(principal({ tenant: 'default' }), 'cluster:admin')).toBe(true);
    expect(policy.explain(principal({ tenant: 'acme', roles: ['admin'] }), 'cluster:admin').allowed).toBe(false);
  });

  it('leaves a tenant admin every permission within its tenant', () => {
    expect(policy.can(principal({ tenant: 'acme', roles: ['admin'] }), 'admin')).toBe(true);
    expect(policy.can(principal({ tenant: 'acme', roles: ['admin'] }), 'cluster:read')).toBe(true);
  });
});
