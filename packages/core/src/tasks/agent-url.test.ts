import { GatewayError } from '@openclaw/protocol';
import { checkAgentUrl, isPrivateAddress } from './agent-url';

describe('isPrivateAddress', () => {
  it.each([
    ['127.0.0.1', 'loopback'],
    ['10.1.2.3', 'private'],
    ['172.16.0.1', 'private'],
    ['192.168.1.1', 'private'],
    ['169.254.169.254', 'link-local (cloud metadata)'],
    ['100.64.0.1', 'CGNAT'],
    ['0.0.0.0', 'this host'],
    ['192.0.0.8', 'IETF protocol assignments'],
    ['192.0.2.1', 'documentation'],
    ['198.18.0.1', 'benchmarking'],
    ['224.0.0.1', 'multicast'],
    ['255.255.255.255', 'broadcast'],
  ])('refuses the IPv4 address %s (%s)', (address) => {
    expect(isPrivateAddress(address)).toBe(true);
  });

  it.each([
    ['::', 'unspecified'],
    ['::1', 'loopback'],
    ['::ffff:127.0.0.1', 'IPv4-mapped loopback'],
    ['::ffff:7f00:1', 'IPv4-mapped loopback, hex'],
    ['::FFFF:A9FE:A9FE', 'IPv4-mapped metadata address, upper case'],
    ['0:0:0:0:0:ffff:10.0.0.1', 'IPv4-mapped private, uncompressed'],
    ['::ffff:0:127.0.0.1', 'IPv4-translated loopback'],
    ['::127.0.0.1', 'IPv4-compatible loopback'],
    ['::7f00:1', 'IPv4-compatible loopback, hex'],
    ['::a9fe:a9fe', 'IPv4-compatible metadata address'],
    ['64:ff9b::7f00:1', 'NAT64 of 127.0.0.1'],
    ['64:ff9b::a9fe:a9fe', 'NAT64 of 169.254.169.254'],
    ['64:ff9b::10.0.0.1', 'NAT64 of 10.0.0.1, dotted'],
    ['64:ff9b:1::a00:1', 'local-use NAT64 prefix'],
    ['64:ff9b:1:a00:1::', 'local-use NAT64, /48 layout'],
    ['64:ff9b:0:0:1::', 'NAT64 /32 outside the well-known /96'],
    ['2002:7f00:1::', '6to4 of 127.0.0.1'],
    ['2002:a9fe:a9fe::1', '6to4 of 169.254.169.254'],
    ['2002:c0a8:101:1::1', '6to4 of 192.168.1.1'],
    ['2001:0:4136:e378:8000:63bf:80ff:fffe', 'Teredo, client 127.0.0.1 (inverted)'],
    ['2001:0:4136:e378:8000:63bf:f5ff:fffe', 'Teredo, client 10.0.0.1 (inverted)'],
    ['2001:0:a00:1:8000:63bf:f7f7:f7f7', 'Teredo, server 10.0.0.1'],
    ['2001:db8::1', 'documentation'],
    ['3fff::1', 'documentation (RFC 9637)'],
    ['2001:2::1', 'benchmarking'],
    ['100::1', 'discard-only'],
    ['fc00::1', 'unique-local'],
    ['fd12:3456:789a::1', 'unique-local'],
    ['fe80::1', 'link-local'],
    ['fe80::1%eth0', 'link-local with a zone'],
    ['fec0::1', 'site-local (deprecated)'],
    ['ff02::1', 'multicast'],
    ['5f00::1', 'SRv6 SIDs, outside global unicast'],
  ])('refuses the IPv6 address %s (%s)', (address) => {
    expect(isPrivateAddress(address)).toBe(true);
  });

  it.each([
    ['8.8.8.8', 'public IPv4'],
    ['1.1.1.1', 'public IPv4'],
    ['2606:4700:4700::1111', 'global unicast'],
    ['2a00:1450:4001:81c::200e', 'global unicast'],
    ['::ffff:8.8.8.8', 'IPv4-mapped public'],
    ['::ffff:808:808', 'IPv4-mapped public, hex'],
    ['64:ff9b::808:808', 'NAT64 of a public address'],
    ['2002:808:808::1', '6to4 of a public address'],
    ['2001:0:4136:e378:8000:63bf:f7f7:f7f7', 'Teredo, public server and client (8.8.8.8)'],
  ])('accepts %s (%s)', (address) => {
    expect(isPrivateAddress(address)).toBe(false);
  });

  it('is false for host names, which are checked once resolved', () => {
    expect(isPrivateAddress('localhost')).toBe(false);
  });
});

describe('checkAgentUrl', () => {
  const refusal = (url: string) => checkAgentUrl(url, { allowPrivate: false, resolve: false });

  it.each([
    'http://[64:ff9b::7f00:1]/',
    'http://[64:ff9b::a9fe:a9fe]/latest/meta-data',
    'http://[64:ff9b::127.0.0.1]:8080/',
    'http://[2002:7f00:1::]/',
    'http://[::127.0.0.1]/',
    'http://[::ffff:127.0.0.1]/',
    'http://[::ffff:7f00:1]/',
    'http://[::ffff:0:127.0.0.1]/',
    'http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/',
    'http://[64:ff9b:1::a00:1]/',
    'http://[::]/',
    'http://0x7f000001/',
    'http://2852039166/',
    'https://127.1/',
  ])('refuses %s with FORBIDDEN', async (url) => {
    const error = await refusal(url).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GatewayError);
    expect(error).toMatchObject({
      code: 'FORBIDDEN',
      message: 'url: HTTP agents may not target loopback, private or link-local addresses here',
    });
  });

  it('resolves host names at registration and refuses one with a private address (localhost)', async () => {
    await expect(checkAgentUrl('http://localhost:8000/', { allowPrivate: false })).rejects.toMatchObject({
      code: 'FORBIDDEN',
    });
  });

  it('accepts public literal addresses, and private ones when allowed', async () => {
    expect((await refusal('http://[64:ff9b::808:808]/a')).href).toBe('http://[64:ff9b::808:808]/a');
    expect((await refusal('https://8.8.8.8/')).href).toBe('https://8.8.8.8/');
    expect((await checkAgentUrl('http://[64:ff9b::7f00:1]/', { allowPrivate: true })).hostname).toBe(
      '[64:ff9b::7f00:1]',
    );
  });
});
