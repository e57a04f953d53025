import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, type JWTPayload, type KeyLike, SignJWT } from 'jose';

/**
 * A real token issuer for tests: an HTTP server on a free loopback port with an OIDC discovery
 * document and a JWKS, and a signer for its RS256 key.
 */
export class TokenIssuer {
  private constructor(
    private readonly server: Server,
    readonly issuer: string,
    readonly kid: string,
    readonly privateKey: KeyLike,
    /** The public key as PEM (for the "HMAC signed with the public key" attack). */
    readonly publicKeyPem: string,
  ) {}

  /** Starts an issuer whose key has id `kid`. */
  static async start(kid = 'k1'): Promise<TokenIssuer> {
    const { publicKey, privateKey } = await generateKeyPair('RS256', { extractable: true });
    const jwk = { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' };
    const pem = (publicKey as unknown as import('node:crypto').KeyObject)
      .export({ type: 'spki', format: 'pem' })
      .toString();
    let issuer = '';
    const server = createServer((req, res) => {
      const body =
        req.url === '/.well-known/openid-configuration'
          ? { issuer, jwks_uri: `${issuer}/jwks.json` }
          : req.url === '/jwks.json'
            ? { keys: [jwk] }
            : undefined;
      res.writeHead(body ? 200 : 404, { 'content-type': 'application/json' }).end(JSON.stringify(body ?? {}));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    return new TokenIssuer(server, issuer, kid, privateKey, pem);
  }

  /**
   * An RS256 token from this issuer. `iat` defaults to now, `exp` to an hour from now; `exp: null`
   * leaves it out.
   */
  sign(
    claims: JWTPayload,
    options: { kid?: string; iss?: string; aud?: string; iat?: number; exp?: number | null; nbf?: number } = {},
  ): Promise<string> {
    const jwt = new SignJWT(claims)
      .setProtectedHeader({ alg: 'RS256', kid: options.kid ?? this.kid })
      .setIssuer(options.iss ?? this.issuer)
      .setAudience(options.aud ?? 'openclaw')
      .setIssuedAt(options.iat);
    if (options.exp !== null) jwt.setExpirationTime(options.exp ?? Math.floor(Date.now() / 1000) + 3600);
    if (options.nbf !== undefined) jwt.setNotBefore(options.nbf);
    return jwt.sign(this.privateKey);
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }
}
