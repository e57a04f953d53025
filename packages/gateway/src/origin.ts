import type { GatewayConfig } from '@openclaw/core';

const LOOPBACK_ORIGIN = /^https?:\/\/(localhost|127\.\d+\.\d+\.\d+|\[::1\])(:\d+)?$/i;

/**
 * Whether a browser Origin may connect. No Origin header means not a browser: allowed (credentials
 * still apply). Otherwise the origin must be listed in OPENCLAW_ALLOWED_ORIGINS (or the list is `*`),
 * or be the gateway's own (the page came from this host, as Mission Control does) when credentials
 * are required; in development (auth "none") loopback origins are always allowed.
 *
 * The own-origin rule is not offered without authentication: a DNS-rebinding page can make its
 * Origin and the Host header agree, but it cannot know an API key.
 */
export function isOriginAllowed(
  origin: string | undefined,
  config: Pick<GatewayConfig, 'allowedOrigins' | 'auth'>,
  host?: string,
): boolean {
  if (origin === undefined) return true;
  if (config.allowedOrigins.includes('*') || config.allowedOrigins.includes(origin)) return true;
  if (config.auth === 'none') return LOOPBACK_ORIGIN.test(origin);
  return host !== undefined && hostOf(origin) === host.toLowerCase();
}

/** The `host[:port]` of an origin, as a Host header carries it. */
function hostOf(origin: string): string | undefined {
  try {
    return new URL(origin).host.toLowerCase();
  } catch {
    return undefined;
  }
}
