import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';
import { GatewayError } from '@openclaw/protocol';

/**
 * IPv4 ranges that are not globally reachable (IANA special-purpose registry): this host, private,
 * CGNAT, loopback, link-local, IETF protocol assignments, documentation, the deprecated 6to4 relay
 * anycast, benchmarking, multicast and reserved (with broadcast).
 */
const PRIVATE_V4 = new BlockList();
for (const [net, bits] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.88.99.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const) {
  PRIVATE_V4.addSubnet(net, bits, 'ipv4');
}

/** Global unicast, the only IPv6 space an HTTP agent may be in (less the blocks below). */
const GLOBAL_V6 = new BlockList();
GLOBAL_V6.addSubnet('2000::', 3, 'ipv6');

/**
 * Special-purpose blocks inside global unicast that are not public hosts: IETF protocol assignments
 * (2001::/23; Teredo, inside it, is classified by its client address) and documentation
 * (2001:db8::/32, 3fff::/20). Everything outside 2000::/3 is refused: unspecified, loopback,
 * discard-only, unique-local, link-local, site-local, multicast, unallocated, and NAT64's
 * 64:ff9b::/32 beyond its well-known /96, so the local-use 64:ff9b:1::/48 too (where its IPv4
 * address sits depends on the operator's prefix length, and its translator is local by definition).
 */
const SPECIAL_V6 = new BlockList();
for (const [net, bits] of [
  ['2001::', 23],
  ['2001:db8::', 32],
  ['3fff::', 20],
] as const) {
  SPECIAL_V6.addSubnet(net, bits, 'ipv6');
}

/**
 * Whether an IP address is loopback, private, link-local or otherwise not public. IPv6 addresses that
 * carry an IPv4 address are classified by it, in every spelling: IPv4-mapped (`::ffff:a.b.c.d`, also
 * written `::ffff:7f00:1`), IPv4-translated (`::ffff:0:a.b.c.d`), IPv4-compatible (`::a.b.c.d`, which
 * makes `::` and `::1` private too), NAT64 (`64:ff9b::a.b.c.d`), 6to4 (`2002:AABB:CCDD::/48`) and
 * Teredo (`2001:0:SSSS:SSSS:…:CCCC:CCCC`, its client address inverted; private if either its server or
 * its client is). Other IPv6 addresses are public only in global unicast (2000::/3) outside the
 * special-purpose blocks. An address with a zone (`fe80::1%eth0`) is never public.
 * @example
 * isPrivateAddress('64:ff9b::a9fe:a9fe'); // true: NAT64 of 169.254.169.254
 * isPrivateAddress('2606:4700::1111'); // false
 */
export function isPrivateAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 4) return PRIVATE_V4.check(address, 'ipv4');
  if (family !== 6) return false;
  if (address.includes('%')) return true;
  const embedded = embeddedIPv4(ipv6Words(address));
  if (embedded !== undefined) return embedded.some((v4) => PRIVATE_V4.check(v4, 'ipv4'));
  return !GLOBAL_V6.check(address, 'ipv6') || SPECIAL_V6.check(address, 'ipv6');
}

/** The eight 16-bit groups of a valid IPv6 address (without zone), a trailing dotted quad included. */
function ipv6Words(address: string): number[] {
  let text = address.toLowerCase();
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (dotted) {
    const [a, b, c, d] = dotted.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, dotted.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const parse = (part: string): number[] => (part === '' ? [] : part.split(':').map((g) => Number.parseInt(g, 16)));
  const front = parse(head);
  if (tail === undefined) return front;
  const back = parse(tail);
  return [...front, ...new Array<number>(8 - front.length - back.length).fill(0), ...back];
}

/** The IPv4 addresses an IPv6 address stands for, if it is one of the forms that embed one. */
function embeddedIPv4(w: number[]): string[] | undefined {
  const v4 = (hi: number, lo: number): string => `${hi >> 8}.${hi & 0xff}.${lo >> 8}.${lo & 0xff}`;
  const zero = (from: number, to: number): boolean => w.slice(from, to).every((g) => g === 0);
  // IPv4-mapped ::ffff:0:0/96, IPv4-translated ::ffff:0:0:0/96, IPv4-compatible ::/96.
  if (zero(0, 5) && w[5] === 0xffff) return [v4(w[6]!, w[7]!)];
  if (zero(0, 4) && w[4] === 0xffff && w[5] === 0) return [v4(w[6]!, w[7]!)];
  if (zero(0, 6)) return [v4(w[6]!, w[7]!)];
  // NAT64, well-known prefix 64:ff9b::/96 (RFC 6052).
  if (w[0] === 0x64 && w[1] === 0xff9b && zero(2, 6)) return [v4(w[6]!, w[7]!)];
  // 6to4 2002::/16 (RFC 3056): the site's IPv4 address follows the prefix.
  if (w[0] === 0x2002) return [v4(w[1]!, w[2]!)];
  // Teredo 2001::/32 (RFC 4380): server address, then the client's, every bit inverted.
  if (w[0] === 0x2001 && w[1] === 0) return [v4(w[2]!, w[3]!), v4(~w[6]! & 0xffff, ~w[7]! & 0xffff)];
  return undefined;
}

/**
 * What an agent URL speaks: `mcp+http(s)://...` is an outside MCP server (Streamable HTTP), and
 * `a2a+http(s)://...` an outside A2A agent (its JSON-RPC endpoint; at registration, its Agent Card),
 * at the URL without the prefix; any other URL is a plain HTTP agent.
 */
export function agentProtocol(raw: string): { protocol: 'http' | 'mcp' | 'a2a'; url: string } {
  if (raw.startsWith('mcp+')) return { protocol: 'mcp', url: raw.slice(4) };
  if (raw.startsWith('a2a+')) return { protocol: 'a2a', url: raw.slice(4) };
  return { protocol: 'http', url: raw };
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
