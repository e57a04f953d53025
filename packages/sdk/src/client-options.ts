import type { BackoffOptions } from './backoff';

/** How a {@link GatewayClient} reconnects after the connection drops. */
export interface ReconnectOptions {
  /** Backoff cap of the first attempt, in milliseconds. Default 500. */
  initialDelayMs?: number;
  /** Largest backoff cap, in milliseconds. Default 30 000. */
  maxDelayMs?: number;
  /** Consecutive failed attempts before the client gives up and closes. Default: no limit. */
  maxAttempts?: number;
}

/** Options of {@link connect} and of the {@link GatewayClient} constructor. */
export interface GatewayClientOptions {
  /** The gateway's WebSocket URL, e.g. `ws://127.0.0.1:18789`. */
  url: string;
  /** An API key, sent in the `X-API-Key` header at upgrade. */
  apiKey?: string;
  /** A bearer token (JWT, OAuth access token or API key), sent as `Authorization: Bearer <token>`. */
  token?: string;
  /** Reconnection policy, or `false` to never reconnect. Default: reconnect with the defaults of {@link ReconnectOptions}. */
  reconnect?: ReconnectOptions | false;
  /** Local deadline of a request that has no deadline of its own, in milliseconds. Default 10 000. */
  requestTimeoutMs?: number;
  /** Deadline of the WebSocket opening handshake, in milliseconds. Default 10 000. */
  connectTimeoutMs?: number;
  /** The name this client gives in `hello`. Default `@openclaw/sdk`. */
  clientName?: string;
  /** Whether to send `hello` after each (re)connection and keep its result as `client.session`. Default true. */
  hello?: boolean;
}

/** @internal {@link GatewayClientOptions} with every default applied. */
export interface ResolvedClientOptions {
  url: string;
  apiKey: string | undefined;
  token: string | undefined;
  reconnect: (BackoffOptions & { maxAttempts: number }) | false;
  requestTimeoutMs: number;
  connectTimeoutMs: number;
  clientName: string;
  hello: boolean;
}

/** Default reconnection policy. */
const DEFAULT_RECONNECT = { initialDelayMs: 500, maxDelayMs: 30_000, maxAttempts: Number.POSITIVE_INFINITY };
/** Default local deadline of a request. */
const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;
/** Default deadline of the opening handshake. */
const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
/** Default client name in `hello`. */
const DEFAULT_CLIENT_NAME = '@openclaw/sdk';

/**
 * @internal Applies defaults and checks values. A bad value throws a `TypeError` naming the option, at
 * construction, rather than misbehaving later.
 */
export function resolveClientOptions(options: GatewayClientOptions): ResolvedClientOptions {
  let url: URL;
  try {
    url = new URL(options.url);
  } catch {
    throw new TypeError('url: expected a ws:// or wss:// URL');
  }
  if (url.protocol !== 'ws:' && url.protocol !== 'wss:') throw new TypeError('url: expected a ws:// or wss:// URL');

  const reconnect =
    options.reconnect === false
      ? false
      : {
          initialDelayMs: nonNegative(
            'reconnect.initialDelayMs',
            options.reconnect?.initialDelayMs,
            DEFAULT_RECONNECT.initialDelayMs,
          ),
          maxDelayMs: nonNegative('reconnect.maxDelayMs', options.reconnect?.maxDelayMs, DEFAULT_RECONNECT.maxDelayMs),
          maxAttempts: nonNegative(
            'reconnect.maxAttempts',
            options.reconnect?.maxAttempts,
            DEFAULT_RECONNECT.maxAttempts,
          ),
        };
  return {
    url: options.url,
    apiKey: options.apiKey,
    token: options.token,
    reconnect,
    requestTimeoutMs: positive('requestTimeoutMs', options.requestTimeoutMs, DEFAULT_REQUEST_TIMEOUT_MS),
    connectTimeoutMs: positive('connectTimeoutMs', options.connectTimeoutMs, DEFAULT_CONNECT_TIMEOUT_MS),
    clientName: options.clientName ?? DEFAULT_CLIENT_NAME,
    hello: options.hello ?? true,
  };
}

function nonNegative(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (Number.isNaN(value) || value < 0) throw new TypeError(`${name}: expected a number >= 0 (got ${value})`);
  return value;
}

function positive(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value <= 0) throw new TypeError(`${name}: expected a number > 0 (got ${value})`);
  return value;
}
