import { type Cluster, startAgent, startCluster } from '../helpers/cluster';
import { TokenIssuer } from '../helpers/token-issuer';
import { withTimeout } from '../helpers/wait';
import { TestSocket } from '../helpers/ws-client';

/**
 * Names and patterns chosen by clients, on one real replica shared by two tenants: a pattern cannot
 * hold the event loop, and names of Object's members are names like any other.
 */
describe('hostile patterns and names', () => {
  let cluster: Cluster;
  let issuer: TokenIssuer;
  const sockets: TestSocket[] = [];

  /** A connection as `sub` of `tenant` with `roles`, through a JWT from the test issuer. */
  const open = async (sub: string, tenant: string, roles: string[]): Promise<TestSocket> => {
    const token = await issuer.sign({ sub, tenant, roles });
    const socket = await TestSocket.open(cluster.gateways[0]!.url, { headers: { authorization: `Bearer ${token}` } });
    sockets.push(socket);
    return socket;
  };

  beforeAll(async () => {
    issuer = await TokenIssuer.start('k1');
    cluster = await startCluster({
      replicas: 1,
      auth: 'jwt',
      env: { OPENCLAW_JWT_ISSUER: issuer.issuer, OPENCLAW_JWT_AUDIENCE: 'openclaw' },
    });
  });
  afterAll(async () => {
    await Promise.all(sockets.map((s) => s.close()));
    await cluster.stop();
    await issuer.stop();
  });

  it('refuses at register a schema pattern that needs backtracking, naming the field and why', async () => {
    const agent = await open('names-agent', 'acme', ['agent']);
    const refused = await agent.request({
      action: 'register',
      id: 1,
      name: 'lookup',
      inputSchemas: { find: { type: 'object', properties: { id: { type: 'string', pattern: '^(\\d+)-\\1$' } } } },
    });
    expect(refused).toMatchObject({
      id: 1,
      ok: false,
      error: {
        code: 'BAD_REQUEST',
        details: [
          {
            field: 'inputSchemas.find',
            message: 'not a valid JSON Schema: pattern "^(\\d+)-\\1$" cannot be used: backreferences are not supported',
          },
        ],
      },
    });
    const lookahead = await agent.request({
      action: 'register',
      id: 2,
      name: 'lookup',
      inputSchemas: { find: { type: 'string', pattern: '^(?!admin)' } },
    });
    expect(lookahead).toMatchObject({
      ok: false,
      error: {
        code: 'BAD_REQUEST',
        details: [
          {
            field: 'inputSchemas.find',
            message:
              'not a valid JSON Schema: pattern "^(?!admin)" cannot be used: lookahead is not supported (patterns run on a linear-time engine, RE2)',
          },
        ],
      },
    });
  });

  it("answers ^(a+)+$ against 'a' x 29 + '!' with POLICY_DENIED at once, and another tenant's ping meanwhile", async () => {
    const agent = await open('greeter', 'acme', ['agent']);
    const registered = await agent.request({
      action: 'register',
      id: 1,
      name: 'greeter',
      inputSchemas: { greet: { type: 'object', properties: { name: { type: 'string', pattern: '^(a+)+$' } } } },
    });
    expect(registered.ok).toBe(true);
    const caller = await open('attacker', 'acme', ['caller']);
    const neighbour = await open('neighbour', 'globex', ['caller']);
    // The other tenant pings the replica, one ping after the other, until the hostile call is answered:
    // on a backtracking engine the replica would sit on it for seconds (twice as long for every
    // further 'a'), and a ping would wait behind it.
    let answered = false;
    const hostile = caller
      .request({
        action: 'coordinator',
        id: 'hostile',
        agent: 'greeter',
        task: 'greet',
        data: { name: `${'a'.repeat(29)}!` },
      })
      .finally(() => {
        answered = true;
      });
    for (let i = 0; !answered; i++) {
      // Far above a ping's time on an idle replica, far below the seconds a backtracking match takes.
      expect(
        await withTimeout(neighbour.request({ action: 'ping', id: i }), 1000, `the neighbour's ping ${i}`),
      ).toMatchObject({
        ok: true,
        result: { pong: true },
      });
    }
    expect(await withTimeout(hostile, 1000, 'the hostile call')).toMatchObject({
      id: 'hostile',
      ok: false,
      error: {
        code: 'POLICY_DENIED',
        details: {
          validator: 'input-schema',
          reason:
            "the input does not match the schema agent 'greeter' declared for task 'greet': data.name must match pattern \"^(a+)+$\"",
        },
      },
    });
    // A string too long for the pattern within one check's budget is refused unmatched.
    const long = await caller.request({
      action: 'coordinator',
      id: 'long',
      agent: 'greeter',
      task: 'greet',
      data: { name: 'a'.repeat(200_000) },
    });
    expect(long).toMatchObject({
      ok: false,
      error: {
        code: 'POLICY_DENIED',
        details: {
          validator: 'input-schema',
          reason:
            "the input cannot be checked against the schema agent 'greeter' declared for task 'greet': a string of 200000 characters is too long to match against the pattern \"^(a+)+$\" within the budget of one check",
        },
      },
    });
    expect(agent.pending()).toEqual([]);
  });

  it('routes tasks named like Object members to an agent that handles them, with and without a schema', async () => {
    const tasks = ['constructor', '__proto__', 'toString', 'hasOwnProperty'];
    const agentHeaders = async (sub: string) => ({
      authorization: `Bearer ${await issuer.sign({ sub, tenant: 'acme', roles: ['agent'] })}`,
    });
    // `typed` declares a schema for one of them (and leaves; its schemas stay), before any call to it.
    const declaring = await open('typed-schemas', 'acme', ['agent']);
    expect(
      await declaring.request({
        action: 'register',
        id: 'schemas',
        name: 'typed',
        tasks,
        inputSchemas: { toString: { type: 'object', required: ['x'] } },
      }),
    ).toMatchObject({ ok: true });
    // A schema for `__proto__` cannot be held (a record key of that name is dropped): refused, not ignored.
    declaring.send(
      '{"action":"register","id":"proto","name":"typed-proto","inputSchemas":{"__proto__":{"type":"object","required":["x"]}}}',
    );
    expect(await declaring.nextResponse((r) => r.id === 'proto')).toMatchObject({
      ok: false,
      error: { code: 'BAD_REQUEST', details: [{ field: 'inputSchemas.__proto__' }] },
    });
    await declaring.close();
    const caller = await open('member-caller', 'acme', ['caller']);
    for (const name of ['members', 'typed']) {
      const agent = await startAgent(cluster.gateways[0]!.url, { name, tasks, headers: await agentHeaders(name) });
      sockets.push(agent.socket);
      for (const [i, task] of tasks.entries()) {
        const data = { n: i, x: true };
        expect(await caller.request({ action: 'coordinator', id: i, agent: name, task, data })).toMatchObject({
          id: i,
          ok: true,
          result: { status: 'completed', output: { echo: data, by: name } },
        });
      }
      expect(agent.received.map((t) => t.task)).toEqual(tasks);
    }
    // The schema applies to its task only.
    for (const [i, task] of tasks.entries()) {
      const answer = await caller.request({ action: 'coordinator', id: i, agent: 'typed', task, data: {} });
      if (task === 'toString') {
        expect(answer).toMatchObject({
          ok: false,
          error: {
            code: 'POLICY_DENIED',
            details: {
              validator: 'input-schema',
              reason:
                "the input does not match the schema agent 'typed' declared for task 'toString': data must have required property 'x'",
            },
          },
        });
      } else {
        expect(answer).toMatchObject({ ok: true, result: { status: 'completed', output: { echo: {} } } });
      }
    }
  });

  it('refuses a principal whose roles are named like Object members with FORBIDDEN, not INTERNAL', async () => {
    for (const role of ['constructor', '__proto__', 'toString', 'hasOwnProperty']) {
      const s = await open(`role-${role}`, 'acme', [role]);
      expect(await s.request({ action: 'hello', id: 0 })).toMatchObject({
        ok: true,
        result: { principal: { id: `jwt:role-${role}`, roles: [role] } },
      });
      expect(
        await s.request({ action: 'coordinator', id: 1, agent: 'members', task: 'toString', data: {} }),
      ).toMatchObject({
        id: 1,
        ok: false,
        error: { code: 'FORBIDDEN' },
      });
      expect(await s.request({ action: 'register', id: 2, name: 'members' })).toMatchObject({
        id: 2,
        ok: false,
        error: { code: 'FORBIDDEN' },
      });
      expect(await s.request({ action: 'ping', id: 3 })).toMatchObject({ ok: true });
    }
  });
});
