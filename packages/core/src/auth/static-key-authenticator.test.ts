import { GatewayError } from '@openclaw/protocol';
import { hasPermission } from './principal';
import { extractCredential, StaticKeyAuthenticator } from './static-key-authenticator';

const KEY = 'k-0123456789abcdef';

describe('StaticKeyAuthenticator', () => {
  const auth = new StaticKeyAuthenticator([KEY, 'another-key-0123456789']);

  it.each([
    [{ authorization: `Bearer ${KEY}` }, '/'],
    [{ 'x-api-key': KEY }, '/'],
    [{}, `/?api_key=${KEY}`],
    [{}, `/ws?access_token=${KEY}`],
  ])('accepts the key from %j %s', (headers, url) => {
    const principal = auth.authenticate({ headers, url });
    expect(principal.id).toMatch(/^apikey:[0-9a-f]{12}$/);
    expect(principal.id).not.toContain(KEY);
  });

  it('refuses a missing or wrong key with UNAUTHENTICATED', () => {
    for (const request of [
      { headers: {}, url: '/' },
      { headers: { authorization: 'Bearer nope' }, url: '/' },
      { headers: { authorization: 'Basic abc' }, url: `/?api_key=${KEY}` },
    ]) {
      expect(() => auth.authenticate(request)).toThrow(GatewayError);
      try {
        auth.authenticate(request);
      } catch (e) {
        expect((e as GatewayError).code).toBe('UNAUTHENTICATED');
      }
    }
  });

  it('takes the first credential present', () => {
    expect(extractCredential({ headers: { authorization: 'Bearer a', 'x-api-key': 'b' }, url: '/?api_key=c' })).toBe(
      'a',
    );
    expect(extractCredential({ headers: { 'x-api-key': 'b' }, url: '/?api_key=c' })).toBe('b');
  });
});

describe('hasPermission', () => {
  const p = { id: 'p', tenant: 't', roles: [], permissions: new Set(['agent:invoke:*', 'task:read']) };
  it('matches exact and wildcard grants only', () => {
    expect(hasPermission(p, 'agent:invoke:x')).toBe(true);
    expect(hasPermission(p, 'task:read')).toBe(true);
    expect(hasPermission(p, 'agent:register:x')).toBe(false);
    expect(hasPermission(p, 'admin')).toBe(false);
  });
});
