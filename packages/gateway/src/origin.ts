import type { GatewayConfig } from '@openclaw/core';

const LOOPBACK_ORIGIN = /^https?:\/\/(localhost|127\.\d+\.\d+\.\d+|\[::1\])(:\d+)?$/i;

/**
 * Whether a browser Origin may connect. No Origin header means not a browser: allowed (credentials
 * still apply). Otherwise the origin must be listed in OPENCLAW_ALLOWED_ORIGINS (or the list is `*`);
 * in development (auth "none") loopback origins are always allowed.
 */
export function isOriginAllowed(
  origin: string | undefined,
  config: Pick<GatewayConfig, 'allowedOrigins' | 'auth'>,
): boolean {
  if (origin === undefined) return true;
  if (config.allowedOrigins.includes('*') || config.allowedOrigins.includes(origin)) return true;
  return config.auth === 'none' && LOOPBACK_ORIGIN.test(origin);
}
