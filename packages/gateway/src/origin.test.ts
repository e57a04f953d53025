import { isOriginAllowed } from './origin';

describe('isOriginAllowed', () => {
  const apikey = { allowedOrigins: [] as string[], auth: 'apikey' as const };

  it('lets non-browsers and listed origins in', () => {
    expect(isOriginAllowed(undefined, apikey)).toBe(true);
    expect(isOriginAllowed('https://ops.example.com', { ...apikey, allowedOrigins: ['https://ops.example.com'] })).toBe(
      true,
    );
    expect(isOriginAllowed('https://evil.example', { ...apikey, allowedOrigins: ['*'] })).toBe(true);
  });

  it("lets a page from the gateway's own host in when credentials are required (Mission Control)", () => {
    expect(isOriginAllowed('http://gw.internal:18789', apikey, 'gw.internal:18789')).toBe(true);
    expect(isOriginAllowed('https://GW.example.com', apikey, 'gw.example.com')).toBe(true);
    expect(isOriginAllowed('http://gw.internal:18789', apikey, 'gw.internal:8080')).toBe(false);
    expect(isOriginAllowed('https://evil.example', apikey, 'gw.example.com')).toBe(false);
    expect(isOriginAllowed('not a url', apikey, 'gw.example.com')).toBe(false);
    expect(isOriginAllowed('http://gw.internal', apikey)).toBe(false);
  });

  it('without authentication, only loopback origins: a rebound DNS name matching Host is not enough', () => {
    const none = { allowedOrigins: [] as string[], auth: 'none' as const };
    expect(isOriginAllowed('http://localhost:18789', none, 'localhost:18789')).toBe(true);
    expect(isOriginAllowed('http://127.0.0.1:3000', none, 'localhost:18789')).toBe(true);
    expect(isOriginAllowed('http://rebind.evil.example:18789', none, 'rebind.evil.example:18789')).toBe(false);
  });
});
