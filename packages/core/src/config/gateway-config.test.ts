import { ConfigError, loadGatewayConfig, loadWorkerConfig } from './gateway-config';

describe('loadGatewayConfig', () => {
  it('has authentication on by default, and refuses to start without keys', () => {
    expect(() => loadGatewayConfig()).toThrow(/OPENCLAW_AUTH=apikey needs OPENCLAW_API_KEY_SECRET .* or static keys/);
    expect(loadGatewayConfig({ env: { OPENCLAW_API_KEY_SECRET: 's'.repeat(32) } }).auth).toBe('apikey');
  });

  it('has documented defaults', () => {
    const c = loadGatewayConfig({ flags: { auth: 'none' } });
    expect(c.port).toBe(18789);
    expect(c.host).toBe('127.0.0.1');
    expect(c.redisUrl).toBe('redis://127.0.0.1:6379');
    expect(c.auth).toBe('none');
    expect(c.maxFrameBytes).toBe(1048576);
    expect(c.heartbeatMs).toBe(15000);
    expect(c.replicaId).toMatch(/^gw-[0-9a-f]{8}$/);
    expect(Object.isFrozen(c)).toBe(true);
  });

  it('reads linked regions, and names what is wrong with them', () => {
    const secret = 'r'.repeat(32);
    const c = loadGatewayConfig({
      flags: { auth: 'none' },
      env: {
        OPENCLAW_REGION: 'eu-west',
        OPENCLAW_REGION_PEERS: 'us-east=https://gw.us.example.com/, ap=http://10.0.0.5:18789',
        OPENCLAW_REGION_SECRET: secret,
      },
    });
    expect(c.regionPeers).toEqual([
      { name: 'us-east', url: 'https://gw.us.example.com' },
      { name: 'ap', url: 'http://10.0.0.5:18789' },
    ]);
    const load = (env: Record<string, string>) => () => loadGatewayConfig({ flags: { auth: 'none' }, env });
    expect(load({ OPENCLAW_REGION_PEERS: 'us=http://a:1' })).toThrow(
      /OPENCLAW_REGION_PEERS needs OPENCLAW_REGION .* and OPENCLAW_REGION_SECRET/,
    );
    expect(
      load({ OPENCLAW_REGION: 'eu', OPENCLAW_REGION_SECRET: secret, OPENCLAW_REGION_PEERS: 'eu=http://a:1' }),
    ).toThrow(/names this region \('eu'\) itself/);
    expect(load({ OPENCLAW_REGION_PEERS: 'us' })).toThrow(/OPENCLAW_REGION_PEERS.*"us": expected name=url/);
    expect(load({ OPENCLAW_REGION_PEERS: 'us=ftp://a' })).toThrow(/expected an http:\/\/ or https:\/\/ URL/);
    expect(load({ OPENCLAW_REGION_PEERS: 'us=http://a/x' })).toThrow(/with no path/);
    expect(load({ OPENCLAW_REGION_PEERS: 'us=http://a,us=http://b' })).toThrow(/region 'us' is named twice/);
    expect(load({ OPENCLAW_REGION: 'EU West' })).toThrow(/OPENCLAW_REGION.*lowercase letters/);
    expect(load({ OPENCLAW_REGION_SECRET: 'short' })).toThrow(/OPENCLAW_REGION_SECRET.*at least 32 characters/);
  });

  it('lets flags override the environment', () => {
    const c = loadGatewayConfig({
      env: { OPENCLAW_PORT: '1000', REDIS_URL: 'redis://r:1', OPENCLAW_AUTH: 'none' },
      flags: { port: '2000' },
    });
    expect(c.port).toBe(2000);
    expect(c.redisUrl).toBe('redis://r:1');
  });

  it('names the bad variable and what is allowed', () => {
    expect(() => loadGatewayConfig({ env: { OPENCLAW_PORT: 'abc' } })).toThrow(
      /OPENCLAW_PORT: expected an integer from 0 to 65535 \(got "abc"\)/,
    );
    expect(() => loadGatewayConfig({ flags: { auth: 'magic' } })).toThrow(/--auth: expected "none", "apikey" or "jwt"/);
    expect(() => loadGatewayConfig({ env: { REDIS_URL: 'http://x' } })).toThrow(/REDIS_URL: expected redis:\/\//);
  });

  it('refuses auth none off loopback unless told to', () => {
    expect(() => loadGatewayConfig({ flags: { host: '0.0.0.0', auth: 'none' } })).toThrow(ConfigError);
    expect(
      loadGatewayConfig({ flags: { host: '0.0.0.0', auth: 'none' }, env: { OPENCLAW_ALLOW_INSECURE_BIND: 'true' } })
        .host,
    ).toBe('0.0.0.0');
    expect(loadGatewayConfig({ flags: { host: '::1', auth: 'none' } }).host).toBe('::1');
  });

  it('needs keys for apikey auth and never echoes them', () => {
    expect(() => loadGatewayConfig({ flags: { auth: 'apikey' } })).toThrow(
      /needs OPENCLAW_API_KEY_SECRET .* or static keys/,
    );
    expect(
      loadGatewayConfig({ flags: { auth: 'apikey' }, env: { OPENCLAW_API_KEY_SECRET: 's'.repeat(32) } }).auth,
    ).toBe('apikey');
    expect(() => loadGatewayConfig({ env: { OPENCLAW_API_KEY_SECRET: 'short' } })).toThrow(
      /OPENCLAW_API_KEY_SECRET: expected at least 32 characters \(got "<redacted>"\)/,
    );
    let message = '';
    try {
      loadGatewayConfig({ flags: { auth: 'apikey', 'api-keys': 'short-secret' } });
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toMatch(/at least 16 characters/);
    expect(message).not.toContain('short-secret');
  });

  it('resolves whether HTTP agents may be private', () => {
    expect(loadGatewayConfig({ flags: { auth: 'none' } }).httpAgentsAllowPrivateResolved).toBe(true);
    const keyed = { auth: 'apikey', 'api-keys': 'k'.repeat(20) };
    expect(loadGatewayConfig({ flags: keyed }).httpAgentsAllowPrivateResolved).toBe(false);
  });

  it('gives per-role limits only to the roles it names, not to roles named like Object members', () => {
    const c = loadGatewayConfig({ flags: { auth: 'none' }, env: { OPENCLAW_ROLE_RATES: 'caller=100/200/5' } });
    expect(c.roleRates.caller).toEqual({ rate: 100, burst: 200, connections: 5 });
    for (const role of ['constructor', '__proto__', 'toString']) expect(c.roleRates[role]).toBeUndefined();
  });

  it('reads the log format: auto by default, the flag over OPENCLAW_LOG_FORMAT, for gateway and worker alike', () => {
    expect(loadGatewayConfig({ flags: { auth: 'none' } }).logFormat).toBe('auto');
    expect(loadGatewayConfig({ flags: { auth: 'none' }, env: { OPENCLAW_LOG_FORMAT: 'json' } }).logFormat).toBe('json');
    expect(
      loadGatewayConfig({ flags: { auth: 'none', 'log-format': 'pretty' }, env: { OPENCLAW_LOG_FORMAT: 'json' } })
        .logFormat,
    ).toBe('pretty');
    expect(loadWorkerConfig({ env: { OPENCLAW_LOG_FORMAT: 'pretty' } }).logFormat).toBe('pretty');
    expect(loadWorkerConfig({ flags: { 'log-format': 'json' } }).logFormat).toBe('json');
    expect(() => loadGatewayConfig({ flags: { auth: 'none', 'log-format': 'text' } })).toThrow(
      /--log-format: expected "auto", "pretty" or "json" \(got "text"\)/,
    );
    expect(() => loadWorkerConfig({ env: { OPENCLAW_LOG_FORMAT: 'color' } })).toThrow(
      /OPENCLAW_LOG_FORMAT: expected "auto", "pretty" or "json" \(got "color"\)/,
    );
  });
});
