// A real OAuth 2.0 / OIDC authorization server for tests (oidc-provider), run as a child process:
//   node test/helpers/oidc-server.mjs <port>
// Clients: `svc` (client credentials grant) and `gateway` (the resource server, which introspects).
// Resources: urn:openclaw (opaque tokens, 60 s), urn:short (opaque, 1 s), urn:other (another audience),
// and, each for the audience urn:openclaw: urn:long (2 days), urn:acme (claim tenant: "acme"),
// urn:bad-tenant (a tenant claim that is not a tenant name).
import Provider from 'oidc-provider';

const port = Number(process.argv[2]);
const issuer = `http://127.0.0.1:${port}`;
const resources = {
  'urn:openclaw': { ttl: 60 },
  'urn:short': { ttl: 1 },
  'urn:other': { ttl: 60 },
  'urn:long': { ttl: 2 * 86_400, audience: 'urn:openclaw' },
  'urn:acme': { ttl: 60, audience: 'urn:openclaw', extra: { tenant: 'acme' } },
  'urn:bad-tenant': { ttl: 60, audience: 'urn:openclaw', extra: { tenant: 'Default Operators' } },
};

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: 'svc',
      client_secret: 'svc-secret',
      grant_types: ['client_credentials'],
      redirect_uris: [],
      response_types: [],
    },
    { client_id: 'gateway', client_secret: 'gateway-secret', grant_types: [], redirect_uris: [], response_types: [] },
  ],
  // Extra claims of the token, returned by introspection.
  extraTokenClaims: (_ctx, token) => resources[token.resourceServer?.identifier()]?.extra,
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => 'urn:openclaw',
      useGrantedResource: () => true,
      getResourceServerInfo: (_ctx, resource) => {
        const info = resources[resource];
        if (!info) throw new Error(`unknown resource ${resource}`);
        return {
          scope: 'agent:invoke:echo',
          audience: info.audience ?? resource,
          accessTokenTTL: info.ttl,
          accessTokenFormat: 'opaque',
        };
      },
    },
  },
});
provider.on('server_error', (_ctx, error) => process.stderr.write(`oidc server_error: ${error.message}\n`));
provider.listen(port, '127.0.0.1', () => process.stdout.write(`ready ${issuer}\n`));
