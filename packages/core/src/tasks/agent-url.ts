import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';
import { GatewayError } from '@openclaw/protocol';

/** Loopback, private, link-local, CGNAT and other non-public ranges an HTTP agent may not point at by default. */
const PRIVATE = new BlockList();
for (const [net, bits] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.168.0.0', 16],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const) {
  PRIVATE.addSubnet(net, bits, 'ipv4');
}
for (const [net, bits] of [
  ['::', 128],
  ['::1', 128],
  ['fc00::', 7],
  ['fe80::', 10],
  ['ff00::', 8],
] as const) {
  PRIVATE.addSubnet(net, bits, 'ipv6');
}

/** Whether an IP address is loopback, private, link-local or otherwise not public. */
export function isPrivateAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 0) return false;
  if (family === 6 && address.toLowerCase().startsWith('::ffff:')) {
    const v4 = address.slice(7);
    if (isIP(v4) === 4) return PRIVATE.check(v4, 'ipv4');
  }
  return PRIVATE.check(address, family === 4 ? 'ipv4' : 'ipv6');
}

/**
 * Checks the URL of an HTTP agent: http or https, no credentials in it, and (unless allowed) a host
 * that resolves to public addresses only, so a client cannot make the gateway call into its own
 * network (SSRF). Called at registration; before every call the HTTP agent client checks again, with
 * `resolve: false`, and checks the resolved address when it connects (so DNS rebinding cannot pass).
 * @throws {GatewayError} `BAD_REQUEST` naming what is wrong.
 */
export async function checkAgentUrl(raw: string, options: { allowPrivate: boolean; resolve?: boolean }): Promise<URL> {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new GatewayError('BAD_REQUEST', 'url: not a valid URL', {
      details: [{ field: 'url', message: 'not a URL' }],
    });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new GatewayError('BAD_REQUEST', 'url: only http and https agent URLs are allowed', {
      details: [{ field: 'url', message: 'expected http or https' }],
    });
  }
  if (url.username !== '' || url.password !== '') {
    throw new GatewayError('BAD_REQUEST', 'url: credentials in agent URLs are not allowed', {
      details: [{ field: 'url', message: 'no user:password@ in the URL' }],
    });
  }
  if (options.allowPrivate) return url;
  const host = url.hostname.replace(/^\[|\]$/g, '');
  // Without `resolve`, only literal addresses are checked here: the connection checks the rest.
  if (options.resolve === false && isIP(host) === 0) return url;
  let addresses: string[];
  try {
    addresses = isIP(host) !== 0 ? [host] : (await lookup(host, { all: true })).map((a) => a.address);
  } catch {
    throw new GatewayError('BAD_REQUEST', `url: the host ${JSON.stringify(host)} does not resolve`, {
      details: [{ field: 'url', message: 'host does not resolve' }],
    });
  }
  if (addresses.some(isPrivateAddress)) {
    throw new GatewayError(
      'FORBIDDEN',
      'url: HTTP agents may not target loopback, private or link-local addresses here',
      {
        details: [{ field: 'url', message: 'private address (set OPENCLAW_HTTP_AGENTS_ALLOW_PRIVATE=true to allow)' }],
      },
    );
  }
  return url;
}
