import * as net from 'node:net';

/**
 * A TCP port that was free on `host` a moment ago: the kernel picks one for a listener on port 0,
 * which is closed again before this resolves.
 *
 * Another process may take the port before the caller binds it, so whoever binds it must retry on
 * `EADDRINUSE` (as `RedisServerProcess` does). Processes that can listen on port 0 themselves
 * (the gateway) should do that instead.
 *
 * @example
 * ```ts
 * const port = await freePort();
 * ```
 */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen({ port: 0, host, exclusive: true }, () => {
      const address = server.address();
      if (address === null || typeof address === 'string') {
        server.close();
        reject(new Error(`could not read the port of a listener on ${host}`));
        return;
      }
      server.close((error) => (error ? reject(error) : resolve(address.port)));
    });
  });
}
