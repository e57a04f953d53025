import { GatewayError } from '@openclaw/protocol';
import { ApiKeyStore } from './api-key-store';
import type { Principal } from './principal';
import {
  type Authenticator,
  extractCredential,
  type RequestCredentials,
  StaticKeyAuthenticator,
} from './static-key-authenticator';

/**
 * API keys: stored keys (`ock_...`, checked against their HMAC in Redis, with role, tenant, expiry
 * and revocation) and, for development and bootstrapping, static keys from configuration.
 */
export class ApiKeyAuthenticator implements Authenticator {
  private readonly staticKeys: StaticKeyAuthenticator | undefined;

  constructor(
    staticKeys: readonly string[],
    private readonly store: ApiKeyStore | undefined,
  ) {
    this.staticKeys = staticKeys.length > 0 ? new StaticKeyAuthenticator(staticKeys) : undefined;
  }

  async authenticate(request: RequestCredentials): Promise<Principal> {
    const credential = extractCredential(request);
    if (credential === undefined || credential === '') {
      throw new GatewayError(
        'UNAUTHENTICATED',
        'credentials required: send an API key (Authorization: Bearer or X-API-Key)',
      );
    }
    if (ApiKeyStore.isStoredKey(credential)) {
      if (!this.store) throw new GatewayError('UNAUTHENTICATED', 'the API key is not valid');
      let info: Awaited<ReturnType<ApiKeyStore['verify']>>;
      try {
        info = await this.store.verify(credential);
      } catch (error) {
        if (error instanceof GatewayError) throw error;
        throw new GatewayError('UNAVAILABLE', 'cannot check credentials now (Redis unavailable); retry shortly', {
          cause: error,
        });
      }
      const principal: Principal = {
        id: `apikey:${info.id}`,
        tenant: info.tenant,
        roles: [info.role],
        permissions: new Set<string>(),
        apiKeyId: info.id,
      };
      return info.expiresAt === undefined ? principal : { ...principal, expiresAt: info.expiresAt };
    }
    if (!this.staticKeys) throw new GatewayError('UNAUTHENTICATED', 'the API key is not valid');
    return this.staticKeys.authenticate(request);
  }
}
