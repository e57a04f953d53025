import type { IncomingMessage, ServerResponse } from 'node:http';
import { GatewayError } from '@openclaw/core';
import { describeIssues, nestingProblem, parseTimeSpec } from '@openclaw/protocol';
import type { z } from 'zod';

/** The largest request body the API reads. */
export const MAX_BODY_BYTES = 64 * 1024;

/** Writes a JSON response (never sniffed as something else: it may echo client-chosen text). */
export function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
  });
  res.end(text);
}

/** Only JSON bodies: a cross-site form or text/plain POST (which needs no CORS preflight) is refused. */
export function requireJson(req: IncomingMessage): void {
  if (!/^application\/json\b/i.test(req.headers['content-type'] ?? '')) {
    throw new GatewayError('BAD_REQUEST', 'content-type must be application/json');
  }
}

/** Reads a body of at most {@link MAX_BODY_BYTES} as UTF-8 text. */
export async function readText(req: IncomingMessage, maxBytes = MAX_BODY_BYTES): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > maxBytes) throw new GatewayError('PAYLOAD_TOO_LARGE', `request body is larger than ${maxBytes} bytes`);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Reads a JSON body nested at most `maxDepth` levels (the content type is not checked). */
export async function readJson(req: IncomingMessage, maxDepth: number, maxBytes = MAX_BODY_BYTES): Promise<unknown> {
  const text = await readText(req, maxBytes);
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new GatewayError('BAD_REQUEST', 'request body is not valid JSON');
  }
  const tooDeep = nestingProblem(body, maxDepth);
  if (tooDeep) {
    throw new GatewayError(
      'BAD_REQUEST',
      `request body: ${tooDeep.field || 'the body'} is nested deeper than ${maxDepth} levels`,
      { details: [tooDeep] },
    );
  }
  return body;
}

/** Reads a JSON body (content-type checked). */
export async function readJsonBody(req: IncomingMessage, maxDepth: number): Promise<unknown> {
  requireJson(req);
  return readJson(req, maxDepth);
}

/** Validates a body, with `BAD_REQUEST` naming each failing field. */
export function parseBody<T>(schema: z.ZodType<T>, body: unknown, what: string): T {
  const parsed = schema.safeParse(body);
  if (parsed.success) return parsed.data;
  const details = describeIssues(parsed.error);
  throw new GatewayError(
    'BAD_REQUEST',
    `invalid ${what}: ${details.map((d) => `${d.field}: ${d.message}`).join('; ')}`,
    { details },
  );
}

/** A query's time (see {@link parseTimeSpec}) as epoch ms; before 1970 is 0, the first stream id. */
export function epochTime(text: string, field: string, now: number): number {
  return Math.max(0, parseTimeSpec(text, field, { now }));
}

/** A path as a span name: ids replaced, so names stay few (`/v1/tasks/:id/cancel`). */
export function routeName(path: string): string {
  // An agent's A2A endpoint and card: one route each, whatever the agent.
  if (path.startsWith('/a2a/')) return path.endsWith('.json') ? '/a2a/:agent/agent-card' : '/a2a/:agent';
  return path
    .split('/')
    .map((part, i) =>
      i >= 3 &&
      part.length > 0 &&
      !/^(cancel|retry|respond|events|approve|reject|metrics|explain|verify|report)$/.test(part)
        ? ':id'
        : part,
    )
    .join('/');
}

/**
 * A response as server-sent events: messages as they come, then the last one, and the end. A client
 * that reads slower than the events come is cut off once `maxBufferedBytes` wait for it (as a slow
 * WebSocket consumer is): it may read the task and follow it again.
 */
export class EventStream {
  private started = false;

  constructor(
    private readonly res: ServerResponse,
    private readonly maxBufferedBytes = Number.POSITIVE_INFINITY,
  ) {}

  message(body: unknown): void {
    if (this.res.writableEnded || this.res.destroyed) return;
    if (this.res.writableLength > this.maxBufferedBytes) {
      this.res.destroy();
      return;
    }
    if (!this.started) {
      this.started = true;
      this.res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    }
    this.res.write(`event: message\ndata: ${JSON.stringify(body)}\n\n`);
  }

  end(body: unknown): void {
    this.message(body);
    this.res.end();
  }

  /** Whether the response has ended, or the client hung up. */
  get closed(): boolean {
    return this.res.writableEnded || this.res.destroyed;
  }
}
