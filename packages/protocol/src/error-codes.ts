/**
 * Every error code a gateway may put in an error response. Stable: clients branch on these.
 * `AGENT_ERROR` is an addition to the core list: the agent itself reported that the task failed.
 */
export const ERROR_CODES = [
  'BAD_REQUEST',
  'UNKNOWN_ACTION',
  'UNAUTHENTICATED',
  'FORBIDDEN',
  'NOT_FOUND',
  'AGENT_NOT_FOUND',
  'AGENT_UNAVAILABLE',
  'AGENT_ERROR',
  'TIMEOUT',
  'CANCELED',
  'RATE_LIMITED',
  'POLICY_DENIED',
  'CONFLICT',
  'PAYLOAD_TOO_LARGE',
  'UNAVAILABLE',
  'INTERNAL',
] as const;

/** One of {@link ERROR_CODES}. */
export type ErrorCode = (typeof ERROR_CODES)[number];

/** Whether a caller may retry an error of this code as it is, when the error does not say otherwise. */
export const RETRYABLE_BY_DEFAULT: Readonly<Record<ErrorCode, boolean>> = Object.freeze({
  BAD_REQUEST: false,
  UNKNOWN_ACTION: false,
  UNAUTHENTICATED: false,
  FORBIDDEN: false,
  NOT_FOUND: false,
  AGENT_NOT_FOUND: false,
  AGENT_UNAVAILABLE: true,
  AGENT_ERROR: false,
  TIMEOUT: true,
  CANCELED: false,
  RATE_LIMITED: true,
  POLICY_DENIED: false,
  CONFLICT: false,
  PAYLOAD_TOO_LARGE: false,
  UNAVAILABLE: true,
  INTERNAL: false,
});

/**
 * The HTTP status that carries each error code on the HTTP API (the body is `{"error": {code, ...}}`
 * as on the WebSocket).
 */
export const HTTP_STATUS: Readonly<Record<ErrorCode, number>> = Object.freeze({
  BAD_REQUEST: 400,
  UNKNOWN_ACTION: 404,
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  AGENT_NOT_FOUND: 404,
  AGENT_UNAVAILABLE: 503,
  AGENT_ERROR: 502,
  TIMEOUT: 504,
  CANCELED: 409,
  RATE_LIMITED: 429,
  POLICY_DENIED: 403,
  CONFLICT: 409,
  PAYLOAD_TOO_LARGE: 413,
  UNAVAILABLE: 503,
  INTERNAL: 500,
});

/** The HTTP status of an error code; 500 for a code this version does not know. */
export function httpStatusOf(code: string): number {
  return Object.hasOwn(HTTP_STATUS, code) ? HTTP_STATUS[code as ErrorCode] : 500;
}

/** WebSocket close codes the gateway uses, and their meaning for reconnecting clients. */
export const CloseCode = Object.freeze({
  /** Normal closure. */
  NORMAL: 1000,
  /** This replica is draining: reconnect, with jittered backoff, to any replica. */
  GOING_AWAY: 1001,
  /** Credentials revoked or expired. Never reconnect with the same credentials. */
  POLICY: 1008,
  /** An inbound frame was larger than the limit. */
  FRAME_TOO_LARGE: 1009,
  /** Internal error. */
  INTERNAL: 1011,
  /** The service is restarting. */
  SERVICE_RESTART: 1012,
  /** Overloaded, or this client could not keep up with its outbound traffic. */
  TRY_AGAIN_LATER: 1013,
});

/**
 * The reason of the gateway's 1001 close frames. A 1001 with this reason promises that the requests
 * the connection left unanswered were never handled (no agent received them); a 1001 from anything
 * else on the path (a proxy) promises nothing.
 */
export const DRAIN_CLOSE_REASON = 'replica draining: reconnect to another';

/** Close codes after which a client should reconnect (with backoff). */
export const RECONNECTABLE_CLOSE_CODES: ReadonlySet<number> = new Set([1001, 1006, 1011, 1012, 1013]);
