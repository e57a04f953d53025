import { inSpan, traceparentOf } from '@openclaw/core/tracing';
import { SpanKind } from '@opentelemetry/api';
/** Options every command that talks to a running gateway takes. */
export interface RemoteOptions {
  url: string;
  apiKey?: string;
}

/** An error from the gateway's HTTP API, with its protocol code. */
export class RemoteError extends Error {
  override readonly name = 'RemoteError';
  constructor(
    message: string,
    readonly code: string,
    readonly status: number,
  ) {
    super(message);
  }
}

/** Calls a gateway HTTP endpoint and returns its JSON body; errors carry the gateway's message. */
export async function fetchJson(
  remote: RemoteOptions,
  path: string,
  init: { method?: string; body?: unknown } = {},
): Promise<unknown> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (remote.apiKey) headers['x-api-key'] = remote.apiKey;
  const method = init.method ?? 'GET';
  // When the CLI traces (OTEL_* set), each request is a client span whose context the replica continues.
  return inSpan(`openclaw-cli ${method} ${path.split('?')[0]}`, { kind: SpanKind.CLIENT }, () => {
    const traceparent = traceparentOf();
    if (traceparent !== undefined) headers.traceparent = traceparent;
    return send(remote, path, init, headers);
  });
}

async function send(
  remote: RemoteOptions,
  path: string,
  init: { method?: string; body?: unknown },
  headers: Record<string, string>,
): Promise<unknown> {
  if (init.body !== undefined) headers['content-type'] = 'application/json';
  const url = new URL(path, remote.url.replace(/^ws/, 'http'));
  let response: Response;
  try {
    response = await fetch(url, {
      method: init.method ?? 'GET',
      headers,
      body: init.body === undefined ? undefined : JSON.stringify(init.body),
      signal: AbortSignal.timeout(10_000),
    });
  } catch (error) {
    const reason = (error as { cause?: { code?: string } }).cause?.code ?? (error as Error).message;
    throw new RemoteError(`cannot reach the gateway at ${url.origin} (${reason})`, 'UNAVAILABLE', 0);
  }
  const text = await response.text();
  let body: unknown;
  try {
    body = text === '' ? null : JSON.parse(text);
  } catch {
    throw new RemoteError(
      `the gateway at ${url.origin} answered ${response.status} with a body that is not JSON`,
      'INTERNAL',
      response.status,
    );
  }
  if (!response.ok) {
    const error = (body as { error?: { code?: string; message?: string } } | null)?.error;
    throw new RemoteError(error?.message ?? `HTTP ${response.status}`, error?.code ?? 'INTERNAL', response.status);
  }
  return body;
}

/** Where a command finds the gateway when no flag says: OPENCLAW_URL and OPENCLAW_API_KEY. */
export interface RemoteDefaults {
  url: string;
  apiKey?: string;
}

/**
 * Adds the options of a command that talks to a running gateway: its URL (as `--url`, or `--gateway`
 * where `--url` means something else), `--api-key`, and `--json` unless `json` is false.
 */
export function withRemoteOptions<C extends { option(flags: string, description: string, defaultValue?: string): C }>(
  command: C,
  defaults: RemoteDefaults,
  options: { urlFlag?: '--url' | '--gateway'; json?: boolean } = {},
): C {
  command
    .option(`${options.urlFlag ?? '--url'} <url>`, 'gateway URL [OPENCLAW_URL]', defaults.url)
    .option('--api-key <key>', 'API key [OPENCLAW_API_KEY]', defaults.apiKey);
  if (options.json !== false) command.option('--json', 'print JSON');
  return command;
}
