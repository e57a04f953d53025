/** The wire protocol version this package describes. A client may send it in `hello`. */
export const PROTOCOL_VERSION = 1 as const;

/** Default limits that every gateway advertises unless configured otherwise. */
export const DEFAULT_LIMITS = {
  /** Largest inbound WebSocket frame, in bytes, before the socket is closed with 1009. */
  maxFrameBytes: 1024 * 1024,
  /** Interval between server pings; a peer that misses two is terminated. */
  heartbeatMs: 15_000,
  /** Deepest nesting of a frame or HTTP body (objects and arrays); deeper ones are refused with `BAD_REQUEST`. */
  maxJsonDepth: 64,
  /** Default deadline of a `coordinator` call. */
  coordinatorTimeoutMs: 30_000,
} as const;

/** Agent names: lowercase, start with a letter or digit, at most 63 characters. */
export const AGENT_NAME_PATTERN = /^[a-z0-9][a-z0-9._-]{0,62}$/;
