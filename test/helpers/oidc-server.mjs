// A real OAuth 2.0 / OIDC authorization server for tests (oidc-provider), run as a child process:
//   node test/helpers/oidc-server.mjs <port>
// Clients: `svc` (client credentials grant) and `gateway` (the resource server, which introspects).
// Resources: urn:openclaw (opaque tokens, 60 s), urn:short (opaque, 1 s), urn:other (another audience).
import Provider from 'oidc-provider';

const port = Number(process.argv[2]);
const issuer = `http://127.0.0.1:${port}`;
const resources = {
  'urn:openclaw': { ttl: 60 },
  'urn:short': { ttl: 1 },
  'urn:other': { ttl: 60 },
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
          audience: resource,
          accessTokenTTL: info.ttl,
          accessTokenFormat: 'opaque',
        };
      },
    },
  },
});
provider.on('server_error', (_ctx, error) => process.stderr.write(`oidc server_error: ${error.message}\n`));
provider.listen(port, '127.0.0.1', () => process.stdout.write(`ready ${issuer}\n`));
