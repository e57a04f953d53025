import { createHash, timingSafeEqual } from 'node:crypto';
import { GatewayError } from '@openclaw/protocol';
import { ANONYMOUS, type Principal } from './principal';

/** Credentials as a request carries them. */
export interface RequestCredentials {
  headers: Readonly<Record<string, string | string[] | undefined>>;
  /** The request URL (path and query). */
  url: string;
}

/** Turns a request's credentials into a principal, or refuses it. */
export interface Authenticator {
  /** @throws {GatewayError} `UNAUTHENTICATED` when credentials are missing or wrong. */
  authenticate(request: RequestCredentials): Principal | Promise<Principal>;
}

/**
 * The credential of a request, first present wins: `Authorization: Bearer`, `X-API-Key`, then the
 * `access_token` / `api_key` query parameters (browsers cannot set headers on a WebSocket).
 */
export function extractCredential(request: RequestCredentials): string | undefined {
  const auth = header(request.headers, 'authorization');
  if (auth !== undefined) {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(auth);
    return match?.[1] ?? '';
  }
  const key = header(request.headers, 'x-api-key');
  if (key !== undefined) return key;
  const query = new URL(request.url, 'http://gateway.invalid').searchParams;
  return query.get('access_token') ?? query.get('api_key') ?? undefined;
}

/** Authentication off: everyone is {@link ANONYMOUS}. Only allowed on loopback (see config). */
export class NoAuthenticator implements Authenticator {
  authenticate(): Principal {
    return ANONYMOUS;
  }
}

/**
 * Static API keys from configuration. Keys are compared as SHA-256 digests in constant time; the
 * principal id carries a digest prefix, never the key.
 */
export class StaticKeyAuthenticator implements Authenticator {
  private readonly digests: Buffer[];

  constructor(keys: readonly string[]) {
    this.digests = keys.map(digest);
  }

  authenticate(request: RequestCredentials): Principal {
    const credential = extractCredential(request);
    if (credential === undefined || credential === '') {
      throw new GatewayError(
        'UNAUTHENTICATED',
        'credentials required: send an API key (Authorization: Bearer or X-API-Key)',
      );
    }
    const candidate = digest(credential);
    let found: Buffer | undefined;
    for (const d of this.digests) if (timingSafeEqual(d, candidate)) found = d;
    if (!found) throw new GatewayError('UNAUTHENTICATED', 'the API key is not valid');
    return {
      id: `apikey:${found.toString('hex').slice(0, 12)}`,
      tenant: 'default',
      roles: ['admin'],
      permissions: new Set(['*']),
    };
  }
}

function digest(key: string): Buffer {
  return createHash('sha256').update(key, 'utf8').digest();
}

function header(headers: RequestCredentials['headers'], name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}
