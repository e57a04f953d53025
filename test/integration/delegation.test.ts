import { auditTail, createApiKey, runCli } from '../helpers/cli';
import { type Cluster, startAgent, startCluster } from '../helpers/cluster';
import { type Frame, TestSocket } from '../helpers/ws-client';

const ADMIN = 'bootstrap-admin-key-0123456789';

/** Delegation: an agent acts for a principal with a narrowed subset of its rights, checked at every hop. */
describe('delegation', () => {
  let cluster: Cluster;
  let principalKey: string;
  let principalId: string;
  const as = (key: string, replica = 0) =>
    TestSocket.open(cluster.gateways[replica]!.url, { headers: { 'x-api-key': key } });
  const asAgent = async (name: string, replica: number) => {
    const s = await as(ADMIN, replica);
    expect(await s.request({ action: 'register', id: 'r', name })).toMatchObject({ ok: true });
    return s;
  };

  beforeAll(async () => {
    cluster = await startCluster({
      replicas: 2,
      auth: 'apikey',
      apiKeys: [ADMIN],
      env: { OPENCLAW_API_KEY_SECRET: 'k'.repeat(40), OPENCLAW_DELEGATION_SECRET: 'd'.repeat(40) },
    });
    principalKey = await createApiKey(cluster.gateways[0]!.httpUrl, ADMIN, { name: 'alice', role: 'caller' });
    principalId = `apikey:${principalKey.slice(4, 16)}`;
  });
  afterAll(async () => {
    await cluster.stop();
  });

  it('lets an agent call for a principal within the delegated rights only, and records the chain', async () => {
    const billing = await startAgent(cluster.gateways[1]!.url, { name: 'billing-eu', headers: { 'x-api-key': ADMIN } });
    const hr = await startAgent(cluster.gateways[1]!.url, { name: 'hr', headers: { 'x-api-key': ADMIN } });
    const alice = await as(principalKey);
    const orchestrator = await asAgent('orchestrator', 0);
    const minted = await alice.request({
      action: 'delegate',
      id: 1,
      agent: 'orchestrator',
      permissions: ['agent:invoke:billing-eu'],
      maxDepth: 2,
    });
    expect(minted).toMatchObject({ ok: true, result: { depth: 1, maxDepth: 2, expiresAt: expect.any(Number) } });
    const token = (minted.result as { token: string }).token;

    expect(
      await orchestrator.request({ action: 'coordinator', id: 2, agent: 'billing-eu', task: 't', delegation: token }),
    ).toMatchObject({ ok: true });
    const from = (billing.received.at(-1) as Frame).from as Record<string, unknown>;
    expect(from).toMatchObject({
      agent: 'orchestrator',
      onBehalfOf: principalId,
      chain: [principalId, expect.stringMatching(/^apikey:/)],
    });
    // The orchestrator itself may call anything (it is an admin); with the delegation, only what alice gave.
    expect(
      await orchestrator.request({ action: 'coordinator', id: 3, agent: 'hr', task: 't', delegation: token }),
    ).toMatchObject({
      error: { code: 'FORBIDDEN', message: "the delegation does not grant 'agent:invoke:hr'" },
    });
    // Only the agent it was issued for may use it.
    const stranger = await asAgent('stranger', 1);
    expect(
      await stranger.request({ action: 'coordinator', id: 4, agent: 'billing-eu', task: 't', delegation: token }),
    ).toMatchObject({
      error: {
        code: 'FORBIDDEN',
        message: "this delegation was issued for agent 'orchestrator', and this connection is not that agent",
      },
    });
    const audit = JSON.parse(
      (await runCli(['audit', 'tail', '--json', '--url', cluster.gateways[0]!.httpUrl, '--api-key', ADMIN])).stdout,
    ) as {
      type: string;
      details?: Record<string, unknown>;
    }[];
    expect(audit.find((e) => e.type === 'task.routed' && e.details?.onBehalfOf === principalId)).toMatchObject({
      details: { agent: 'billing-eu', chain: expect.stringContaining(`${principalId} > apikey:`) },
    });
    await Promise.all([alice.close(), orchestrator.close(), stranger.close(), billing.close(), hr.close()]);
  });

  it('never widens: a delegation cannot ask for more than its issuer has', async () => {
    const alice = await as(principalKey);
    expect(
      await alice.request({
        action: 'delegate',
        id: 1,
        agent: 'orchestrator',
        permissions: ['agent:invoke:x', 'admin'],
      }),
    ).toMatchObject({
      error: { code: 'FORBIDDEN', message: "the delegation asks for more than its issuer has: 'admin'" },
    });
    expect(
      (await auditTail(cluster.gateways[0]!.httpUrl, ADMIN, 'default')).find(
        (e) => e.type === 'authz.denied' && e.principal === principalId && e.details?.action === 'delegate',
      ),
    ).toBeDefined();
    await alice.close();
  });

  it('passes narrower rights down a chain, and no deeper than allowed', async () => {
    const billing = await startAgent(cluster.gateways[0]!.url, { name: 'billing-eu', headers: { 'x-api-key': ADMIN } });
    const alice = await as(principalKey);
    const orchestrator = await asAgent('orchestrator', 1);
    const collector = await asAgent('collector', 0);
    const first = await alice.request({
      action: 'delegate',
      id: 1,
      agent: 'orchestrator',
      permissions: ['agent:invoke:billing-*'],
      maxDepth: 2,
    });
    const t1 = (first.result as { token: string }).token;
    // Narrower is fine; wider than the parent is not.
    expect(
      await orchestrator.request({
        action: 'delegate',
        id: 2,
        agent: 'collector',
        permissions: ['agent:invoke:hr'],
        parent: t1,
      }),
    ).toMatchObject({
      error: { code: 'FORBIDDEN', message: "the delegation asks for more than its parent grants: 'agent:invoke:hr'" },
    });
    const second = await orchestrator.request({
      action: 'delegate',
      id: 3,
      agent: 'collector',
      permissions: ['agent:invoke:billing-eu'],
      parent: t1,
    });
    expect(second).toMatchObject({ ok: true, result: { depth: 2, maxDepth: 2 } });
    const t2 = (second.result as { token: string }).token;
    expect(
      await collector.request({ action: 'coordinator', id: 4, agent: 'billing-eu', task: 't', delegation: t2 }),
    ).toMatchObject({ ok: true });
    expect(((billing.received.at(-1) as Frame).from as { chain: string[] }).chain).toHaveLength(3);
    // A third hop would exceed the depth alice allowed.
    expect(
      await collector.request({
        action: 'delegate',
        id: 5,
        agent: 'deeper',
        permissions: ['agent:invoke:billing-eu'],
        parent: t2,
      }),
    ).toMatchObject({
      error: { code: 'FORBIDDEN', message: 'the delegation chain would be deeper than allowed (at most 2)' },
    });
    const denied = await auditTail(cluster.gateways[0]!.httpUrl, ADMIN, 'default');
    expect(
      denied.find(
        (e) =>
          e.type === 'authz.denied' &&
          e.details?.reason === 'the delegation chain would be deeper than allowed (at most 2)',
      ),
    ).toBeDefined();
    expect(denied.find((e) => e.type === 'delegation.minted' && e.details?.depth === 2)).toBeDefined();
    // A tampered token is refused.
    expect(
      await collector.request({
        action: 'coordinator',
        id: 6,
        agent: 'billing-eu',
        task: 't',
        delegation: `${t2.slice(0, -2)}xx`,
      }),
    ).toMatchObject({
      error: { code: 'FORBIDDEN', message: 'the delegation token is not valid' },
    });
    await Promise.all([alice.close(), orchestrator.close(), collector.close(), billing.close()]);
  });

  it('binds a token to the principal it was issued to: another principal registered as the agent cannot replay it', async () => {
    const billing = await startAgent(cluster.gateways[0]!.url, { name: 'billing-eu', headers: { 'x-api-key': ADMIN } });
    const ownerKey = await createApiKey(cluster.gateways[0]!.httpUrl, ADMIN, {
      name: 'orchestrator-owner',
      role: 'admin',
    });
    const thiefKey = await createApiKey(cluster.gateways[0]!.httpUrl, ADMIN, { name: 'mallory', role: 'admin' });
    const ownerId = `apikey:${ownerKey.slice(4, 16)}`;
    const alice = await as(principalKey);
    const orchestrator = await as(ownerKey, 1);
    expect(await orchestrator.request({ action: 'register', id: 'r', name: 'orchestrator' })).toMatchObject({
      ok: true,
    });
    const minted = await alice.request({
      action: 'delegate',
      id: 1,
      agent: 'orchestrator',
      permissions: ['agent:invoke:billing-eu'],
    });
    expect(minted).toMatchObject({ ok: true });
    const token = (minted.result as { token: string }).token;
    // Mallory, of the same tenant, registers the same agent name and replays the token.
    const thief = await as(thiefKey, 0);
    expect(await thief.request({ action: 'register', id: 'r', name: 'orchestrator' })).toMatchObject({ ok: true });
    expect(
      await thief.request({ action: 'coordinator', id: 2, agent: 'billing-eu', task: 't', delegation: token }),
    ).toMatchObject({
      error: {
        code: 'FORBIDDEN',
        message: `this delegation was issued to '${ownerId}', not to this connection's principal`,
      },
    });
    expect(
      await orchestrator.request({ action: 'coordinator', id: 3, agent: 'billing-eu', task: 't', delegation: token }),
    ).toMatchObject({ ok: true });
    expect(((billing.received.at(-1) as Frame).from as Record<string, unknown>).onBehalfOf).toBe(principalId);
    // Naming the principal binds to it alone, even before the agent is registered.
    const named = await alice.request({
      action: 'delegate',
      id: 4,
      agent: 'not-yet-running',
      permissions: ['agent:invoke:billing-eu'],
      principal: ownerId,
    });
    expect(named).toMatchObject({ ok: true });
    expect(
      await alice.request({
        action: 'delegate',
        id: 5,
        agent: 'not-yet-running',
        permissions: ['agent:invoke:billing-eu'],
      }),
    ).toMatchObject({
      error: { code: 'BAD_REQUEST', details: [{ field: 'principal' }] },
    });
    await Promise.all([alice.close(), orchestrator.close(), thief.close(), billing.close()]);
  });

  it("ends a minter's delegations when its API key is revoked", async () => {
    const billing = await startAgent(cluster.gateways[1]!.url, { name: 'billing-eu', headers: { 'x-api-key': ADMIN } });
    const bobKey = await createApiKey(cluster.gateways[0]!.httpUrl, ADMIN, { name: 'bob', role: 'caller' });
    const bob = await as(bobKey, 0);
    const orchestrator = await asAgent('orchestrator', 1);
    const minted = await bob.request({
      action: 'delegate',
      id: 1,
      agent: 'orchestrator',
      permissions: ['agent:invoke:*'],
    });
    const token = (minted.result as { token: string }).token;
    expect(
      await orchestrator.request({ action: 'coordinator', id: 2, agent: 'billing-eu', task: 't', delegation: token }),
    ).toMatchObject({ ok: true });
    const revoked = await runCli([
      'apikey',
      'revoke',
      bobKey.slice(4, 16),
      '--url',
      cluster.gateways[0]!.httpUrl,
      '--api-key',
      ADMIN,
    ]);
    expect(revoked.code).toBe(0);
    expect(
      await orchestrator.request({ action: 'coordinator', id: 3, agent: 'billing-eu', task: 't', delegation: token }),
    ).toMatchObject({
      error: {
        code: 'FORBIDDEN',
        message: `the delegation was minted by API key '${bobKey.slice(4, 16)}', which has been revoked since`,
      },
    });
    await Promise.all([bob.close(), orchestrator.close(), billing.close()]);
  });
});
